package revoke

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is the fake clock's start, deliberately not on a whole second.
var t0 = time.Date(2026, 5, 2, 9, 30, 0, 500_000_000, time.UTC)

const iss = "https://idp.example"

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// randomID returns a random token identifier built at runtime.
func randomID(t testing.TB) string {
	t.Helper()
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "id-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func newList(t testing.TB, cfg Config) (*List, *fakeClock) {
	t.Helper()
	c := newClock()
	if cfg.Now == nil {
		cfg.Now = c.Now
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l, c
}

func mustAdd(t testing.TB, l *List, e Entry) Entry {
	t.Helper()
	got, err := l.Add(e)
	if err != nil {
		t.Fatalf("Add(%+v): %v", e, err)
	}
	return got
}
