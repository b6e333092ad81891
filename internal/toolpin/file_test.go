package toolpin

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func pinsFile(t *testing.T) string { return filepath.Join(t.TempDir(), "pins.json") }

func readJSON(t *testing.T, path string) jsonDoc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var j jsonDoc
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	return j
}

func TestFileCreatedWithMode0600(t *testing.T) {
	path := pinsFile(t)
	p := newPins(t, Config{File: path})
	for _, name := range []string{path, path + ".lock"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	if j := readJSON(t, path); j.Version != 1 || j.Tools == nil || j.Approvals == nil {
		t.Errorf("new file = %+v", j)
	}
	// A rewrite keeps 0600 even if the operator loosened it to 0640.
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	observe(t, p, route, tool("t", "x"))
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("after rewrite: mode %v", fi.Mode().Perm())
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".pins.json.tmp*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestPersistenceAcrossNew(t *testing.T) {
	path := pinsFile(t)
	clk := newClock()
	v1, v2, u := tool("search", "one"), tool("search", "two"), tool("read", "r")
	p := newPins(t, Config{File: path, Now: clk.Now})
	observe(t, p, route, v1, u)
	observe(t, p, route, v2)
	before := p.Entries()

	p2 := newPins(t, Config{File: path, Now: clk.Now})
	if d := cmp.Diff(before, p2.Entries()); d != "" {
		t.Fatalf("state after restart (-before +after):\n%s", d)
	}
	if s := p2.Status(route, "search"); s != Changed {
		t.Errorf("Status after restart = %v", s)
	}
	// The pending definition is kept for review and matches its fingerprint.
	if e := p2.Entries()[1]; fp(t, e.Definition) != fp(t, v2) {
		t.Errorf("stored definition %s does not match", e.Definition)
	}
	if got := observe(t, p2, route, v2); len(got) != 1 || !got[0].Repeated {
		t.Errorf("after restart, the change is still known: %v", got)
	}
	if err := p2.Approve(route, "search"); err != nil {
		t.Fatal(err)
	}
	p3 := newPins(t, Config{File: path})
	if s := p3.Status(route, "search"); s != Pinned {
		t.Errorf("approval lost across restart: %v", s)
	}
}

func TestNewRefusesBadFiles(t *testing.T) {
	v := tool("t", "x")
	f := fp(t, v)
	g := fp(t, tool("t", "y"))
	for _, tt := range []struct {
		name, content string
		want          error
	}{
		{"empty", ``, ErrCorrupt},
		{"truncated", `{"version":1,"tools":[`, ErrCorrupt},
		{"not an object", `[]`, ErrCorrupt},
		{"version 2", `{"version":2,"tools":[],"approvals":[]}`, ErrCorrupt},
		{"no version", `{"tools":[]}`, ErrCorrupt},
		{"unknown member", `{"version":1,"tools":[],"extra":1}`, ErrCorrupt},
		{"duplicate member", `{"version":1,"version":1}`, ErrCorrupt},
		{"trailing data", `{"version":1} x`, ErrCorrupt},
		{"invalid UTF-8", "{\"version\":1,\"tools\":[{\"route\":\"\xff\",\"tool\":\"t\",\"observed\":\"" + f + "\"}]}", ErrCorrupt},
		{"wrong type", `{"version":"1"}`, ErrCorrupt},
		{"no route", `{"version":1,"tools":[{"tool":"t","pin":"` + f + `","pin_source":"first_use"}]}`, ErrCorrupt},
		{"bad pin", `{"version":1,"tools":[{"route":"/r","tool":"t","pin":"sha256:00","pin_source":"first_use"}]}`, ErrCorrupt},
		{"bad source", `{"version":1,"tools":[{"route":"/r","tool":"t","pin":"` + f + `","pin_source":"trust"}]}`, ErrCorrupt},
		{"source without pin", `{"version":1,"tools":[{"route":"/r","tool":"t","observed":"` + f + `","pin_source":"approved"}]}`, ErrCorrupt},
		{"nothing recorded", `{"version":1,"tools":[{"route":"/r","tool":"t"}]}`, ErrCorrupt},
		{"bad observed", `{"version":1,"tools":[{"route":"/r","tool":"t","observed":"x"}]}`, ErrCorrupt},
		{"duplicate tool", `{"version":1,"tools":[{"route":"/r","tool":"t","observed":"` + f + `"},{"route":"/r","tool":"t","observed":"` + f + `"}]}`, ErrCorrupt},
		{"definition mismatch", `{"version":1,"tools":[{"route":"/r","tool":"t","observed":"` + g + `","definition":` + string(v) + `}]}`, ErrCorrupt},
		{"definition of another tool", `{"version":1,"tools":[{"route":"/r","tool":"u","observed":"` + f + `","definition":` + string(v) + `}]}`, ErrCorrupt},
		{"definition when pinned", `{"version":1,"tools":[{"route":"/r","tool":"t","pin":"` + f + `","pin_source":"first_use","observed":"` + f + `","definition":` + string(v) + `}]}`, ErrCorrupt},
		{"malformed definition", `{"version":1,"tools":[{"route":"/r","tool":"t","observed":"` + f + `","definition":{"name":1}}]}`, ErrCorrupt},
		{"bad approval", `{"version":1,"approvals":[{"route":"/r","tool":"t","fingerprint":"nope"}]}`, ErrCorrupt},
		{"approval without tool", `{"version":1,"approvals":[{"route":"/r","fingerprint":"` + f + `"}]}`, ErrCorrupt},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := pinsFile(t)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := New(Config{File: path})
			if !errors.Is(err, tt.want) {
				t.Errorf("New = %v, want %v", err, tt.want)
			}
			if b, _ := os.ReadFile(path); string(b) != tt.content {
				t.Error("New changed the corrupt file")
			}
		})
	}
}

