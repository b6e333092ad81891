package session

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

var (
	alice = Principal{"https://as", "alice", "client-1"}
	bob   = Principal{"https://as", "bob", "client-1"}
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func bind(t *testing.T, s *Store, id string, p Principal, route string) {
	t.Helper()
	r, err := s.Reserve(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(id, Binding{Principal: p, Route: route, Version: "2025-11-25"}); err != nil {
		t.Fatal(err)
	}
}

func TestLookupOwnership(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	s := New(Config{IdleTimeout: time.Minute, Now: c.now})
	bind(t, s, "sess-1", alice, "docs")

	for _, tc := range []struct {
		name  string
		id    string
		p     Principal
		route string
		want  error
	}{
		{"owner", "sess-1", alice, "docs", nil},
		{"other subject", "sess-1", bob, "docs", ErrUnknown},
		{"other client", "sess-1", Principal{"https://as", "alice", "client-2"}, "docs", ErrUnknown},
		{"other issuer", "sess-1", Principal{"https://other", "alice", "client-1"}, "docs", ErrUnknown},
		{"other route", "sess-1", alice, "mail", ErrUnknown},
		{"unknown id", "sess-2", alice, "docs", ErrUnknown},
		{"case variant id", "SESS-1", alice, "docs", ErrUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := s.Lookup(tc.id, tc.p, tc.route)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil && b.Version != "2025-11-25" {
				t.Errorf("binding = %+v", b)
			}
		})
	}

	// Idle expiry, refreshed by use.
	c.add(50 * time.Second)
	if _, err := s.Lookup("sess-1", alice, "docs"); err != nil {
		t.Fatalf("before idle timeout: %v", err)
	}
	c.add(50 * time.Second)
	if _, err := s.Lookup("sess-1", alice, "docs"); err != nil {
		t.Fatalf("use refreshes the idle timer: %v", err)
	}
	c.add(61 * time.Second)
	if _, err := s.Lookup("sess-1", alice, "docs"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("after idle timeout: %v", err)
	}
	if s.Len() != 0 {
		t.Errorf("expired binding kept")
	}
}

func TestCommitNeverStealsASession(t *testing.T) {
	s := New(Config{})
	bind(t, s, "sess-1", alice, "docs")
	r, err := s.Reserve(bob)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Commit("sess-1", Binding{Principal: bob, Route: "docs"}); !errors.Is(err, ErrUnknown) {
		t.Fatalf("commit over another's session: %v", err)
	}
	if _, err := s.Lookup("sess-1", alice, "docs"); err != nil {
		t.Errorf("owner lost the session: %v", err)
	}
	if _, err := s.Lookup("sess-1", bob, "docs"); err == nil {
		t.Errorf("bob took over alice's session")
	}
}

func TestCaps(t *testing.T) {
	s := New(Config{MaxPerPrincipal: 2, MaxSessions: 3})
	bind(t, s, "a1", alice, "docs")
	r, err := s.Reserve(alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(alice); !errors.Is(err, ErrTooManySessions) {
		t.Fatalf("third alice session (one pending): %v", err)
	}
	r.Release()
	r.Release() // idempotent
	bind(t, s, "a2", alice, "docs")
	bind(t, s, "b1", bob, "docs")
	if _, err := s.Reserve(bob); !errors.Is(err, ErrFull) {
		t.Fatalf("store over capacity: %v", err)
	}
	s.Delete("a2", bob) // not bob's: no effect
	if s.Len() != 3 {
		t.Fatalf("Delete by a non-owner removed a session")
	}
	s.Delete("a2", alice)
	bind(t, s, "b2", bob, "docs")
}

func TestConcurrentReservationsRespectCap(t *testing.T) {
	s := New(Config{MaxPerPrincipal: 5})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Reserve(alice)
			if err != nil {
				return
			}
			if r.Commit(fmt.Sprint("s", i), Binding{Route: "docs"}) == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 5 || s.Len() != 5 {
		t.Errorf("%d sessions committed (%d stored), want exactly 5", ok, s.Len())
	}
}

func TestPendingServerRequests(t *testing.T) {
	s := New(Config{MaxPending: 2})
	bind(t, s, "sess", alice, "docs")
	if s.TakePending("sess", "1") {
		t.Fatal("unknown request accepted")
	}
	s.AddPending("sess", "1")
	s.AddPending("nope", "1") // unknown session: ignored
	if !s.TakePending("sess", "1") {
		t.Fatal("pending request not found")
	}
	if s.TakePending("sess", "1") {
		t.Fatal("a response was accepted twice")
	}
	s.AddPending("sess", "a")
	s.AddPending("sess", "b")
	s.AddPending("sess", "c") // evicts one; bounded
	n := 0
	for _, id := range []string{"a", "b", "c"} {
		if s.TakePending("sess", id) {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d pending kept, want the bound of 2", n)
	}
}

func TestTasks(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	s := New(Config{MaxTasks: 2, TaskTTL: time.Hour, Now: c.now})
	s.BindTask("docs", "t1", alice)
	s.BindTask("docs", "t1", bob) // cannot re-own
	if !s.TaskOwnedBy("docs", "t1", alice) || s.TaskOwnedBy("docs", "t1", bob) {
		t.Fatal("task ownership wrong")
	}
	if s.TaskOwnedBy("mail", "t1", alice) {
		t.Fatal("task visible on another route")
	}
	s.BindTask("docs", "t2", bob)
	s.BindTask("docs", "t3", bob) // evicts the least recently used (t1)
	if s.TaskOwnedBy("docs", "t1", alice) {
		t.Error("store exceeded MaxTasks")
	}
	c.add(2 * time.Hour)
	if s.TaskOwnedBy("docs", "t3", bob) {
		t.Error("expired task still owned")
	}
}

func TestStreams(t *testing.T) {
	st := NewStreams(2)
	r1, err := st.Acquire(alice)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := st.Acquire(alice)
	if _, err := st.Acquire(alice); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("third stream: %v", err)
	}
	if _, err := st.Acquire(bob); err != nil {
		t.Fatalf("bob is not limited by alice: %v", err)
	}
	r1()
	r1() // idempotent
	if _, err := st.Acquire(alice); err != nil {
		t.Fatalf("after release: %v", err)
	}
	r2()
	if st.Open() != 2 {
		t.Errorf("Open = %d, want 2", st.Open())
	}
}
