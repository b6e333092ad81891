package toolpin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReloadPicksUpApproveInFile(t *testing.T) {
	path := pinsFile(t)
	p := newPins(t, Config{File: path})
	v1, v2 := tool("t", "one"), tool("t", "two")
	observe(t, p, route, v1)
	observe(t, p, route, v2)

	// The CLI sees what the gateway recorded.
	es, err := ListFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Status != Changed || es[0].Observed != fp(t, v2) || len(es[0].Definition) == 0 {
		t.Fatalf("ListFile = %+v", es)
	}
	if err := ApproveInFile(path, route, "t"); err != nil {
		t.Fatal(err)
	}
	if s := p.Status(route, "t"); s != Changed {
		t.Fatalf("approved before Reload: %v", s)
	}
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := p.Status(route, "t"); s != Pinned {
		t.Fatalf("after Reload: %v", s)
	}
	if e := p.Entries()[0]; e.PinSource != SourceApproved || e.Pin != fp(t, v2) {
		t.Errorf("entry = %+v", e)
	}
	// Reloading again changes nothing.
	before := p.Entries()
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(before, p.Entries()); d != "" {
		t.Errorf("second Reload changed state:\n%s", d)
	}
	// The list shows it approved; the gateway's next write folds it in.
	if es, _ := ListFile(path); es[0].Status != Pinned {
		t.Errorf("ListFile after approval: %+v", es[0])
	}
	observe(t, p, "/other", tool("x", ""))
	j := readJSON(t, path)
	if len(j.Approvals) != 0 || len(j.Tools) != 2 || j.Tools[1].Route != route ||
		j.Tools[1].PinSource != SourceApproved || j.Tools[1].Definition != nil {
		t.Errorf("approvals not folded in: %+v", j)
	}
}

func TestApproveInFileTOCTOU(t *testing.T) {
	path := pinsFile(t)
	p := newPins(t, Config{File: path})
	v1, v2, v3 := tool("t", "one"), tool("t", "two"), tool("t", "three")
	observe(t, p, route, v1)
	observe(t, p, route, v2)
	// The operator reviewed v2 and approves it by fingerprint; meanwhile v3 appears.
	observe(t, p, route, v3)
	if err := ApproveFingerprintInFile(path, route, "t", fp(t, v2)); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := p.Status(route, "t"); s != Changed {
		t.Errorf("v3 must stay changed: %v", s)
	}
	if got := observe(t, p, route, v2); len(got) != 0 {
		t.Errorf("v2 approved: %v", got)
	}
}

func TestApproveInFileRejects(t *testing.T) {
	path := pinsFile(t)
	p := newPins(t, Config{File: path})
	observe(t, p, route, tool("t", "x"))
	f := fp(t, tool("t", "x"))
	for _, tt := range []struct {
		name string
		err  error
		want error
	}{
		{"never observed", ApproveInFile(path, route, "nope"), ErrNotFound},
		{"other route", ApproveInFile(path, "/else", "t"), ErrNotFound},
		{"missing file", ApproveInFile(filepath.Join(t.TempDir(), "x.json"), route, "t"), fs.ErrNotExist},
		{"empty route", ApproveInFile(path, "", "t"), nil},
		{"invalid route", ApproveInFile(path, "/r\xff", "t"), nil},
		{"empty tool", ApproveFingerprintInFile(path, route, "", f), nil},
		{"bad fingerprint", ApproveFingerprintInFile(path, route, "t", "c1:sha256:zz"), nil},
	} {
		if tt.err == nil || (tt.want != nil && !errors.Is(tt.err, tt.want)) {
			t.Errorf("%s: err = %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	before, _ := os.ReadFile(path)
	if err := ApproveInFile(path, route, "t"); err != nil {
		t.Errorf("already pinned: %v", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("approving a pinned tool rewrote the file")
	}
	// A corrupt file is refused, not repaired.
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ApproveFingerprintInFile(path, route, "t", f); !errors.Is(err, ErrCorrupt) {
		t.Errorf("corrupt file: %v", err)
	}
	if _, err := ListFile(path); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ListFile on a corrupt file: %v", err)
	}
}

// TestNoApprovalLost runs CLI approvals (their own lock per call, as
// separate processes would) while the gateway writes the file.
func TestNoApprovalLost(t *testing.T) {
	path := pinsFile(t)
	p := newPins(t, Config{File: path})
	const n = 10
	var tools [][]byte
	for i := range n {
		tools = append(tools, tool(fmt.Sprint("t", i), "one"))
	}
	observe(t, p, route, tools...)
	var changed [][]byte
	for i := range n {
		changed = append(changed, tool(fmt.Sprint("t", i), "two"))
	}
	observe(t, p, route, changed...)

	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := ApproveInFile(path, route, fmt.Sprint("t", i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Go(func() {
		for i := range n {
			observe(t, p, fmt.Sprint("/other", i), tool("x", ""))
		}
	})
	wg.Wait()
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if s := p.Status(route, fmt.Sprint("t", i)); s != Pinned {
			t.Errorf("t%d: %v: approval lost", i, s)
		}
	}
}
