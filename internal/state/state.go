// Package state holds what mcpgate remembers between requests for
// sequence-aware policy: each agent run's call history and taint, and the
// sliding-window counters of budgets. Two stores implement the small Store
// interface and pass one conformance suite (statetest): Memory, in this
// process, and Redis, shared by replicas, which serialises the calls of
// one run across replicas with versioned records and a Lua script. Both
// keep every record bounded in size and in time.
//
// Keys are opaque, fixed-size hashes built by the caller: raw subjects,
// session ids or run ids never become keys.
package state

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"
)

// Key identifies one record.
type Key [sha256.Size]byte

// NewKey hashes parts (kind, issuer, subject, …) into a key. Parts are
// length-prefixed, so ("ab","c") and ("a","bc") differ.
func NewKey(parts ...string) Key {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		l := uint64(len(p))
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(p))
	}
	var k Key
	h.Sum(k[:0])
	return k
}

// Entry is one allowed call in a history.
type Entry struct {
	At     time.Time
	Route  string
	Tool   string
	Labels []string
	// Args holds, for the arguments that some rule compares, a digest of
	// each argument's decoded JSON value (never the value itself).
	Args map[string]string
}

// History is one agent run's record.
type History struct {
	// Entries are the most recent calls, oldest first, at most the store's
	// MaxEntries; older ones are dropped.
	Entries []Entry
	// Dropped counts entries dropped from the front.
	Dropped int
	// Taint is every label the run has acquired, from its calls and their
	// results. It is never trimmed.
	Taint []string
	// Counts is the number of calls per "route/tool", never trimmed.
	Counts map[string]int
	// Seen holds what order rules remember of past calls (argument
	// digests), per rule; the policy that writes it bounds it.
	Seen map[string][]string
	// LastSeen is the time of the last change.
	LastSeen time.Time
}

// HasTaint reports whether label is in the taint.
func (h *History) HasTaint(label string) bool {
	for _, l := range h.Taint {
		if l == label {
			return true
		}
	}
	return false
}

// AddTaint adds labels to the taint.
func (h *History) AddTaint(labels ...string) {
	for _, l := range labels {
		if !h.HasTaint(l) {
			h.Taint = append(h.Taint, l)
		}
	}
}

// Counter is a sliding-window counter: the times of the events it counts
// that are still within its window, oldest first. An update drops events
// from the front (Prune) and appends new ones; it never inserts or
// changes one in place (a shared store relies on it).
type Counter struct {
	Times []time.Time
}

// Prune drops events at or before now-window.
func (c *Counter) Prune(now time.Time, window time.Duration) {
	cut := 0
	for cut < len(c.Times) && !c.Times[cut].After(now.Add(-window)) {
		cut++
	}
	c.Times = c.Times[cut:]
}

// Store keeps histories and counters.
type Store interface {
	// Update runs fn on the history at key h and the counters at keys c,
	// atomically with respect to every other Update or AddTaint touching
	// any of them: concurrent calls of one run are serialised. Missing
	// records start empty. fn must decide before it changes anything: when
	// it returns an error it must have left the records as they were (the
	// error is returned, nothing is written). fn may append to
	// hist.Entries but not change or remove the entries it was given. A
	// shared store may run fn more than once (on newer records, after a
	// concurrent change): fn must depend on nothing but its arguments.
	// After fn the store trims the history to its bounds and refreshes
	// the records' time-to-live.
	Update(ctx context.Context, h Key, c []Key, fn func(hist *History, counters []*Counter) error) error
	// AddTaint adds labels to the taint of the history at key h (labels
	// learnt from a result, after the call was forwarded).
	AddTaint(ctx context.Context, h Key, labels []string) error
}

// ErrUnavailable is returned when the store cannot be reached; callers
// deny (fail closed).
var ErrUnavailable = errors.New("state: store unavailable")
