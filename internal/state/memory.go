package state

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"
)

// MemoryConfig bounds a Memory store. Zero fields take the defaults shown.
type MemoryConfig struct {
	// MaxEntries is the history length kept per run; older entries are
	// dropped (taint and counts are kept). 0 → 1000.
	MaxEntries int
	// IdleTimeout forgets a record unchanged this long. 0 → 1h.
	IdleTimeout time.Duration
	// MaxRecords bounds the records kept in all; beyond it the least
	// recently updated are forgotten. 0 → 100000.
	MaxRecords int
	// Now is the clock. nil → time.Now.
	Now func() time.Time
}

// Memory is the in-process Store.
type Memory struct {
	cfg     MemoryConfig
	stripes [64]sync.Mutex // serialise Updates on the keys hashed to them

	mu       sync.Mutex // guards the fields below
	hists    map[Key]*History
	counters map[Key]*counterRec
	lastGC   time.Time
}

type counterRec struct {
	c    Counter
	seen time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty store.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 1000
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = time.Hour
	}
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = 100000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Memory{cfg: cfg, hists: map[Key]*History{}, counters: map[Key]*counterRec{}}
}

// stripeSet is a set of the 64 stripes, one bit each: taken in
// ascending order, released in descending order.
type stripeSet uint64

// lock takes the stripes of keys in a fixed order (no deadlock between
// Updates with overlapping keys) and returns them for unlock.
func (m *Memory) lock(keys ...Key) stripeSet {
	var s stripeSet
	for _, k := range keys {
		s |= 1 << (uint(k[0]) % uint(len(m.stripes)))
	}
	for i := range m.stripes {
		if s&(1<<i) != 0 {
			m.stripes[i].Lock()
		}
	}
	return s
}

func (m *Memory) unlock(s stripeSet) {
	for i := len(m.stripes) - 1; i >= 0; i-- {
		if s&(1<<i) != 0 {
			m.stripes[i].Unlock()
		}
	}
}

// Update implements Store. fn works on the stored records themselves,
// under the keys' locks: no copy, whatever the history's length.
func (m *Memory) Update(_ context.Context, h Key, c []Key, fn func(*History, []*Counter) error) error {
	var keys [8]Key
	defer m.unlock(m.lock(append(append(keys[:0], h), c...)...))
	now := m.cfg.Now()

	m.mu.Lock()
	m.gcLocked(now)
	hist := m.live(h, now)
	if hist == nil {
		hist = &History{}
	}
	var cbuf [4]*Counter
	counters := cbuf[:0]
	var rbuf [4]*counterRec
	recs := append(rbuf[:0], make([]*counterRec, len(c))...)
	for i, k := range c {
		r := m.counters[k]
		if r == nil || now.Sub(r.seen) > m.cfg.IdleTimeout {
			r = &counterRec{}
		}
		recs[i] = r
		counters = append(counters, &r.c)
	}
	m.mu.Unlock()

	if err := fn(hist, counters); err != nil {
		return err
	}
	m.trim(hist)

	m.mu.Lock()
	defer m.mu.Unlock()
	hist.LastSeen = now // under mu: gcLocked reads it
	m.hists[h] = hist
	for i, k := range c {
		recs[i].seen = now
		m.counters[k] = recs[i]
	}
	return nil
}

// AddTaint implements Store.
func (m *Memory) AddTaint(_ context.Context, h Key, labels []string) error {
	if len(labels) == 0 {
		return nil
	}
	defer m.unlock(m.lock(h))
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	hist := m.live(h, now)
	if hist == nil {
		hist = &History{}
		m.hists[h] = hist
	}
	hist.AddTaint(labels...)
	hist.LastSeen = now
	return nil
}

// live returns the stored history of h if it has not expired.
func (m *Memory) live(h Key, now time.Time) *History {
	hist := m.hists[h]
	if hist != nil && now.Sub(hist.LastSeen) > m.cfg.IdleTimeout {
		delete(m.hists, h)
		return nil
	}
	return hist
}

// trim bounds a history's entries. It reslices (amortised O(1)); the
// dropped prefix is freed when append next reallocates. Seen is bounded by
// the policy that writes it, which knows which values it may forget.
func (m *Memory) trim(h *History) {
	if n := len(h.Entries) - m.cfg.MaxEntries; n > 0 {
		clear(h.Entries[:n])
		h.Entries = h.Entries[n:]
		h.Dropped += n
	}
}

// Len returns the number of histories and counters held.
func (m *Memory) Len() (histories, counters int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.hists), len(m.counters)
}

// gcLocked drops expired records at most once a minute, and the least
// recently updated beyond MaxRecords.
func (m *Memory) gcLocked(now time.Time) {
	over := len(m.hists)+len(m.counters) > m.cfg.MaxRecords
	if !over && now.Sub(m.lastGC) < time.Minute {
		return
	}
	m.lastGC = now
	for k, h := range m.hists {
		if now.Sub(h.LastSeen) > m.cfg.IdleTimeout {
			delete(m.hists, k)
		}
	}
	for k, c := range m.counters {
		if now.Sub(c.seen) > m.cfg.IdleTimeout {
			delete(m.counters, k)
		}
	}
	if len(m.hists)+len(m.counters) <= m.cfg.MaxRecords {
		return
	}
	type aged struct {
		k    Key
		at   time.Time
		hist bool
	}
	all := make([]aged, 0, len(m.hists)+len(m.counters))
	for k, h := range m.hists {
		all = append(all, aged{k, h.LastSeen, true})
	}
	for k, c := range m.counters {
		all = append(all, aged{k, c.seen, false})
	}
	slices.SortFunc(all, func(a, b aged) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return bytes.Compare(a.k[:], b.k[:])
	})
	// Forget the oldest tenth beyond the bound, so the sort is amortised.
	drop := len(all) - m.cfg.MaxRecords + m.cfg.MaxRecords/10
	for _, a := range all[:min(drop, len(all))] {
		if a.hist {
			delete(m.hists, a.k)
		} else {
			delete(m.counters, a.k)
		}
	}
}
