package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// The Redis store keeps a history as two keys: a hash with the history's
// version and its header (wireMeta, JSON) and a list of its entries
// (wireEntry, JSON, oldest first), so that recording a call appends one
// entry instead of rewriting the history. A counter is a hash (version,
// last change) and a list of its event times (decimal Unix nanoseconds):
// a call drops the expired times from the front and appends its own. Values are bounded when decoded: a corrupt or hostile
// value is an error (the call is refused), never a panic or an unbounded
// allocation.

// maxWireValue bounds one decoded value (a header, an entry).
const maxWireValue = 1 << 20

// maxCounterTimes bounds a decoded counter (budgets allow at most 10000
// calls per window; a counter never legitimately holds many more).
const maxCounterTimes = 1 << 20

type wireMeta struct {
	Dropped  int                 `json:"d,omitempty"`
	Taint    []string            `json:"t,omitempty"`
	Counts   map[string]int      `json:"c,omitempty"`
	Seen     map[string][]string `json:"s,omitempty"`
	LastSeen int64               `json:"l"`
}

type wireEntry struct {
	At     int64             `json:"at"`
	Route  string            `json:"r,omitempty"`
	Tool   string            `json:"t"`
	Labels []string          `json:"l,omitempty"`
	Args   map[string]string `json:"a,omitempty"`
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func encodeMeta(h *History) (string, error) {
	b, err := json.Marshal(wireMeta{Dropped: h.Dropped, Taint: h.Taint, Counts: h.Counts, Seen: h.Seen, LastSeen: unixNano(h.LastSeen)})
	return string(b), err
}

func encodeEntry(e *Entry) (string, error) {
	b, err := json.Marshal(wireEntry{At: unixNano(e.At), Route: e.Route, Tool: e.Tool, Labels: e.Labels, Args: e.Args})
	return string(b), err
}

var errCorrupt = errors.New("state: a stored record is malformed")

func decodeWire(s string, v any) error {
	if len(s) > maxWireValue {
		return fmt.Errorf("%w: %d bytes", errCorrupt, len(s))
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("%w: %w", errCorrupt, err)
	}
	return nil
}

// decodeHistory rebuilds a history from its header ("" = none) and
// entries, keeping at most maxEntries of the newest.
func decodeHistory(meta string, entries []string, maxEntries int) (*History, error) {
	h := &History{}
	if meta != "" {
		var m wireMeta
		if err := decodeWire(meta, &m); err != nil {
			return nil, err
		}
		if m.Dropped < 0 {
			return nil, fmt.Errorf("%w: negative dropped count", errCorrupt)
		}
		h.Dropped, h.Taint, h.Counts, h.Seen, h.LastSeen = m.Dropped, m.Taint, m.Counts, m.Seen, fromUnixNano(m.LastSeen)
	}
	if n := len(entries) - maxEntries; n > 0 {
		entries = entries[n:]
		h.Dropped += n
	}
	if len(entries) > 0 {
		h.Entries = make([]Entry, len(entries), len(entries)+1)
		for i, s := range entries {
			var w wireEntry
			if err := decodeWire(s, &w); err != nil {
				return nil, err
			}
			h.Entries[i] = Entry{At: fromUnixNano(w.At), Route: w.Route, Tool: w.Tool, Labels: w.Labels, Args: w.Args}
		}
	}
	return h, nil
}

// decodeCounter rebuilds a counter from its seen time and its times
// (decimal Unix nanoseconds), bounded in number.
func decodeCounter(seen string, times []string) (*Counter, time.Time, error) {
	c := &Counter{}
	var at time.Time
	if seen != "" {
		n, err := strconv.ParseInt(seen, 10, 64)
		if err != nil {
			return nil, at, fmt.Errorf("%w: counter time", errCorrupt)
		}
		at = fromUnixNano(n)
	}
	if len(times) > maxCounterTimes {
		return nil, at, fmt.Errorf("%w: %d counter times", errCorrupt, len(times))
	}
	if len(times) > 0 {
		c.Times = make([]time.Time, len(times), len(times)+1)
		for i, s := range times {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, at, fmt.Errorf("%w: counter time", errCorrupt)
			}
			c.Times[i] = fromUnixNano(n)
		}
	}
	return c, at, nil
}

// attemptCopy returns a copy of h that fn may change while h stays as it
// was: the maps and Seen's lists are cloned; Entries and Taint share h's
// arrays, which is safe because fn only appends to them (appends land past
// h's length, invisible to h) and one Update at a time works on a key.
func attemptCopy(h *History) *History {
	c := *h
	c.Counts = maps.Clone(h.Counts)
	if h.Seen != nil {
		c.Seen = make(map[string][]string, len(h.Seen))
		for k, v := range h.Seen {
			c.Seen[k] = slices.Clone(v)
		}
	}
	return &c
}
