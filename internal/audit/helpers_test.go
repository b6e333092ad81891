package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testKey is a generated Ed25519 key and the PEM file holding it.
type testKey struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	path string // PKCS #8 PEM, 0600
	pem  []byte
}

// newTestKey generates a key at runtime (the repository holds none) and
// writes it to dir/name.
func newTestKey(t testing.TB, dir, name string) testKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE" + " KEY", Bytes: der})
	p := filepath.Join(dir, name)
	writeFileMode(t, p, b, 0o600)
	return testKey{priv: priv, pub: pub, path: p, pem: b}
}

func writeFileMode(t testing.TB, p string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// fakeClock is a manual clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuffer is a slog handler target safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// faults injects failures into every file a FileSink opens.
type faults struct {
	mu        sync.Mutex
	writeErr  error         // Write writes half of its bytes, then fails
	syncErr   error         // Sync fails
	truncErr  error         // Truncate fails
	writeGate chan struct{} // non-nil: Write waits until it is closed
	syncGate  chan struct{} // non-nil: Sync waits until it is closed
	entered   chan struct{} // signalled (non-blocking) when a gated call waits
	dirErr    error         // syncDir fails
	syncs     int
	writes    int
	dirSyncs  int // syncDir calls
}

// syncDir is the sink's directory fsync, with dirErr injected.
func (fl *faults) syncDir(dir string) error {
	fl.mu.Lock()
	fl.dirSyncs++
	err := fl.dirErr
	fl.mu.Unlock()
	if err != nil {
		return err
	}
	return syncDirOS(dir)
}

func (fl *faults) open(path string) (file, error) {
	f, err := openOSFile(path)
	if err != nil {
		return nil, err
	}
	return &faultFile{file: f, fl: fl}, nil
}

func (fl *faults) set(fn func(fl *faults)) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fn(fl)
}

func (fl *faults) counts() (writes, syncs int) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.writes, fl.syncs
}

func (fl *faults) signal() {
	select {
	case fl.entered <- struct{}{}:
	default:
	}
}

type faultFile struct {
	file
	fl *faults
}

func (f *faultFile) Write(b []byte) (int, error) {
	f.fl.mu.Lock()
	gate, werr := f.fl.writeGate, f.fl.writeErr
	f.fl.mu.Unlock()
	if gate != nil {
		f.fl.signal()
		<-gate
	}
	if werr != nil {
		n, _ := f.file.Write(b[:len(b)/2])
		return n, werr
	}
	n, err := f.file.Write(b)
	f.fl.mu.Lock()
	f.fl.writes++
	f.fl.mu.Unlock()
	return n, err
}

func (f *faultFile) Sync() error {
	f.fl.mu.Lock()
	gate, serr := f.fl.syncGate, f.fl.syncErr
	f.fl.mu.Unlock()
	if gate != nil {
		f.fl.signal()
		<-gate
	}
	if serr != nil {
		return serr
	}
	f.fl.mu.Lock()
	f.fl.syncs++
	f.fl.mu.Unlock()
	return f.file.Sync()
}

func (f *faultFile) Truncate(n int64) error {
	f.fl.mu.Lock()
	terr := f.fl.truncErr
	f.fl.mu.Unlock()
	if terr != nil {
		return terr
	}
	return f.file.Truncate(n)
}

var errDiskFull = errors.New("no space left on device (injected)")

// event returns a typical decision record.
func event(i int) *Event {
	return &Event{
		Time: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Millisecond),
		Kind: KindDecision, RequestID: fmt.Sprintf("req-%04d", i), Route: "docs", Upstream: "docs-mcp",
		Subject: "user-42", ClientID: "client-a", Token: "fp-1a2b3c", Method: "tools/call",
		Tool: "read_document", Decision: Allow, Rule: "tool:read_document", Scopes: []string{"docs.read"},
	}
}

// mustWrite writes e and fails the test on error.
func mustWrite(t testing.TB, s Sink, e *Event) {
	t.Helper()
	if err := s.Write(context.Background(), e); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// readLines returns a file's lines without "\n" and whether it ended
// with one.
func readLines(t testing.TB, p string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("%s ends with an incomplete line", p)
	}
	return bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

func parseLine(t testing.TB, line []byte) Event {
	t.Helper()
	var e Event
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	return e
}

// mustVerify verifies files with keys and fails unless the report is OK.
func mustVerify(t testing.TB, files []string, keys ...ed25519.PublicKey) *Report {
	t.Helper()
	r, err := Verify(files, keys)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		var b strings.Builder
		r.Write(&b)
		t.Fatalf("verify: %s", b.String())
	}
	return r
}

// within runs fn and fails the test if it has not returned after d; it
// returns fn's error.
func within(t testing.TB, d time.Duration, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
		return nil
	}
}

// countLines counts the log lines holding s.
func countLines(log, s string) int {
	n := 0
	for l := range strings.Lines(log) {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

func glob(t testing.TB, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
