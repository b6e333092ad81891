package redact

import (
	"math/rand/v2"
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
