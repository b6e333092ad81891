package revoke

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func tempFile(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "revoked.json")
}

// dirNames lists dir, to catch temporary files left behind.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPersistRoundTrip(t *testing.T) {
	file := tempFile(t)
	l, c := newList(t, Config{File: file})
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatalf("New did not create the file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("created file mode %v, want 0600", fi.Mode().Perm())
	}
	jti := randomID(t)
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: jti, Until: t0.Add(time.Hour), Reason: "leaked"})
	mustAdd(t, l, Entry{Kind: KindSubject, Issuer: iss, Value: "alice", NotBefore: t0.Add(-time.Minute)})
	mustAdd(t, l, Entry{Kind: KindClient, Issuer: "https://other.example", Value: "ci ✓"})
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "gone", Until: t0.Add(time.Second)})
	if _, err := l.Remove(KindJTI, iss, "gone"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file after writes: %v, %v; want mode 0600", fi.Mode().Perm(), err)
	}
	if names := dirNames(t, filepath.Dir(file)); !slices.Equal(names, []string{"revoked.json", "revoked.json.lock"}) {
		t.Errorf("directory holds %q; temporary files left behind?", names)
	}
	var doc jsonDoc
	if err := json.Unmarshal(readBytes(t, file), &doc); err != nil || doc.Version != 1 || len(doc.Entries) != 3 {
		t.Errorf("file: version %d, %d entries, %v; want 1, 3", doc.Version, len(doc.Entries), err)
	}

	l2, err := New(Config{File: file, Now: c.Now})
	if err != nil {
		t.Fatalf("New on the written file: %v", err)
	}
	if diff := cmp.Diff(l.List(), l2.List()); diff != "" {
		t.Errorf("reloaded list (-written +read):\n%s", diff)
	}
	if _, ok := l2.Check(Token{Issuer: iss, JTI: jti}); !ok {
		t.Error("persisted jti not revoked")
	}
	// Entries expired by the time the file is read are skipped.
	c.Advance(time.Hour)
	l3, err := New(Config{File: file, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if l3.Len() != 2 {
		t.Errorf("Len after expiry = %d, want 2", l3.Len())
	}
}

// validFile is a file with one entry of each kind.
func validFile() string {
	return `{"version": 1, "entries": [
  {"kind": "jti", "issuer": "https://idp.example", "value": "j1", "until": "2026-05-03T00:00:00Z"},
  {"kind": "subject", "issuer": "https://idp.example", "value": "alice", "not_before": "2026-05-02T09:00:00+02:00", "until": "2026-05-03T00:00:00Z", "created": "2026-05-02T07:00:00Z", "reason": "stolen"},
  {"kind": "client", "issuer": "https://idp.example", "value": "c", "not_before": "2026-05-02T09:00:00Z", "until": "2026-05-03T00:00:00Z"},
  {"kind": "jti", "issuer": "https://idp.example", "value": "expired", "until": "2026-05-01T00:00:00Z"}
]}`
}

var corruptFiles = []struct{ name, content string }{
	{"empty", ""},
	{"truncated", `{"version": 1, "entries": [`},
	{"null", `null`},
	{"array", `[]`},
	{"no version", `{"entries": []}`},
	{"version 2", `{"version": 2, "entries": []}`},
	{"unknown member", `{"version": 1, "entries": [], "extra": 1}`},
	{"unknown entry member", `{"version": 1, "entries": [{"kind": "jti", "issuer": "i", "value": "v", "until": "2026-05-03T00:00:00Z", "x": 1}]}`},
	{"trailing data", `{"version": 1, "entries": []} {}`},
	{"trailing garbage", `{"version": 1, "entries": []}x`},
	{"unknown kind", `{"version": 1, "entries": [{"kind": "session", "issuer": "i", "value": "v", "until": "2026-05-03T00:00:00Z"}]}`},
	{"empty issuer", `{"version": 1, "entries": [{"kind": "jti", "issuer": "", "value": "v", "until": "2026-05-03T00:00:00Z"}]}`},
	{"empty value", `{"version": 1, "entries": [{"kind": "jti", "issuer": "i", "until": "2026-05-03T00:00:00Z"}]}`},
	{"no until", `{"version": 1, "entries": [{"kind": "jti", "issuer": "i", "value": "v"}]}`},
	{"bad time", `{"version": 1, "entries": [{"kind": "jti", "issuer": "i", "value": "v", "until": "tomorrow"}]}`},
	{"jti with not_before", `{"version": 1, "entries": [{"kind": "jti", "issuer": "i", "value": "v", "not_before": "2026-05-02T00:00:00Z", "until": "2026-05-03T00:00:00Z"}]}`},
	{"subject without not_before", `{"version": 1, "entries": [{"kind": "subject", "issuer": "i", "value": "v", "until": "2026-05-03T00:00:00Z"}]}`},
	{"control char in reason", `{"version": 1, "entries": [{"kind": "jti", "issuer": "i", "value": "v", "until": "2026-05-03T00:00:00Z", "reason": "a\u001bb"}]}`},
	{"invalid UTF-8", "{\"version\": 1, \"entries\": [{\"kind\": \"jti\", \"issuer\": \"i\", \"value\": \"\xff\", \"until\": \"2026-05-03T00:00:00Z\"}]}"},
	{"duplicate key", `{"version": 1, "entries": [
		{"kind": "jti", "issuer": "i", "value": "v", "until": "2026-05-03T00:00:00Z"},
		{"kind": "jti", "issuer": "i", "value": "v", "until": "2026-05-04T00:00:00Z"}]}`},
	{"year out of range after UTC", `{"version": 1, "entries": [{"kind": "jti", "issuer": "i", "value": "v", "until": "9999-12-31T23:59:59-01:00"}]}`},
}

func TestParseFile(t *testing.T) {
	m, err := parseFile([]byte(validFile()), t0)
	if err != nil {
		t.Fatalf("valid file: %v", err)
	}
	if m.size() != 3 {
		t.Errorf("valid file: %d entries, want 3 (one expired)", len(m))
	}
	e := m[ixSubject][ikey{iss, "alice"}]
	if !e.NotBefore.Equal(time.Date(2026, 5, 2, 7, 0, 0, 0, time.UTC)) || e.NotBefore.Location() != time.UTC {
		t.Errorf("not_before = %v, want 07:00 UTC", e.NotBefore)
	}
	for _, tt := range corruptFiles {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseFile([]byte(tt.content), t0); !errors.Is(err, ErrCorrupt) {
				t.Errorf("parseFile: %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestNewRefusesBadFile(t *testing.T) {
	for _, tt := range corruptFiles {
		t.Run(tt.name, func(t *testing.T) {
			file := tempFile(t)
			if err := os.WriteFile(file, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := New(Config{File: file, Now: newClock().Now})
			if !errors.Is(err, ErrCorrupt) || l != nil {
				t.Fatalf("New: %v, want ErrCorrupt and no list", err)
			}
			if got := string(readBytes(t, file)); got != tt.content {
				t.Error("New rewrote a corrupt file")
			}
		})
	}
	t.Run("insecure", func(t *testing.T) {
		file := tempFile(t)
		if err := os.WriteFile(file, []byte(validFile()), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, 0o622); err != nil {
			t.Fatal(err)
		}
		if _, err := New(Config{File: file}); !errors.Is(err, ErrInsecureFile) {
			t.Fatalf("New: %v, want ErrInsecureFile", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		if _, err := New(Config{File: t.TempDir()}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("New on a directory: %v, want ErrCorrupt", err)
		}
	})
}

func TestReload(t *testing.T) {
	file := tempFile(t)
	a, c := newList(t, Config{File: file})
	b, err := New(Config{File: file, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	var notified []Entry
	a.Subscribe(func(e Entry) { notified = append(notified, e) })
	x := mustAdd(t, b, Entry{Kind: KindSubject, Issuer: iss, Value: "alice"})
	tok := Token{Issuer: iss, Subject: "alice"}
	if _, ok := a.Check(tok); ok {
		t.Fatal("revoked on a replica before its Reload")
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Check(tok); !ok {
		t.Error("not revoked after Reload")
	}
	if diff := cmp.Diff([]Entry{x}, notified); diff != "" {
		t.Errorf("Reload notifications (-want +got):\n%s", diff)
	}
	// Reloading an unchanged file notifies nobody; a tightened entry does.
	notified = nil
	if err := a.Reload(); err != nil || notified != nil {
		t.Errorf("second Reload: %v, notified %v", err, notified)
	}
	c.Advance(time.Minute)
	x2 := mustAdd(t, b, Entry{Kind: KindSubject, Issuer: iss, Value: "alice"})
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Entry{x2}, notified); diff != "" {
		t.Errorf("Reload of a tightened entry (-want +got):\n%s", diff)
	}
	// A removal by the replica applies at Reload.
	if ok, err := b.Remove(KindSubject, iss, "alice"); !ok || err != nil {
		t.Fatalf("Remove = %v, %v", ok, err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Check(tok); ok || a.Len() != 0 {
		t.Error("still revoked after the replica's Remove and Reload")
	}
	// Without a file, Reload does nothing.
	m, _ := newList(t, Config{})
	if err := m.Reload(); err != nil {
		t.Errorf("Reload without a file: %v", err)
	}
}

func TestReloadKeepsOldSet(t *testing.T) {
	tests := []struct {
		name      string
		breakFile func(t *testing.T, file string)
		want      error
	}{
		{"corrupt", func(t *testing.T, file string) {
			if err := os.WriteFile(file, []byte(`{"version": 1, "entries": [{]}`), 0o600); err != nil {
				t.Fatal(err)
			}
		}, ErrCorrupt},
		{"missing", func(t *testing.T, file string) {
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
		}, fs.ErrNotExist},
		{"insecure", func(t *testing.T, file string) {
			if err := os.Chmod(file, 0o666); err != nil {
				t.Fatal(err)
			}
		}, ErrInsecureFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tempFile(t)
			l, _ := newList(t, Config{File: file})
			e := mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "j"})
			tt.breakFile(t, file)
			if err := l.Reload(); !errors.Is(err, tt.want) {
				t.Fatalf("Reload: %v, want %v", err, tt.want)
			}
			if got, ok := l.Check(Token{Issuer: iss, JTI: "j"}); !ok || !cmp.Equal(got, e) {
				t.Errorf("old set lost: Check = %+v, %v", got, ok)
			}
		})
	}
}

// A file deleted behind the list's back is rewritten from memory at the
// next Add: revocations are not forgotten.
func TestAddRewritesMissingFile(t *testing.T) {
	file := tempFile(t)
	l, c := newList(t, Config{File: file})
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "a"})
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "b"})
	l2, err := New(Config{File: file, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if l2.Len() != 2 {
		t.Errorf("rewritten file holds %d entries, want 2", l2.Len())
	}
}

// Writers re-read the file under its lock: concurrent replicas lose
// nothing, and a replica learns the others' entries at its next write.
func TestReplicasMerge(t *testing.T) {
	file := tempFile(t)
	a, c := newList(t, Config{File: file})
	b, err := New(Config{File: file, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	var notified []string
	b.Subscribe(func(e Entry) { notified = append(notified, e.Value) })
	mustAdd(t, a, Entry{Kind: KindJTI, Issuer: iss, Value: "from-a"})
	mustAdd(t, b, Entry{Kind: KindJTI, Issuer: iss, Value: "from-b"})
	if _, ok := b.Check(Token{Issuer: iss, JTI: "from-a"}); !ok {
		t.Error("b's write did not pick up a's entry")
	}
	if !slices.Equal(notified, []string{"from-b", "from-a"}) {
		t.Errorf("b notified of %q, want the added entry then the file's", notified)
	}

	var wg sync.WaitGroup
	for i, l := range []*List{a, b} {
		wg.Go(func() {
			for j := range 20 {
				if _, err := l.Add(Entry{Kind: KindJTI, Issuer: iss, Value: fmt.Sprintf("r%d-%d", i, j)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if a.Len() != 42 {
		t.Errorf("after concurrent writers the file holds %d entries, want 42", a.Len())
	}
}

func TestWriteFailureLeavesMemory(t *testing.T) {
	file := tempFile(t)
	l, _ := newList(t, Config{File: file})
	old := mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "old"})
	before := readBytes(t, file)
	var notified int
	l.Subscribe(func(Entry) { notified++ })
	injected := errors.New("disk full")
	l.beforeRename = func() error { return injected }

	if _, err := l.Add(Entry{Kind: KindJTI, Issuer: iss, Value: "new"}); !errors.Is(err, injected) {
		t.Fatalf("Add: %v, want the write error", err)
	}
	if _, ok := l.Check(Token{Issuer: iss, JTI: "new"}); ok {
		t.Error("entry in effect although its write failed")
	}
	if _, err := l.Add(Entry{Kind: KindJTI, Issuer: iss, Value: "old", Reason: "changed"}); !errors.Is(err, injected) {
		t.Fatalf("re-Add: %v, want the write error", err)
	}
	if ok, err := l.Remove(KindJTI, iss, "old"); ok || !errors.Is(err, injected) {
		t.Fatalf("Remove = %v, %v; want false and the write error", ok, err)
	}
	if diff := cmp.Diff([]Entry{old}, l.List()); diff != "" {
		t.Errorf("memory changed by failed writes (-want +got):\n%s", diff)
	}
	if notified != 0 {
		t.Errorf("%d notifications for failed writes", notified)
	}
	if got := readBytes(t, file); string(got) != string(before) {
		t.Error("file changed by failed writes")
	}
	if names := dirNames(t, filepath.Dir(file)); len(names) != 2 {
		t.Errorf("directory holds %q; temporary file left behind", names)
	}
	l.beforeRename = nil
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "new"})
}

// A corrupt file refuses writes too: they cannot be merged into it, and
// overwriting it could drop revocations.
func TestAddRefusesCorruptFile(t *testing.T) {
	file := tempFile(t)
	l, _ := newList(t, Config{File: file})
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "a"})
	if err := os.WriteFile(file, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Add(Entry{Kind: KindJTI, Issuer: iss, Value: "b"}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Add: %v, want ErrCorrupt", err)
	}
	if l.Len() != 1 || string(readBytes(t, file)) != "{" {
		t.Error("failed Add changed memory or the file")
	}
	if !strings.Contains(fmt.Sprint(l.Reload()), file) {
		t.Error("error does not name the file")
	}
}
