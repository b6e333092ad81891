package policy

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func canonical(t testing.TB, raw string, loose bool) (string, bool) {
	t.Helper()
	b, err := appendCanonical(nil, []byte(raw), loose)
	return string(b), err == nil
}

func TestArgsCanonicalEquality(t *testing.T) {
	for _, tt := range []struct {
		a, b         string
		exact, loose bool // equal in each mode
	}{
		{`1`, `1.0`, true, true},
		{`1`, `1e0`, true, true},
		{`100`, `1E2`, true, true},
		{`0.5`, `5e-1`, true, true},
		{`0`, `-0.0e7`, true, true},
		{`-12.50`, `-1.25e1`, true, true},
		{`1`, `2`, false, false},
		{`1`, `-1`, false, false},
		{`9007199254740993`, `9007199254740992`, false, true},
		{`0.1`, `0.10000000000000001`, false, true},
		{`1e400`, `1e401`, false, true}, // both +Inf as floats
		{`"A"`, `"\u0041"`, true, true},
		{`"é"`, `"\u00e9"`, true, true},
		{`"😀"`, `"\ud83d\ude00"`, true, true},
		{`"a/b"`, `"a\/b"`, true, true},
		{`"tab\t"`, `"tab\u0009"`, true, true},
		{`"abc"`, `"ABC"`, false, true},
		{`"abc"`, `" abc\n"`, false, true},
		{`"1"`, `1`, false, true},
		{`"1.0"`, `1`, false, true},
		{`"x1"`, `1`, false, false},
		{`"true"`, `true`, false, false},
		{`{"a":1,"b":[1,2]}`, `{"b":[1.0,2],"a":1}`, true, true},
		{`{"a":1}`, `{"a":1,"b":null}`, false, false},
		{`{"a":"x"}`, `{"A":"x"}`, false, false},
		{`{"\u0061":1}`, `{"a":1}`, true, true},
		{`[1,2]`, `[2,1]`, false, false},
		{`[]`, `[ ]`, true, true},
		{`{}`, ` { } `, true, true},
		{`null`, `null`, true, true},
		{`null`, `"null"`, false, false},
		{`true`, `false`, false, false},
		{`[["a"]]`, `[["a"],[]]`, false, false},
		{`"ab"`, `["ab"]`, false, false},
		{`{"a":"b"}`, `["a","b"]`, false, false},
	} {
		for _, loose := range []bool{argsExact, argsLoose} {
			want := tt.exact
			if loose {
				want = tt.loose
			}
			ca, okA := canonical(t, tt.a, loose)
			cb, okB := canonical(t, tt.b, loose)
			if !okA || !okB {
				t.Errorf("%s / %s (loose %v): not comparable", tt.a, tt.b, loose)
				continue
			}
			if got := ca == cb; got != want {
				t.Errorf("%s == %s (loose %v) = %v, want %v", tt.a, tt.b, loose, got, want)
			}
		}
	}
}

