// Package sessiontest is the conformance suite every session.Bindings
// implementation must pass: the in-memory store and the Redis store shared
// by replicas run the same tests.
package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/session"
)

// Clock is a settable clock for stores under test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at a fixed instant.
func NewClock() *Clock { return &Clock{t: time.Unix(1_800_000_000, 0)} }

// Now returns the current time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// Run runs the suite against stores made by newBindings, which must
// honour cfg (its Now is clock.Now) and return an empty store.
func Run(t *testing.T, newBindings func(t *testing.T, clock *Clock, cfg session.Config) session.Bindings) {
	mk := func(t *testing.T, cfg session.Config) (session.Bindings, *Clock) {
		t.Helper()
		c := NewClock()
		cfg.Now = c.Now
		return newBindings(t, c, cfg), c
	}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, func(*testing.T, session.Config) (session.Bindings, *Clock))
	}{
		{"Ownership", ownership},
		{"IdleExpiry", idleExpiry},
		{"Caps", caps},
		{"ConcurrentReservePerPrincipal", concurrentPerPrincipal},
		{"ConcurrentReserveGlobal", concurrentGlobal},
		{"CommitNeverStealsASession", commitTaken},
		{"Release", release},
		{"Delete", deleteOwner},
		{"SetVersion", setVersion},
		{"Pending", pending},
		{"PendingTakenOnce", pendingOnce},
		{"Tasks", tasks},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, mk) })
	}
}

type maker = func(*testing.T, session.Config) (session.Bindings, *Clock)

var (
	alice = session.Principal{Issuer: "https://as", Subject: "alice", ClientID: "client-1"}
	bob   = session.Principal{Issuer: "https://as", Subject: "bob", ClientID: "client-1"}
)

const version = "2025-11-25"

func bind(t *testing.T, b session.Bindings, id string, p session.Principal, route string) {
	t.Helper()
	s, err := b.Reserve(context.Background(), p)
	if err != nil {
		t.Fatalf("reserve for %s: %v", id, err)
	}
	if err := s.Commit(context.Background(), id, session.Binding{Principal: p, Route: route, Version: version}); err != nil {
		t.Fatalf("commit %s: %v", id, err)
	}
}

// lookup returns Lookup's error, failing the test on any error other
// than ErrUnknown.
func lookup(t *testing.T, b session.Bindings, id string, p session.Principal, route string) (session.Binding, error) {
	t.Helper()
	got, err := b.Lookup(context.Background(), id, p, route)
	if err != nil && !errors.Is(err, session.ErrUnknown) {
		t.Fatalf("lookup %s: %v", id, err)
	}
	if err == nil && (got.Principal != p || got.Route != route) {
		t.Fatalf("lookup %s = %+v, want principal %v route %s", id, got, p, route)
	}
	return got, err
}

func mustOK(t *testing.T, b session.Bindings, id string, p session.Principal, route, why string) session.Binding {
	t.Helper()
	got, err := lookup(t, b, id, p, route)
	if err != nil {
		t.Fatalf("%s: lookup %s: %v", why, id, err)
	}
	return got
}

func mustUnknown(t *testing.T, b session.Bindings, id string, p session.Principal, route, why string) {
	t.Helper()
	if _, err := lookup(t, b, id, p, route); err == nil {
		t.Fatalf("%s: lookup %s succeeded, want ErrUnknown", why, id)
	}
}

func reserveErr(t *testing.T, b session.Bindings, p session.Principal) (session.Slot, error) {
	t.Helper()
	s, err := b.Reserve(context.Background(), p)
	if err != nil && !errors.Is(err, session.ErrTooManySessions) && !errors.Is(err, session.ErrFull) {
		t.Fatalf("reserve: %v", err)
	}
	return s, err
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ownership(t *testing.T, mk maker) {
	b, _ := mk(t, session.Config{IdleTimeout: time.Minute})
	bind(t, b, "sess-1", alice, "docs")
	for _, tc := range []struct {
		name  string
		id    string
		p     session.Principal
		route string
		ok    bool
	}{
		{"owner", "sess-1", alice, "docs", true},
		{"other subject", "sess-1", bob, "docs", false},
		{"other client", "sess-1", session.Principal{Issuer: "https://as", Subject: "alice", ClientID: "client-2"}, "docs", false},
		{"other issuer", "sess-1", session.Principal{Issuer: "https://other", Subject: "alice", ClientID: "client-1"}, "docs", false},
		{"fields shifted", "sess-1", session.Principal{Issuer: "https://asalice", Subject: "", ClientID: "client-1"}, "docs", false},
		{"zero principal", "sess-1", session.Principal{}, "docs", false},
		{"other route", "sess-1", alice, "mail", false},
		{"empty route", "sess-1", alice, "", false},
		{"unknown id", "sess-2", alice, "docs", false},
		{"case variant id", "SESS-1", alice, "docs", false},
		{"empty id", "", alice, "docs", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := lookup(t, b, tc.id, tc.p, tc.route)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err == nil && got.Version != version {
				t.Errorf("binding = %+v", got)
			}
		})
	}
}

