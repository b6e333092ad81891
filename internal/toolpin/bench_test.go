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

// benchTools returns n distinct definitions.
func benchTools(n int) [][]byte {
	tools := make([][]byte, 0, n)
	for i := range n {
		tools = append(tools, tool(fmt.Sprint("tool", i), "A tool that does something useful with its one argument."))
	}
	return tools
}

// BenchmarkObserveUnchanged is the steady state: a list whose definitions
// match their pins, byte for byte as last observed (no file I/O).
func BenchmarkObserveUnchanged(b *testing.B) {
	for _, n := range []int{50, 500} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			p := newPins(b, Config{File: b.TempDir() + "/pins.json"})
			tools := benchTools(n)
			observe(b, p, route, tools...)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Observe(route, tools); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkObserveVariants is the slow path of the steady state: every
// list spells the same 500 definitions differently from the list before
// (indented or not), so each definition is canonicalized again.
func BenchmarkObserveVariants(b *testing.B) {
	p := newPins(b, Config{File: b.TempDir() + "/pins.json"})
	compact := benchTools(500)
	indented := make([][]byte, len(compact))
	for i, t := range compact {
		indented[i] = indent(b, t)
	}
	observe(b, p, route, compact...)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tools := compact
		if i++; i%2 == 1 {
			tools = indented
		}
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
