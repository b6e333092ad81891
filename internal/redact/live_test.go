package redact

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// TestScanStringMatchesScanText: ScanString gives ScanText's answer for
// every fixture and for clean text, its output never aliases the buffer
// it reuses, and a Live re-initialised for another exchange forgets the
// previous live credentials.
func TestScanStringMatchesScanText(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 9))
	live := randTok(r, alnumChars, 40)
	var l Live
	l.Init(s, []string{live})
	inputs := []string{"", "plain header value", "x-trace " + live + " end"}
	for _, f := range fixtures(r) {
		inputs = append(inputs, f.text)
	}
	var outs [][]byte
	for _, in := range inputs {
		want := s.Prepare([]string{live}).ScanText([]byte(in))
		got := l.ScanString(in)
		if got.Changed != want.Changed || got.Blocked != want.Blocked || len(got.Findings) != len(want.Findings) {
			t.Fatalf("ScanString(%.40q) = %+v, ScanText %+v", in, got, want)
		}
		if got.Changed {
			if string(got.Out) != string(want.Out) {
				t.Fatalf("ScanString(%.40q) out %q, ScanText %q", in, got.Out, want.Out)
			}
			outs = append(outs, got.Out)
		} else if got.Out != nil {
			t.Fatalf("ScanString(%.40q): Out set without a change", in)
		}
	}
	// Later scans overwrite the reused buffer: earlier outputs must not
	// change with it.
	snapshot := make([]string, len(outs))
	for i, o := range outs {
		snapshot[i] = string(o)
	}
	for range 3 {
		l.ScanString(strings.Repeat("z", 300))
	}
	for i, o := range outs {
		if string(o) != snapshot[i] {
			t.Fatalf("output %d changed after later scans: %q", i, o)
		}
	}
	if res := l.ScanString("id " + live); !res.Changed {
		t.Fatal("the live credential was not redacted")
	}
	l.Init(s, nil)
	if res := l.ScanString("id " + live); res.Changed {
		t.Fatal("a re-initialised Live still knows the previous exchange's credential")
	}
}

// TestLiveCleanScanAllocs: a clean header value scanned through a prepared
// Live allocates nothing.
func TestLiveCleanScanAllocs(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var l Live
	l.Init(s, []string{strings.Repeat("k", 40)})
	l.ScanString("warm-up")
	if n := testing.AllocsPerRun(100, func() { l.ScanString("application/json, text/event-stream") }); n != 0 {
		t.Fatalf("clean ScanString: %v allocations", n)
	}
}

// TestScanStringCleanCache: a text found clean once is not rescanned by
// the detectors, but a live credential of a later exchange inside it is
// still found; texts with findings are never remembered as clean.
func TestScanStringCleanCache(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	tok := randTok(r, alnumChars, 32)
	value := "trace " + tok
	var first Live
	first.Init(s, []string{randTok(r, alnumChars, 32)})
	if res := first.ScanString(value); res.Changed || len(res.Findings) != 0 {
		t.Fatalf("first scan: %+v", res)
	}
	if !s.clean.has(value) {
		t.Fatal("a clean value was not remembered")
	}
	var second Live
	second.Init(s, []string{tok}) // the same bytes are now a live credential
	res := second.ScanString(value)
	if !res.Changed || strings.Contains(string(res.Out), tok) {
		t.Fatalf("the live credential inside a remembered value was missed: %+v", res)
	}
	for _, f := range fixtures(r) {
		if len(f.text) > maxCleanLen {
			continue
		}
		first.ScanString(f.text)
		if s.clean.has(f.text) {
			t.Fatalf("a text with a %s credential was remembered as clean", f.det)
		}
	}
	// Bounded: long texts are never kept, and the set stops growing.
	first.ScanString(strings.Repeat("q", maxCleanLen+1))
	if s.clean.has(strings.Repeat("q", maxCleanLen+1)) {
		t.Fatal("a long text was remembered")
	}
	for i := range maxCleanEntries + 10 {
		first.ScanString("value-" + strconv.Itoa(i))
	}
	if n := s.clean.n.Load(); n > maxCleanEntries {
		t.Fatalf("%d entries, bound %d", n, maxCleanEntries)
	}
}

// BenchmarkScanString: a header value scanned through a prepared Live
// once known clean (the first scan of a value is BenchmarkScanText/header).
func BenchmarkScanString(b *testing.B) {
	s, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	var l Live
	l.Init(s, []string{strings.Repeat("k", 40)})
	b.Run("repeated", func(b *testing.B) {
		l.ScanString("application/json, text/event-stream")
		b.ReportAllocs()
		for b.Loop() {
			l.ScanString("application/json, text/event-stream")
		}
	})
}

// TestScanStringCleanCacheEscapes: a text holding an escaped form of a
// credential that is not live yet is not remembered as clean, so a later
// exchange whose credential it is still finds it.
func TestScanStringCleanCacheEscapes(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	tok := randTok(r, alnumChars, 32)
	var esc strings.Builder
	for _, c := range tok {
		fmt.Fprintf(&esc, `\u%04x`, c)
	}
	value := "v=" + esc.String()
	var other Live
	other.Init(s, []string{randTok(r, alnumChars, 32)})
	if res := other.ScanString(value); res.Changed {
		t.Fatalf("scanned with another credential: %+v", res)
	}
	if s.clean.has(value) {
		t.Fatal("a text with escapes was remembered as clean")
	}
	var owner Live
	owner.Init(s, []string{tok})
	if res := owner.ScanString(value); !res.Changed && !res.Blocked {
		t.Fatal("the escaped live credential passed")
	}
}