func idleExpiry(t *testing.T, mk maker) {
	b, c := mk(t, session.Config{IdleTimeout: time.Minute, MaxPerPrincipal: 1})
	bind(t, b, "s1", alice, "docs")
	c.Advance(50 * time.Second)
	mustOK(t, b, "s1", alice, "docs", "before the idle timeout")
	c.Advance(50 * time.Second)
	mustOK(t, b, "s1", alice, "docs", "use refreshes the idle timer")
	c.Advance(61 * time.Second)
	mustUnknown(t, b, "s1", alice, "docs", "after the idle timeout")
	mustUnknown(t, b, "s1", alice, "docs", "expired stays expired")

	// The expired session no longer counts against alice's cap.
	bind(t, b, "s2", alice, "docs")
	// An idle session frees its slot even if never looked up again, and
	// its id can be bound anew (to anyone).
	c.Advance(2 * time.Minute)
	s, err := reserveErr(t, b, alice)
	if err != nil {
		t.Fatalf("an idle session still holds alice's only slot: %v", err)
	}
	s.Release()
	bind(t, b, "s2", bob, "docs")
	mustOK(t, b, "s2", bob, "docs", "expired id bound again")
	mustUnknown(t, b, "s2", alice, "docs", "the former owner")
}

func caps(t *testing.T, mk maker) {
	b, _ := mk(t, session.Config{MaxPerPrincipal: 2, MaxSessions: 3})
	bind(t, b, "a1", alice, "docs")
	r, err := reserveErr(t, b, alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reserveErr(t, b, alice); !errors.Is(err, session.ErrTooManySessions) {
		t.Fatalf("third alice session (one reserved): %v", err)
	}
	r.Release()
	r.Release() // idempotent
	bind(t, b, "a2", alice, "docs")
	if _, err := reserveErr(t, b, alice); !errors.Is(err, session.ErrTooManySessions) {
		t.Fatalf("third alice session: %v", err)
	}
	bind(t, b, "b1", bob, "docs")
	if _, err := reserveErr(t, b, bob); !errors.Is(err, session.ErrFull) {
		t.Fatalf("store over capacity: %v", err)
	}
	noErr(t, b.Delete(context.Background(), "a2", bob)) // not bob's: no effect
	if _, err := reserveErr(t, b, bob); !errors.Is(err, session.ErrFull) {
		t.Fatalf("a Delete by a non-owner freed a slot: %v", err)
	}
	mustOK(t, b, "a2", alice, "docs", "after a non-owner's Delete")
	noErr(t, b.Delete(context.Background(), "a2", alice))
	bind(t, b, "b2", bob, "docs")
	if _, err := reserveErr(t, b, alice); !errors.Is(err, session.ErrFull) {
		t.Fatalf("store over capacity: %v", err)
	}
}

func concurrentPerPrincipal(t *testing.T, mk maker) {
	b, _ := mk(t, session.Config{MaxPerPrincipal: 5})
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			s, err := b.Reserve(context.Background(), alice)
			if errors.Is(err, session.ErrTooManySessions) {
				refused.Add(1)
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			if err := s.Commit(context.Background(), fmt.Sprint("s", i), session.Binding{Principal: alice, Route: "docs"}); err != nil {
				t.Error(err)
				return
			}
			ok.Add(1)
		})
	}
	wg.Wait()
	if ok.Load() != 5 || refused.Load() != 45 {
		t.Errorf("%d sessions committed, %d refused; want exactly 5 and 45", ok.Load(), refused.Load())
	}
	found := 0
	for i := range 50 {
		if _, err := lookup(t, b, fmt.Sprint("s", i), alice, "docs"); err == nil {
			found++
		}
	}
	if found != 5 {
		t.Errorf("%d sessions stored, want 5", found)
	}
}

func concurrentGlobal(t *testing.T, mk maker) {
	b, _ := mk(t, session.Config{MaxSessions: 7})
	var ok, full atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			p := session.Principal{Issuer: "https://as", Subject: fmt.Sprint("user-", i), ClientID: "c"}
			_, err := b.Reserve(context.Background(), p) // held, never released
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, session.ErrFull):
				full.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 7 || full.Load() != 33 {
		t.Errorf("%d reservations granted, %d refused as full; want 7 and 33", ok.Load(), full.Load())
	}
}