func TestNewAcceptsValidFile(t *testing.T) {
	v := tool("t", "x")
	f, g := fp(t, v), fp(t, tool("t", "y"))
	path := pinsFile(t)
	content := `{"version":1,"tools":[{"route":"/r","tool":"t","pin":"` + g + `","pin_source":"first_use","observed":"` + f + `",
		"definition":` + string(v) + `}]}`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newPins(t, Config{File: path})
	if s := p.Status("/r", "t"); s != Changed {
		t.Errorf("Status = %v", s)
	}
}

func TestNewRefusesInsecureFile(t *testing.T) {
	path := pinsFile(t)
	newPins(t, Config{File: path})
	for _, mode := range []fs.FileMode{0o620, 0o602, 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := New(Config{File: path}); !errors.Is(err, ErrInsecureFile) {
			t.Errorf("mode %v: New = %v", mode, err)
		}
	}
	if err := os.Chmod(path, 0o644); err != nil { // readable by others is fine
		t.Fatal(err)
	}
	newPins(t, Config{File: path})
	if err := os.Chmod(path+".lock", 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{File: path}); !errors.Is(err, ErrInsecureFile) {
		t.Errorf("insecure lock file: New = %v", err)
	}
}

func TestNewFileErrors(t *testing.T) {
	if _, err := New(Config{File: filepath.Join(t.TempDir(), "missing", "pins.json")}); err == nil {
		t.Error("file in a missing directory accepted")
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "pins.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{File: filepath.Join(dir, "pins.json")}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("directory as file: %v", err)
	}
	// More tools in the file than MaxTools.
	path := pinsFile(t)
	p := newPins(t, Config{File: path})
	observe(t, p, route, tool("a", ""), tool("b", ""))
	if _, err := New(Config{File: path, MaxTools: 1}); !errors.Is(err, ErrTooMany) {
		t.Errorf("file beyond MaxTools: %v", err)
	}
}

