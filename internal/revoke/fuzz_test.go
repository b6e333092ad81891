package revoke

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseFile: the parser never panics; what it accepts is valid, live,
// and survives an encode/parse round trip unchanged.
func FuzzParseFile(f *testing.F) {
	f.Add([]byte(validFile()))
	for _, c := range corruptFiles {
		f.Add([]byte(c.content))
	}
	m, _ := parseFile([]byte(validFile()), t0)
	if b, err := encodeFile(m); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseFile(b, t0)
		if err != nil {
			return
		}
		for k, e := range m.all() {
			if err := checkStored(*e); err != nil {
				t.Fatalf("accepted invalid entry %+v: %v", e, err)
			}
			if k != keyOf(e) || !t0.Before(e.Until) {
				t.Fatalf("entry %+v under key %+v, or expired", e, k)
			}
		}
		out, err := encodeFile(m)
		if err != nil {
			t.Fatalf("encode accepted file: %v", err)
		}
		m2, err := parseFile(out, t0)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out)
		}
		if diff := cmp.Diff(m, m2, cmp.AllowUnexported(ikey{})); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
