package anomaly

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"
)

// t0 is the start of every simulation: not on a window boundary.
var t0 = time.Date(2026, 3, 1, 9, 0, 7, 0, time.UTC)

func newDetector(t testing.TB, c Config) *Detector {
	t.Helper()
	if c.Now == nil {
		c.Now = func() time.Time { return t0 }
	}
	d, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// principalKey builds an issuer+subject+client_id key like the gateway's.
func principalKey(i int) string {
	return fmt.Sprintf("https://idp.example/\x00user-%04d\x00client-%d", i, i%7)
}

// steady emits n calls evenly spread over [from, from+dur).
func steady(o Observation, from time.Time, dur time.Duration, perMin int, tools []string) []Observation {
	n := int(dur.Minutes() * float64(perMin))
	out := make([]Observation, 0, n)
	for i := range n {
		x := o
		x.Time = from.Add(time.Duration(i) * dur / time.Duration(n))
		if len(tools) > 0 {
			x.Tool = tools[i%len(tools)]
		}
		out = append(out, x)
	}
	return out
}

// merge sorts observations of several streams by time (stable).
func merge(streams ...[]Observation) []Observation {
	var all []Observation
	for _, s := range streams {
		all = append(all, s...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	return all
}

// tally counts anomalies by "scope/kind".
type tally map[string]int

func run(d *Detector, obs []Observation) (tally, []Anomaly) {
	got := tally{}
	var all []Anomaly
	for _, o := range obs {
		for _, a := range d.Observe(o) {
			got[a.Scope+"/"+a.Kind]++
			all = append(all, a)
		}
	}
	return got, all
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// poisson emits calls of one principal at rate perMin with exponential
// gaps, over sessions of active minutes separated by idle minutes.
func poisson(r *rand.Rand, o Observation, from time.Time, dur time.Duration, perMin float64,
	active, idle time.Duration, tools []string, denyP float64, rotate time.Duration) []Observation {
	var out []Observation
	end := from.Add(dur)
	tok := 0
	for t := from; t.Before(end); {
		t = t.Add(time.Duration(r.ExpFloat64() / perMin * float64(time.Minute)))
		if idle > 0 && t.Sub(from)%(active+idle) >= active {
			t = t.Add(active + idle - t.Sub(from)%(active+idle))
		}
		x := o
		x.Time = t
		x.Tool = tools[r.IntN(len(tools))]
		x.Denied = r.Float64() < denyP
		if rotate > 0 {
			tok = int(t.Sub(from) / rotate)
		}
		x.TokenFP = fmt.Sprintf("%s-tok-%d", o.TokenFP, tok)
		out = append(out, x)
	}
	return out
}

// checkInvariants verifies the internal state of d.
func checkInvariants(t testing.TB, d *Detector) {
	t.Helper()
	total := 0
	check := func(what string, s *stats, maxTools int) {
		var c, dn uint32
		for i := range nTicks {
			c += s.calls[i]
			dn += s.denials[i]
			if s.denials[i] > s.calls[i] {
				t.Fatalf("%s: denials %d > calls %d in tick", what, s.denials[i], s.calls[i])
			}
		}
		if c != s.winCalls || dn != s.winDenials {
			t.Fatalf("%s: window sums %d/%d, buckets %d/%d", what, s.winCalls, s.winDenials, c, dn)
		}
		if len(s.tools) > maxTools || len(s.tokens) > d.tokenCap {
			t.Fatalf("%s: %d tools, %d tokens", what, len(s.tools), len(s.tokens))
		}
		if !slices.IsSortedFunc(s.tools, func(a, b seen) int { return int(int64(a.h) - int64(b.h)) }) {
			t.Fatalf("%s: tools not sorted", what)
		}
		for i := 1; i < len(s.tools); i++ {
			if s.tools[i].h == s.tools[i-1].h {
				t.Fatalf("%s: duplicate tool", what)
			}
		}
		if s.bCalls < 0 || s.bDeny < 0 || s.bDeny > 1 || s.bTools < 0 || s.bTokens < 0 {
			t.Fatalf("%s: baseline out of range: %+v", what, s)
		}
	}
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		if len(sh.m) > sh.max || len(sh.cool) > sh.max {
			t.Fatalf("shard %d: %d principals, %d cool-downs, max %d", i, len(sh.m), len(sh.cool), sh.max)
		}
		n := 0
		for p := sh.lru.next; p != &sh.lru; p = p.next {
			if sh.m[p.key] != p {
				t.Fatalf("shard %d: LRU holds a principal not in the map", i)
			}
			check("principal", &p.stats, maxPrincipalTools)
			n++
		}
		if n != len(sh.m) {
			t.Fatalf("shard %d: LRU %d, map %d", i, n, len(sh.m))
		}
		total += n
		sh.mu.Unlock()
	}
	if total > d.cfg.MaxPrincipals {
		t.Fatalf("%d principals tracked, max %d", total, d.cfg.MaxPrincipals)
	}
	d.routesMu.RLock()
	defer d.routesMu.RUnlock()
	for _, r := range d.routes {
		r.mu.Lock()
		check("route", &r.stats, maxRouteTools)
		r.mu.Unlock()
	}
}

func (d *Detector) principals() int {
	n := 0
	for i := range d.shards {
		d.shards[i].mu.Lock()
		n += len(d.shards[i].m)
		d.shards[i].mu.Unlock()
	}
	return n
}

func (d *Detector) lookup(principal string) *principal {
	key := d.hash(principal)
	sh := &d.shards[key&d.shardMask]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.m[key]
}
