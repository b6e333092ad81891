package jsonrpc

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLookup(t *testing.T) {
	obj := `{"name":"safe","arguments":{"name":"inner","x":[1,{"y":2}]},"\u0065sc":"e","Case":1,"":0}`
	for _, tt := range []struct {
		name, obj, key string
		want           string
		ok             bool
	}{
		{"string member", obj, "name", `"safe"`, true},
		{"object member", obj, "arguments", `{"name":"inner","x":[1,{"y":2}]}`, true},
		{"escaped name", obj, "esc", `"e"`, true},
		{"empty name", obj, "", `0`, true},
		{"case-sensitive miss", obj, "Name", "", false},
		{"case-sensitive hit", obj, "Case", `1`, true},
		{"other case miss", obj, "case", "", false},
		{"nested member not visible", obj, "x", "", false},
		{"absent", obj, "nope", "", false},
		{"empty object", `{}`, "a", "", false},
		{"whitespace", " { \"a\" :\n[ 1 ] } ", "a", `[ 1 ]`, true},
		{"not an object", `["name"]`, "name", "", false},
		{"string", `"name"`, "name", "", false},
		{"empty input", ``, "a", "", false},
		{"malformed before key", `{"a":tru,"b":1}`, "b", "", false},
		{"malformed name", "{\"a\xff\":1}", "a\xff", "", false},
		{"truncated", `{"a":1,"b"`, "b", "", false},
		{"missing colon", `{"a" 1}`, "a", "", false},
		{"long escaped name", `{"` + strings.Repeat(`\u0061`, 100) + `":1}`, strings.Repeat("a", 100), `1`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Lookup([]byte(tt.obj), tt.key)
			if ok != tt.ok || string(got) != tt.want {
				t.Errorf("Lookup(%q, %q) = %q, %v; want %q, %v", tt.obj, tt.key, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestMembers(t *testing.T) {
	type kv struct{ Name, Value string }
	for _, tt := range []struct {
		name, obj string
		want      []kv
	}{
		{"in order, decoded names, raw values", `{"b":1,"a":"\u0041","\u00e9\ud83d\ude00":{"z":[]},"n":null}`,
			[]kv{{"b", "1"}, {"a", `"\u0041"`}, {"é😀", `{"z":[]}`}, {"n", "null"}}},
		{"empty", ` {} `, nil},
		{"not an object", `[1]`, nil},
		{"stops at syntax error", `{"a":1,"b":x,"c":3}`, []kv{{"a", "1"}}},
		{"stops at truncation", `{"a":1,"b":`, []kv{{"a", "1"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []kv
			for n, v := range Members([]byte(tt.obj)) {
				got = append(got, kv{n, string(v)})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Members(%q) (-want +got):\n%s", tt.obj, diff)
			}
		})
	}
	// Breaking out of the loop stops the iteration.
	n := 0
	for range Members([]byte(`{"a":1,"b":2,"c":3}`)) {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Errorf("break after 2: iterated %d", n)
	}
}

func TestDecodeString(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{`"safe"`, "safe", true},
		{`""`, "", true},
		{`"a\"b\\c\/d\b\f\n\r\t"`, "a\"b\\c/d\b\f\n\r\t", true},
		{`"\u00e9\u0000\ud83d\ude00"`, "é\x00😀", true},
		{"\"é😀\"", "é😀", true},
		{`"\ud800"`, "", false},
		{`"\udc00"`, "", false},
		{"\"a\xffb\"", "", false},
		{"\"a\tb\"", "", false},
		{`"abc`, "", false},
		{`"a" `, "", false},
		{` "a"`, "", false},
		{`"a""b"`, "", false},
		{`1`, "", false},
		{`null`, "", false},
		{``, "", false},
		{`"\x"`, "", false},
	} {
		got, err := DecodeString([]byte(tt.in))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("DecodeString(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, &Error{Code: CodeInvalidParams}) {
			t.Errorf("DecodeString(%q) error %v: want CodeInvalidParams", tt.in, err)
		}
	}
}

func TestID(t *testing.T) {
	id := func(raw string) ID {
		t.Helper()
		m, err := Decode([]byte(`{"jsonrpc":"2.0","id":`+raw+`,"method":"ping"}`), Limits{})
		if err != nil {
			t.Fatalf("id %s: %v", raw, err)
		}
		return m.ID
	}
	if !(ID{}).IsZero() || (ID{}).String() != "" || (ID{}).Raw() != nil {
		t.Error("zero ID is not zero")
	}
	for _, tt := range []struct {
		a, b  ID
		equal bool
	}{
		{ID{}, ID{}, true},
		{id(`1`), id(`1`), true},
		{id(`1`), id(`"1"`), false},
		{id(`0`), ID{}, false},
		{id(`12`), id(`1`), false},
		{id(`"ab"`), id(`"ab"`), true},
		{id(`"ab"`), id(`"a\u0062"`), true},
		{id(`"\u00e9"`), id(`"é"`), true},
		{id(`"\ud83d\ude00"`), id("\"😀\""), true},
		{id(`"ab"`), id(`"aB"`), false},
		{id(`"a\u0062"`), id(`"a\u0063"`), false},
		{id(`"` + strings.Repeat(`\u0061`, 200) + `"`), id(`"` + strings.Repeat("a", 200) + `"`), true},
	} {
		if got := tt.a.Equal(tt.b); got != tt.equal {
			t.Errorf("%q.Equal(%q) = %v, want %v", tt.a, tt.b, got, tt.equal)
		}
		if got := tt.b.Equal(tt.a); got != tt.equal {
			t.Errorf("%q.Equal(%q) = %v, want %v", tt.b, tt.a, got, tt.equal)
		}
	}
	if got := id(`"x\"y"`).String(); got != `"x\"y"` {
		t.Errorf("String() = %q", got)
	}
	if got := string(id(`-5`).Raw()); got != `-5` {
		t.Errorf("Raw() = %q", got)
	}
	m, err := Decode([]byte(`{"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"m"}}`), Limits{})
	if err != nil || !m.ID.IsZero() {
		t.Errorf("null id on error response: %v, %v", m, err)
	}
}

func TestElements(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`[]`, nil},
		{` [ 1 , "a,]" , {"b":[2,3]} , [] , null ] `, []string{`1`, `"a,]"`, `{"b":[2,3]}`, `[]`, `null`}},
		{`{"a":1}`, nil},
		{`[1,`, []string{`1`}},
		{`[1 2]`, []string{`1`}},
	} {
		var got []string
		for e := range Elements([]byte(tc.in)) {
			got = append(got, string(e))
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("Elements(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
