package statefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := WriteFile(p, []byte("one"), "state file", nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	// A failure before the rename leaves the old content and no temp file.
	boom := errors.New("disk gone")
	if err := WriteFile(p, []byte("two"), "state file", func() error { return boom }); !errors.Is(err, boom) || !strings.Contains(err.Error(), "write state file") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Fatalf("content %q after a failed write", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%d files left in the directory, want 1", len(entries))
	}
}

func TestLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	errInsecure, errLocked := errors.New("insecure"), errors.New("locked")
	unlock, err := Lock(p, time.Second, "state file", errInsecure, errLocked)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(p, 20*time.Millisecond, "state file", errInsecure, errLocked); !errors.Is(err, errLocked) {
		t.Fatalf("second lock: %v, want the locked error", err)
	}
	unlock()
	again, err := Lock(p, time.Second, "state file", errInsecure, errLocked)
	if err != nil {
		t.Fatal(err)
	}
	again()
}