func TestReloadKeepsLastGood(t *testing.T) {
	path := pinsFile(t)
	p := newPins(t, Config{File: path})
	v1, v2 := tool("t", "one"), tool("t", "two")
	observe(t, p, route, v1)
	observe(t, p, route, v2)
	before := p.Entries()
	good, _ := os.ReadFile(path)

	for _, tt := range []struct {
		name    string
		content string
		mode    fs.FileMode
		want    error
	}{
		{"corrupt", `{"version":1,"approvals":[{"route":"` + route + `","tool":"t","fingerprint":"` + fp(t, v2) + `"}],"x":1}`, 0o600, ErrCorrupt},
		{"insecure", strings.Replace(string(good), `"approvals": []`, `"approvals":[{"route":"`+route+`","tool":"t","fingerprint":"`+fp(t, v2)+`"}]`, 1), 0o666, ErrInsecureFile},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := p.Reload(); !errors.Is(err, tt.want) {
				t.Errorf("Reload = %v, want %v", err, tt.want)
			}
			if d := cmp.Diff(before, p.Entries()); d != "" {
				t.Errorf("state changed (-before +after):\n%s", d)
			}
		})
	}
	// While the file is corrupt, observations protect in memory and report
	// the failure; the file is not overwritten.
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	ch, err := p.Observe(route, [][]byte{tool("t", "three")})
	if !errors.Is(err, ErrPersist) || !errors.Is(err, ErrCorrupt) || len(ch) != 1 {
		t.Errorf("Observe on a corrupt file = %v, %v", ch, err)
	}
	if s := p.Status(route, "t"); s != Changed {
		t.Errorf("Status = %v", s)
	}
	if b, _ := os.ReadFile(path); string(b) != "{" {
		t.Error("corrupt file overwritten")
	}
	if err := p.Approve(route, "t"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Approve on a corrupt file: %v", err)
	}
	// Fixed by the operator: the next write restores everything.
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Approve(route, "t"); err != nil {
		t.Fatal(err)
	}
	if es, err := ListFile(path); err != nil || es[0].Status != Pinned || es[0].Pin != fp(t, tool("t", "three")) {
		t.Errorf("ListFile = %+v, %v", es, err)
	}
}

func TestFileDeletedWhileRunning(t *testing.T) {
	path := pinsFile(t)
	p := newPins(t, Config{File: path})
	observe(t, p, route, tool("t", "one"))
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Reload of a missing file = %v", err)
	}
	if s := p.Status(route, "t"); s != Pinned {
		t.Errorf("pins lost: %v", s)
	}
	observe(t, p, route, tool("u", ""))
	if es, err := ListFile(path); err != nil || len(es) != 2 {
		t.Errorf("file not recreated with the whole state: %v, %v", es, err)
	}
}

func TestDefinitionBounds(t *testing.T) {
	p := newPins(t, Config{TrustFirstUse: func(string) bool { return false }})
	big := tool("big", strings.Repeat("x", maxDefinitionBytes))
	observe(t, p, route, big, tool("small", "s"))
	es := p.Entries()
	if es[0].Tool != "big" || es[0].Definition != nil || es[1].Definition == nil {
		t.Errorf("definitions kept: big %d bytes, small %d bytes", len(es[0].Definition), len(es[1].Definition))
	}
	if p.defBytes != len(es[1].Definition) {
		t.Errorf("defBytes = %d", p.defBytes)
	}
	if err := p.Approve(route, "small"); err != nil {
		t.Fatal(err)
	}
	if p.defBytes != 0 {
		t.Errorf("defBytes after approval = %d", p.defBytes)
	}
}

func TestLockTimeout(t *testing.T) {
	path := pinsFile(t)
	newPins(t, Config{File: path})
	unlock, err := lockFile(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockFile(path, 20*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("second lock = %v, want ErrLocked", err)
	}
	unlock()
	unlock2, err := lockFile(path, time.Second)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()
}
