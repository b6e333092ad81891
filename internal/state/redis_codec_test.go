package state

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCodecRoundTrip(t *testing.T) {
	at := time.Unix(1_800_000_000, 123456789)
	h := &History{
		Entries: []Entry{
			{At: at, Route: "docs", Tool: "search", Labels: []string{"read_only"}, Args: map[string]string{"workspace": "ab12"}},
			{At: at.Add(time.Second), Tool: "export"},
		},
		Dropped: 7, Taint: []string{"private_data"}, Counts: map[string]int{"docs/search": 3},
		Seen: map[string][]string{"rule": {"d1", "d2"}}, LastSeen: at,
	}
	meta, err := encodeMeta(h)
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	for i := range h.Entries {
		s, err := encodeEntry(&h.Entries[i])
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, s)
	}
	got, err := decodeHistory(meta, entries, 10)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(h, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	// Fewer kept than stored: the oldest go, counted as dropped.
	got, err = decodeHistory(meta, entries, 1)
	if err != nil || len(got.Entries) != 1 || got.Entries[0].Tool != "export" || got.Dropped != 8 {
		t.Errorf("trimmed decode = %+v, %v", got, err)
	}
	gc, seen, err := decodeCounter(strconv.FormatInt(at.UnixNano(), 10), []string{strconv.FormatInt(at.UnixNano(), 10), strconv.FormatInt(at.Add(time.Millisecond).UnixNano(), 10)})
	if err != nil || len(gc.Times) != 2 || !gc.Times[1].Equal(at.Add(time.Millisecond)) || !seen.Equal(at) {
		t.Errorf("counter decode = %+v %v %v", gc, seen, err)
	}
}

func TestCounterDelta(t *testing.T) {
	at := func(s ...int) []time.Time {
		var out []time.Time
		for _, n := range s {
			out = append(out, time.Unix(int64(n), 0))
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		prev, next []time.Time
		trim       int
		add        []time.Time
	}{
		{"append to empty", nil, at(1), 0, at(1)},
		{"append", at(1, 2), at(1, 2, 3), 0, at(3)},
		{"prune and append", at(1, 2, 3), at(3, 4), 2, at(4)},
		{"prune all and append", at(1, 2), at(5), 2, at(5)},
		{"unchanged", at(1, 2), at(1, 2), 0, nil},
		{"repeated times", at(1, 1, 1), at(1, 1, 2), 1, at(2)},
		{"rewritten", at(1, 2), at(7, 8, 9, 10), 2, at(7, 8, 9, 10)},
		{"changed in the middle", at(1, 2, 3), at(1, 9, 3), 3, at(1, 9, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trim, add := counterDelta(tc.prev, tc.next)
			if trim != tc.trim || len(add) != len(tc.add) {
				t.Fatalf("trim %d add %v, want %d %v", trim, add, tc.trim, tc.add)
			}
			// Applying the delta to prev gives next.
			got := tc.prev
			if trim < 0 {
				got = nil
			} else {
				got = got[trim:]
			}
			got = append(append([]time.Time(nil), got...), add...)
			if len(got) != len(tc.next) {
				t.Fatalf("applied delta gives %v, want %v", got, tc.next)
			}
			for i := range got {
				if !got[i].Equal(tc.next[i]) {
					t.Fatalf("applied delta gives %v, want %v", got, tc.next)
				}
			}
		})
	}
}

func TestCodecRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		meta    string
		entries []string
	}{
		{"meta not json", "{", nil},
		{"meta wrong type", `{"d":"x"}`, nil},
		{"negative dropped", `{"d":-1,"l":0}`, nil},
		{"entry not json", "", []string{"nope"}},
		{"entry wrong type", "", []string{`{"t":5}`}},
		{"huge value", strings.Repeat(" ", maxWireValue+1) + "{}", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeHistory(tc.meta, tc.entries, 100); err == nil {
				t.Error("accepted")
			}
		})
	}
	if _, _, err := decodeCounter("", []string{"x"}); err == nil {
		t.Error("counter with a non-numeric time accepted")
	}
	if _, _, err := decodeCounter("soon", nil); err == nil {
		t.Error("counter with a non-numeric seen time accepted")
	}
}

func FuzzDecodeHistory(f *testing.F) {
	f.Add(`{"d":1,"t":["a"],"c":{"r/t":1},"s":{"x":["y"]},"l":5}`, `{"at":1,"r":"r","t":"t","l":["a"],"a":{"k":"v"}}`, "17")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, meta, entry, counter string) {
		h, err := decodeHistory(meta, []string{entry}, 5)
		if err == nil {
			if len(h.Entries) > 5 || h.Dropped < 0 {
				t.Fatalf("unbounded history: %d entries, dropped %d", len(h.Entries), h.Dropped)
			}
			// What decodes encodes again and decodes to the same.
			m2, err := encodeMeta(h)
			if err != nil {
				t.Fatal(err)
			}
			var es []string
			for i := range h.Entries {
				s, err := encodeEntry(&h.Entries[i])
				if err != nil {
					t.Fatal(err)
				}
				es = append(es, s)
			}
			h2, err := decodeHistory(m2, es, 5)
			if err != nil {
				t.Fatalf("re-decode: %v", err)
			}
			if len(h2.Entries) != len(h.Entries) || h2.Dropped != h.Dropped || len(h2.Taint) != len(h.Taint) {
				t.Fatalf("round trip changed the history: %+v → %+v", h, h2)
			}
		}
		if c, _, err := decodeCounter(counter, []string{counter}); err == nil && c == nil {
			t.Fatal("nil counter without an error")
		}
	})
}
