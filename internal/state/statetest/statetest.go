// Package statetest is the conformance suite every state.Store
// implementation must pass: the in-process store and a shared one run the
// same tests.
package statetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/state"
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

// Factory returns a store whose MaxEntries is maxEntries and whose idle
// timeout is idle, on clock c.
type Factory func(t *testing.T, c *Clock, maxEntries int, idle time.Duration) state.Store

// Run runs the suite against stores made by newStore.
func Run(t *testing.T, newStore Factory) {
	t.Run("UpdateKeepsChanges", func(t *testing.T) { updateKeeps(t, newStore) })
	t.Run("ErrorWritesNothing", func(t *testing.T) { errorWritesNothing(t, newStore) })
	t.Run("HistoryBounded", func(t *testing.T) { historyBounded(t, newStore) })
	t.Run("IdleExpiry", func(t *testing.T) { idleExpiry(t, newStore) })
	t.Run("AddTaint", func(t *testing.T) { addTaint(t, newStore) })
	t.Run("ConcurrentUpdatesLoseNothing", func(t *testing.T) { concurrent(t, newStore) })
	t.Run("KeysIsolated", func(t *testing.T) { isolated(t, newStore) })
}

var ctx = context.Background()

func appendCall(tool string, labels ...string) func(*state.History, []*state.Counter) error {
	return func(h *state.History, c []*state.Counter) error {
		h.Entries = append(h.Entries, state.Entry{Tool: tool, Labels: labels})
		h.AddTaint(labels...)
		if h.Counts == nil {
			h.Counts = map[string]int{}
		}
		h.Counts[tool]++
		for _, ctr := range c {
			ctr.Times = append(ctr.Times, time.Unix(0, 0))
		}
		return nil
	}
}

func read(t *testing.T, s state.Store, h state.Key, c ...state.Key) (state.History, []state.Counter) {
	t.Helper()
	var hist state.History
	var cs []state.Counter
	sentinel := errors.New("read only")
	err := s.Update(ctx, h, c, func(hh *state.History, cc []*state.Counter) error {
		cs = cs[:0] // a store may run fn more than once
		hist = *hh
		hist.Entries = slices.Clone(hh.Entries)
		hist.Taint = slices.Clone(hh.Taint)
		for _, x := range cc {
			cs = append(cs, state.Counter{Times: slices.Clone(x.Times)})
		}
		return sentinel
	})
	if !errors.Is(err, sentinel) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	return hist, cs
}

func updateKeeps(t *testing.T, newStore Factory) {
	s := newStore(t, NewClock(), 100, time.Hour)
	h, c := state.NewKey("h", "1"), state.NewKey("c", "1")
	for _, tool := range []string{"a", "b"} {
		if err := s.Update(ctx, h, []state.Key{c}, appendCall(tool, "private_data")); err != nil {
			t.Fatal(err)
		}
	}
	hist, cs := read(t, s, h, c)
	if len(hist.Entries) != 2 || hist.Entries[1].Tool != "b" || hist.Counts["a"] != 1 || !hist.HasTaint("private_data") {
		t.Errorf("history = %+v", hist)
	}
	if len(cs) != 1 || len(cs[0].Times) != 2 {
		t.Errorf("counter = %+v", cs)
	}
}

func errorWritesNothing(t *testing.T, newStore Factory) {
	s := newStore(t, NewClock(), 100, time.Hour)
	h := state.NewKey("h", "2")
	boom := errors.New("denied")
	if err := s.Update(ctx, h, nil, func(*state.History, []*state.Counter) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if hist, _ := read(t, s, h); len(hist.Entries) != 0 || len(hist.Taint) != 0 {
		t.Errorf("a refused update left %+v", hist)
	}
}

func historyBounded(t *testing.T, newStore Factory) {
	s := newStore(t, NewClock(), 5, time.Hour)
	h := state.NewKey("h", "3")
	for i := range 12 {
		if err := s.Update(ctx, h, nil, appendCall(fmt.Sprint("t", i), fmt.Sprint("l", i))); err != nil {
			t.Fatal(err)
		}
	}
	hist, _ := read(t, s, h)
	if len(hist.Entries) != 5 || hist.Entries[0].Tool != "t7" || hist.Dropped != 7 {
		t.Errorf("entries %d (first %q), dropped %d; want the 5 newest and 7 dropped", len(hist.Entries), hist.Entries[0].Tool, hist.Dropped)
	}
	if len(hist.Taint) != 12 || hist.Counts["t0"] != 1 {
		t.Errorf("taint or counts trimmed with the entries: %v %v", hist.Taint, hist.Counts)
	}
}

func idleExpiry(t *testing.T, newStore Factory) {
	clk := NewClock()
	s := newStore(t, clk, 100, time.Minute)
	h, c := state.NewKey("h", "4"), state.NewKey("c", "4")
	if err := s.Update(ctx, h, []state.Key{c}, appendCall("a", "x")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(59 * time.Second)
	if hist, _ := read(t, s, h, c); len(hist.Entries) != 1 {
		t.Fatal("expired too early")
	}
	clk.Advance(2 * time.Minute)
	if hist, cs := read(t, s, h, c); len(hist.Entries) != 0 || len(hist.Taint) != 0 || len(cs[0].Times) != 0 {
		t.Errorf("kept after the idle timeout: %+v %+v", hist, cs)
	}
}

func addTaint(t *testing.T, newStore Factory) {
	s := newStore(t, NewClock(), 100, time.Hour)
	h := state.NewKey("h", "5")
	if err := s.AddTaint(ctx, h, []string{"untrusted_input", "untrusted_input"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, h, nil, appendCall("a", "private_data")); err != nil {
		t.Fatal(err)
	}
	hist, _ := read(t, s, h)
	if slices.Sorted(slices.Values(hist.Taint)) == nil || len(hist.Taint) != 2 {
		t.Errorf("taint = %v, want untrusted_input and private_data once each", hist.Taint)
	}
}

func concurrent(t *testing.T, newStore Factory) {
	s := newStore(t, NewClock(), 10000, time.Hour)
	h, c := state.NewKey("h", "6"), state.NewKey("c", "6")
	const workers, each, budget = 8, 50, 100
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for range workers {
		wg.Go(func() {
			for range each {
				err := s.Update(ctx, h, []state.Key{c}, func(hist *state.History, cs []*state.Counter) error {
					if len(cs[0].Times) >= budget {
						return errors.New("over budget")
					}
					return appendCall("x")(hist, cs)
				})
				if err == nil {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	hist, cs := read(t, s, h, c)
	if granted != budget || len(cs[0].Times) != budget || len(hist.Entries) != budget || hist.Counts["x"] != budget {
		t.Errorf("granted %d, counter %d, history %d, count %d; want exactly %d each (no lost update, no overrun)",
			granted, len(cs[0].Times), len(hist.Entries), hist.Counts["x"], budget)
	}
}

func isolated(t *testing.T, newStore Factory) {
	s := newStore(t, NewClock(), 100, time.Hour)
	a, b := state.NewKey("h", "alice"), state.NewKey("h", "bob")
	if err := s.Update(ctx, a, nil, appendCall("read", "private_data")); err != nil {
		t.Fatal(err)
	}
	if hist, _ := read(t, s, b); len(hist.Taint) != 0 || len(hist.Entries) != 0 {
		t.Errorf("state crossed keys: %+v", hist)
	}
	if state.NewKey("ab", "c") == state.NewKey("a", "bc") {
		t.Error("key parts are not length-prefixed")
	}
}