func commitTaken(t *testing.T, mk maker) {
	b, _ := mk(t, session.Config{MaxPerPrincipal: 2})
	ctx := context.Background()
	bind(t, b, "sess-1", alice, "docs")
	s, err := reserveErr(t, b, bob)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "sess-1", session.Binding{Principal: bob, Route: "docs"}); !errors.Is(err, session.ErrUnknown) {
		t.Fatalf("commit over another's session: %v", err)
	}
	mustOK(t, b, "sess-1", alice, "docs", "the owner keeps the session")
	mustUnknown(t, b, "sess-1", bob, "docs", "bob took over alice's session")
	// bob's slot was released by the refused Commit.
	for range 2 {
		if _, err := reserveErr(t, b, bob); err != nil {
			t.Fatalf("the refused commit kept bob's slot: %v", err)
		}
	}
	// The same principal on another route is refused too.
	s, err = reserveErr(t, b, alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "sess-1", session.Binding{Principal: alice, Route: "mail"}); !errors.Is(err, session.ErrUnknown) {
		t.Fatalf("commit of alice's session on another route: %v", err)
	}
	mustUnknown(t, b, "sess-1", alice, "mail", "route of a refused commit")
	// The same principal and route: accepted, nothing changes, and the
	// slot is given back.
	s, err = reserveErr(t, b, alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "sess-1", session.Binding{Principal: alice, Route: "docs"}); err != nil {
		t.Fatalf("commit of the owner's own session: %v", err)
	}
	mustOK(t, b, "sess-1", alice, "docs", "after the owner's second commit")
	if _, err := reserveErr(t, b, alice); err != nil {
		t.Fatalf("the second commit kept its slot: %v", err)
	}
}