func TestArgsCanonicalRefuses(t *testing.T) {
	deep := strings.Repeat("[", maxArgDepth+2) + strings.Repeat("]", maxArgDepth+2)
	for _, tt := range []struct {
		raw          string
		exact, loose bool // comparable in each mode
	}{
		{`"\ud800"`, false, true}, // lone surrogate: Go's decoder reads U+FFFD
		{`"\udc00\ud800"`, false, true},
		{`"\udc00\udc01"`, false, true},
		{`"\ud800\u0041"`, false, true},
		{"\"\xff\"", false, true},
		{`{"a":1,"a":2}`, false, false}, // duplicate keys are ambiguous
		{`{"\ud800":1}`, false, false},
		{deep, false, false},
		{``, false, false},
		{`01`, false, false},
		{`1.`, false, false},
		{`+1`, false, false},
		{`1e999999999999`, false, true}, // exponent beyond ±1e9; +Inf as a float
		{`"abc`, false, false},
		{`"a\x"`, false, false},
		{`"\u12"`, false, false},
		{"\"a\nb\"", false, false},
		{`[1,]`, false, false},
		{`[1 2]`, false, false},
		{`{"a" 1}`, false, false},
		{`{"a":1,}`, false, false},
		{`{1:2}`, false, false},
		{`nul`, false, false},
		{`true false`, false, false},
		{`1 2`, false, false},
	} {
		if _, ok := canonical(t, tt.raw, argsExact); ok != tt.exact {
			t.Errorf("%q exact: comparable = %v, want %v", tt.raw, ok, tt.exact)
		}
		if _, ok := canonical(t, tt.raw, argsLoose); ok != tt.loose {
			t.Errorf("%q loose: comparable = %v, want %v", tt.raw, ok, tt.loose)
		}
	}
	// The loose replacement matches encoding/json: "\ud800" reads as U+FFFD.
	a, _ := canonical(t, `"\ud800"`, argsLoose)
	b, _ := canonical(t, `"\ufffd"`, argsLoose)
	if a != b {
		t.Error(`loose "\ud800" != "\ufffd"`)
	}
	a, _ = canonical(t, `"\udc00\udc01x"`, argsLoose)
	b, _ = canonical(t, `"\ufffd\ufffdx"`, argsLoose)
	if a != b {
		t.Error("each lone surrogate is one U+FFFD")
	}
}

func TestArgsDigest(t *testing.T) {
	args := map[string]json.RawMessage{"a": json.RawMessage(`"x"`), "b": json.RawMessage(`1`), "c": json.RawMessage(`"1"`)}
	d1, bad := argsDigest(args, []string{"a", "b"}, argsExact)
	if bad != "" {
		t.Fatal(bad)
	}
	// The values are concatenated unambiguously: ("x", 1) differs from
	// ("x", "1") and from (1, "x").
	if d2, _ := argsDigest(args, []string{"a", "c"}, argsExact); d1 == d2 {
		t.Error(`("x", 1) and ("x", "1") share a digest`)
	}
	if d3, _ := argsDigest(args, []string{"b", "a"}, argsExact); d1 == d3 {
		t.Error("argument order ignored")
	}
	if _, bad := argsDigest(args, []string{"a", "zzz"}, argsExact); bad != "zzz" {
		t.Errorf("missing argument reported as %q", bad)
	}
	if !utf8.Valid(d1[:]) || strings.Trim(string(d1[:]), "0123456789abcdef") != "" {
		t.Errorf("digest %q is not lower-case hex", d1)
	}
}

// FuzzArgsCanonical checks that canonicalisation never panics, and that
// re-encoding a value with encoding/json (sorted keys, escapes, numbers
// kept as written) never changes its exact or loose form.
func FuzzArgsCanonical(f *testing.F) {
	for _, s := range []string{
		`1`, `-0.0e-7`, `"\u0041\ud83d\ude00"`, `{"b":[1,{"c":null}],"a":"x"}`, `[true,false,null]`,
		`"\ud800"`, "\"\xff\"", `{"a":1,"a":2}`, `1e999999999999`, `9007199254740993`, `" 12 "`, `[`, `{"a"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, loose := range []bool{argsExact, argsLoose} {
			c1, err := appendCanonical(nil, raw, loose)
			if err != nil {
				continue
			}
			if !json.Valid(raw) {
				t.Fatalf("accepted invalid JSON %q", raw)
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("encoding/json refuses %q: %v", raw, err)
			}
			re, err := json.Marshal(v)
			if err != nil {
				continue // e.g. a number json.Number cannot re-encode
			}
			c2, err := appendCanonical(nil, re, loose)
			if err != nil {
				t.Fatalf("re-encoded %q refused: %v", re, err)
			}
			if !slices.Equal(c1, c2) {
				t.Fatalf("%q and its re-encoding %q differ (loose %v)", raw, re, loose)
			}
		}
	})
}
