package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriterEscapesAndFramesOneLinePerRecord(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	evil := "x\n{\"decision\":\"allow\"}\r\u2028"
	for _, e := range []*Event{
		{Time: time.Unix(0, 0).UTC(), Kind: KindDecision, RequestID: "r1", Tool: evil, Decision: Deny, Reason: evil},
		{Time: time.Unix(1, 0).UTC(), Kind: KindOutcome, RequestID: "r1", Decision: Forward, Status: 200},
	} {
		if err := w.Write(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	sc := bufio.NewScanner(&buf)
	var lines []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2 (a value must never break a line)", len(lines))
	}
	if lines[0]["tool"] != evil || lines[0]["decision"] != "deny" {
		t.Errorf("record 0 = %v", lines[0])
	}
	if _, ok := lines[1]["tool"]; ok {
		t.Errorf("empty fields must be omitted: %v", lines[1])
	}
}

func TestWriterErrors(t *testing.T) {
	w := NewWriter(failWriter{})
	if err := w.Write(context.Background(), &Event{}); err == nil {
		t.Fatal("write error swallowed")
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Write(context.Background(), &Event{Decision: Allow}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := f.Write(context.Background(), &Event{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"decision":"allow"`) {
		t.Errorf("file = %q", b)
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing", "dir", "a.jsonl")); err == nil {
		t.Error("unwritable path accepted")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
