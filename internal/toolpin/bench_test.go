package toolpin

import (
	"fmt"
	"testing"
)

func BenchmarkFingerprint(b *testing.B) {
	def := []byte(baseTool)
	b.ReportAllocs()
	b.SetBytes(int64(len(def)))
	for b.Loop() {
		if _, err := Fingerprint(def); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkObserveUnchanged is the steady state: a 50-tool list whose
// definitions match their pins (no file I/O).
func BenchmarkObserveUnchanged(b *testing.B) {
	p := newPins(b, Config{File: b.TempDir() + "/pins.json"})
	var tools [][]byte
	for i := range 50 {
		tools = append(tools, tool(fmt.Sprint("tool", i), "A tool that does something useful with its one argument."))
	}
	observe(b, p, route, tools...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Observe(route, tools); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStatus(b *testing.B) {
	p := newPins(b, Config{})
	observe(b, p, route, tool("search", "s"))
	b.ReportAllocs()
	for b.Loop() {
		if p.Status(route, "search") != Pinned {
			b.Fatal("not pinned")
		}
	}
}
