package tlsfiles

import (
	"os"
	"testing"
	"time"
)

// TestRewriteRestoringMtime rewrites the files in place with a pair of the
// same size and puts the old modification time back, as `cp -p` or an
// archive extraction would: only the change time tells it apart.
func TestRewriteRestoringMtime(t *testing.T) {
	ca := newCA(t, "test ca")
	certPEM, keyPEM := ca.issue(t, leafOpts{serial: 1})
	g := gatewayOn(t, ca, certPEM, keyPEM)
	before, err := os.Stat(g.certFile)
	if err != nil {
		t.Fatal(err)
	}
	c2, k2 := ca.issue(t, leafOpts{serial: 2})
	for name, b := range map[string][]byte{g.certFile: c2, g.keyFile: k2} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(name, time.Time{}, fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	after, err := os.Stat(g.certFile)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		t.Fatal("test setup: inode, size or mtime differ")
	}
	g.clock.Advance(testInterval)
	if got := g.serial(t); got != 2 {
		t.Fatalf("serial = %d, want 2", got)
	}
}
