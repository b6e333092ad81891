package anomaly

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

const benchPrincipals = 10000

// benchSetup returns a detector warmed for 15 minutes on 10 000
// principals over 8 routes, 5 tools and one token each, every principal
// calling every gap, and their observations.
func benchSetup(b *testing.B, gap time.Duration) (*Detector, []Observation) {
	d := newDetector(b, Config{})
	obs := make([]Observation, benchPrincipals)
	for i := range obs {
		obs[i] = Observation{Route: fmt.Sprint("/mcp/", i%8), Principal: principalKey(i),
			TokenFP: fmt.Sprintf("%016x", i*7919), Denied: i%50 == 0}
	}
	tools := names("tool-", 5)
	at := t0
	for round := range int(15 * time.Minute / gap) {
		for i := range obs {
			o := obs[i]
			o.Time = at.Add(time.Duration(i) * gap / benchPrincipals)
			o.Tool = tools[(round+i)%5]
			d.Observe(o)
		}
		at = at.Add(gap)
	}
	for i := range obs {
		obs[i].Time = at
		obs[i].Tool = tools[i%5]
	}
	return d, obs
}

// BenchmarkObserve: steady state, 10 000 principals, each calling every
// gap. At 10 s nearly every call closes a tick of its principal (the fold
// path); at 1 s one call in ten does.
func BenchmarkObserve(b *testing.B) {
	for _, gap := range []time.Duration{time.Second, 10 * time.Second} {
		b.Run(fmt.Sprint("gap=", gap), func(b *testing.B) {
			d, obs := benchSetup(b, gap)
			at := obs[0].Time
			step := gap / benchPrincipals
			tools := names("tool-", 5)
			raised := 0
			i := 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				o := &obs[i%benchPrincipals]
				at = at.Add(step)
				o.Time = at
				o.Tool = tools[(i/benchPrincipals+i)%5]
				raised += len(d.Observe(*o))
				i++
			}
			if raised != 0 {
				b.Fatalf("steady state raised %d anomalies", raised)
			}
		})
	}
}

func BenchmarkObserveParallel(b *testing.B) {
	d, obs := benchSetup(b, time.Second)
	base := obs[0].Time
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			o := obs[i%benchPrincipals]
			o.Time = base.Add(time.Duration(i) * time.Second / benchPrincipals)
			d.Observe(o)
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	d, obs := benchSetup(b, 10*time.Second)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		d.Check(obs[i%benchPrincipals].Principal, obs[0].Time)
		i++
	}
}

// TestBytesPerPrincipal measures the heap a tracked principal costs, map
// included: 3 tools and one token each (see the package doc).
func TestBytesPerPrincipal(t *testing.T) {
	const n = 50000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = principalKey(i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := newDetector(t, Config{})
	for i, k := range keys {
		for j := range 3 {
			d.Observe(Observation{Time: t0, Principal: k, Tool: fmt.Sprint("tool-", (i+j)%5), TokenFP: "tok"})
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per principal", per)
	if per > 400 || per < 200 {
		t.Errorf("%.0f bytes per principal, documented about 300", per)
	}
	runtime.KeepAlive(d)
	runtime.KeepAlive(keys)
}