func release(t *testing.T, mk maker) {
	b, _ := mk(t, session.Config{MaxPerPrincipal: 1})
	ctx := context.Background()
	r1, err := reserveErr(t, b, alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reserveErr(t, b, alice); !errors.Is(err, session.ErrTooManySessions) {
		t.Fatalf("second reservation: %v", err)
	}
	r1.Release()
	r1.Release()
	r2, err := reserveErr(t, b, alice)
	if err != nil {
		t.Fatalf("Release did not free the slot: %v", err)
	}
	noErr(t, r2.Commit(ctx, "s1", session.Binding{Principal: alice, Route: "docs"}))
	noErr(t, r2.Commit(ctx, "s2", session.Binding{Principal: alice, Route: "docs"})) // a second Commit does nothing
	r2.Release()                                                                     // after Commit: nothing
	mustOK(t, b, "s1", alice, "docs", "Release after Commit")
	mustUnknown(t, b, "s2", alice, "docs", "second Commit of one slot")
	if _, err := reserveErr(t, b, alice); !errors.Is(err, session.ErrTooManySessions) {
		t.Fatalf("Release after Commit freed the committed session's slot: %v", err)
	}
	// Commit after Release binds nothing.
	rb, err := reserveErr(t, b, bob)
	if err != nil {
		t.Fatal(err)
	}
	rb.Release()
	noErr(t, rb.Commit(ctx, "sb", session.Binding{Principal: bob, Route: "docs"}))
	mustUnknown(t, b, "sb", bob, "docs", "Commit after Release")
	if _, err := reserveErr(t, b, bob); err != nil {
		t.Fatalf("Commit after Release took a slot: %v", err)
	}
}

func deleteOwner(t *testing.T, mk maker) {
	b, _ := mk(t, session.Config{MaxPerPrincipal: 1})
	ctx := context.Background()
	bind(t, b, "s1", alice, "docs")
	noErr(t, b.AddPending(ctx, "s1", "1"))
	noErr(t, b.Delete(ctx, "s1", bob))
	mustOK(t, b, "s1", alice, "docs", "after a Delete by a non-owner")
	noErr(t, b.Delete(ctx, "unknown", alice))
	noErr(t, b.Delete(ctx, "s1", alice))
	mustUnknown(t, b, "s1", alice, "docs", "after the owner's Delete")
	noErr(t, b.Delete(ctx, "s1", alice)) // again: nothing to do
	// The slot is free and the id can be bound again, without the
	// deleted session's pending requests.
	bind(t, b, "s1", alice, "docs")
	if ok, err := b.TakePending(ctx, "s1", "1"); err != nil || ok {
		t.Fatalf("pending request of a deleted session: %v %v", ok, err)
	}
}

func setVersion(t *testing.T, mk maker) {
	b, _ := mk(t, session.Config{})
	ctx := context.Background()
	bind(t, b, "s1", alice, "docs")
	noErr(t, b.SetVersion(ctx, "s1", bob, "1999-01-01"))
	if got := mustOK(t, b, "s1", alice, "docs", "after a non-owner's SetVersion"); got.Version != version {
		t.Fatalf("a non-owner changed the version to %q", got.Version)
	}
	noErr(t, b.SetVersion(ctx, "s1", alice, "2026-01-01"))
	if got := mustOK(t, b, "s1", alice, "docs", "after SetVersion"); got.Version != "2026-01-01" {
		t.Fatalf("version = %q, want 2026-01-01", got.Version)
	}
	noErr(t, b.SetVersion(ctx, "unknown", alice, "2026-01-01"))
	mustUnknown(t, b, "unknown", alice, "docs", "SetVersion of an unknown session")
}

func take(t *testing.T, b session.Bindings, id, req string) bool {
	t.Helper()
	ok, err := b.TakePending(context.Background(), id, req)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func pending(t *testing.T, mk maker) {
	b, _ := mk(t, session.Config{MaxPending: 2})
	ctx := context.Background()
	bind(t, b, "sess", alice, "docs")
	bind(t, b, "other", alice, "docs")
	if take(t, b, "sess", "1") {
		t.Fatal("unknown request accepted")
	}
	noErr(t, b.AddPending(ctx, "sess", "1"))
	noErr(t, b.AddPending(ctx, "nope", "1")) // unknown session: ignored
	if take(t, b, "nope", "1") {
		t.Fatal("a request on an unknown session was recorded")
	}
	if take(t, b, "other", "1") {
		t.Fatal("a request was accepted on another session")
	}
	if !take(t, b, "sess", "1") {
		t.Fatal("pending request not found")
	}
	if take(t, b, "sess", "1") {
		t.Fatal("a response was accepted twice")
	}
	noErr(t, b.AddPending(ctx, "sess", `"a"`))
	noErr(t, b.AddPending(ctx, "sess", `"b"`))
	noErr(t, b.AddPending(ctx, "sess", `"c"`)) // evicts one; bounded
	n := 0
	for _, id := range []string{`"a"`, `"b"`, `"c"`} {
		if take(t, b, "sess", id) {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d pending kept, want the bound of 2", n)
	}
	if take(t, b, "sess", "a") {
		t.Error("a request id matched without its JSON quotes")
	}
}

func pendingOnce(t *testing.T, mk maker) {
	b, _ := mk(t, session.Config{})
	bind(t, b, "sess", alice, "docs")
	noErr(t, b.AddPending(context.Background(), "sess", "7"))
	var won atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			ok, err := b.TakePending(context.Background(), "sess", "7")
			if err != nil {
				t.Error(err)
			}
			if ok {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d concurrent takes of one request succeeded, want 1", won.Load())
	}
}

func owned(t *testing.T, b session.Bindings, route, task string, p session.Principal) bool {
	t.Helper()
	ok, err := b.TaskOwnedBy(context.Background(), route, task, p)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func tasks(t *testing.T, mk maker) {
	b, c := mk(t, session.Config{TaskTTL: time.Hour})
	ctx := context.Background()
	noErr(t, b.BindTask(ctx, "docs", "t1", alice))
	noErr(t, b.BindTask(ctx, "docs", "t1", bob)) // cannot re-own
	if !owned(t, b, "docs", "t1", alice) || owned(t, b, "docs", "t1", bob) {
		t.Fatal("task ownership wrong")
	}
	if owned(t, b, "mail", "t1", alice) {
		t.Fatal("task visible on another route")
	}
	if owned(t, b, "docs", "t2", alice) {
		t.Fatal("unknown task owned")
	}
	noErr(t, b.BindTask(ctx, "docs", "t1", alice)) // binding again: still alice's
	for range 3 {
		c.Advance(40 * time.Minute)
		if !owned(t, b, "docs", "t1", alice) {
			t.Fatal("use did not refresh the task")
		}
	}
	c.Advance(61 * time.Minute)
	if owned(t, b, "docs", "t1", alice) {
		t.Fatal("expired task still owned")
	}
	noErr(t, b.BindTask(ctx, "docs", "t1", bob)) // expired: a new task of that id
	if !owned(t, b, "docs", "t1", bob) || owned(t, b, "docs", "t1", alice) {
		t.Fatal("an expired task id bound again has the wrong owner")
	}
}
