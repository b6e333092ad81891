package jsonrpc

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestDuplicateMessageIsSafe checks that a duplicate name is echoed
// truncated and escaped, never raw.
func TestDuplicateMessageIsSafe(t *testing.T) {
	long := strings.Repeat("é", 100) + "\u202e<script>\u0007"
	in := `{"jsonrpc":"2.0","method":"n","params":{"` + long + `":1,"` + strings.ToUpper(long) + `":2}}`
	in = strings.ReplaceAll(in, "\u0007", `\u0007`) // raw control characters are a parse error
	_, err := Decode([]byte(in), Limits{})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInvalidRequest {
		t.Fatalf("Decode = %v, want invalid request", err)
	}
	if len(e.Message) > 64*6+64 {
		t.Errorf("message is %d bytes long", len(e.Message))
	}
	for _, r := range e.Message {
		if r < 0x20 || r > 0x7e {
			t.Fatalf("message %q holds %U", e.Message, r)
		}
	}
	if !strings.Contains(e.Message, `\u00c9\u00c9`) || !strings.HasSuffix(e.Message, `"...`) {
		t.Errorf("message %q: want escaped, truncated name", e.Message)
	}
}

// TestDuplicateDetectionAtEverySize puts a case variant of each earlier key
// last, in objects below and above the pairwise limit, nested inside other
// objects, so that both strategies and the spill buffers are exercised.
func TestDuplicateDetectionAtEverySize(t *testing.T) {
	for n := 1; n <= 3*pairwiseMax; n++ {
		for _, escaped := range []bool{false, true} {
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("key-%d-%s", i, strings.Repeat("x", i%7))
				if escaped {
					keys[i] = `\u006b` + keys[i][1:] // "k" escaped
				}
			}
			obj := func(extra string) string {
				var b strings.Builder
				b.WriteString(`{"jsonrpc":"2.0","method":"n","params":{"pad":{"a":1,"b":{"c":2}},"args":[0,{`)
				for i, k := range keys {
					fmt.Fprintf(&b, `"%s":{"k":%d},`, k, i)
				}
				b.WriteString(`"last":{"LAST":0}` + extra + `}]}}`)
				return b.String()
			}
			if _, err := Decode([]byte(obj("")), Limits{}); err != nil {
				t.Fatalf("n=%d escaped=%v: distinct keys rejected: %v", n, escaped, err)
			}
			for i := range n {
				variant := `,"K` + fmt.Sprintf("EY-%d-%s", i, strings.Repeat("X", i%7)) + `":1`
				_, err := Decode([]byte(obj(variant)), Limits{})
				if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "duplicate") {
					t.Fatalf("n=%d escaped=%v i=%d: Decode = %v, want duplicate", n, escaped, i, err)
				}
			}
		}
	}
}

// TestManyLargeObjects checks that the hash sets of large objects are
// released and reused correctly: siblings, nesting, and a duplicate found
// in an outer object after inner large objects closed.
func TestManyLargeObjects(t *testing.T) {
	big := func(prefix string, n int, inner string) string {
		var b strings.Builder
		b.WriteByte('{')
		for i := range n {
			fmt.Fprintf(&b, `"%s%d":%s,`, prefix, i, inner)
		}
		b.WriteString(`"end":0}`)
		return b.String()
	}
	wrap := func(params string) []byte {
		return []byte(`{"jsonrpc":"2.0","method":"n","params":` + params + `}`)
	}
	inner := big("i", 20, "0")
	outer := big("o", 20, inner) // 20 large objects, each inside a large object
	if _, err := Decode(wrap(outer), Limits{}); err != nil {
		t.Fatalf("nested large objects rejected: %v", err)
	}
	dupOuter := outer[:len(outer)-1] + `,"O3":1}`
	if _, err := Decode(wrap(dupOuter), Limits{}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("duplicate in outer object after inner ones: %v", err)
	}
	dupInner := big("o", 20, big("i", 20, "0")[:len(inner)-1]+`,"I19":1}`)
	if _, err := Decode(wrap(dupInner), Limits{}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("duplicate in inner object: %v", err)
	}
}

// TestNameCheckIsLinear bounds the number of name comparisons, so that the
// duplicate check cannot be made quadratic: a wide object costs at most the
// pairwise phase, and many small objects cost at most pairwiseMax per name.
func TestNameCheckIsLinear(t *testing.T) {
	prefix := strings.Repeat("p", 200) // long shared prefix: slow comparisons
	wide := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"jsonrpc":"2.0","method":"n","params":{`)
		for i := range n {
			fmt.Fprintf(&b, `"%s%d":0,`, prefix, i)
		}
		b.WriteString(`"end":0}}`)
		return b.String()
	}
	small := func(objects int) string {
		var b strings.Builder
		b.WriteString(`{"jsonrpc":"2.0","method":"n","params":{"a":[`)
		for i := range objects {
			b.WriteByte('{')
			for k := range pairwiseMax - 1 {
				fmt.Fprintf(&b, `"%s%d":%d,`, prefix, k, i)
			}
			b.WriteString(`"end":0},`)
		}
		b.WriteString(`{}]}}`)
		return b.String()
	}
	for _, tt := range []struct {
		name  string
		in    string
		names int // member names in the input
	}{
		{"wide 1000", wide(1000), 1000 + 4},
		{"wide 10000", wide(10000), 10000 + 4},
		{"small objects 1000", small(1000), 1000*pairwiseMax + 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ns nameState
			if _, err := decode([]byte(tt.in), Limits{}, &ns); err != nil {
				t.Fatal(err)
			}
			if limit := pairwiseMax * tt.names; ns.compares > limit {
				t.Errorf("%d comparisons for %d names, want at most %d", ns.compares, tt.names, limit)
			}
		})
	}
}
