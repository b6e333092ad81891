package jsonrpc

import (
	"fmt"
	"strings"
	"testing"
)

// nestedArgs returns a tools/call body whose arguments are about size
// bytes of nested objects and arrays.
func nestedArgs(size int) string {
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":"req-7","method":"tools/call","params":{"name":"create_issue","arguments":{"items":[`)
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"title":"Item number %d with some text","labels":["bug","p%d"],"meta":{"owner":"user%d@example.com","score":%d.5,"done":false}}`, i, i, i%3, i, i)
	}
	b.WriteString(`]}}}`)
	return b.String()
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct{ name, body string }{
		{"tools_call", typicalCall},
		{"nested_4KiB", nestedArgs(4096)},
		{"keys_1000", wideParams(1000, "")},
		{"keys_10000", wideParams(10000, "")}, // per-byte cost should match keys_1000
	} {
		data := []byte(bc.body)
		b.Run(fmt.Sprintf("%s_%dB", bc.name, len(data)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Decode(data, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLookup measures reading the tool name and arguments of a
// decoded typical tools/call.
func BenchmarkLookup(b *testing.B) {
	m, err := Decode([]byte(typicalCall), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Lookup(m.Params, "name"); !ok {
			b.Fatal("no name")
		}
		if _, ok := Lookup(m.Params, "arguments"); !ok {
			b.Fatal("no arguments")
		}
	}
}
