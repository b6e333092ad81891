package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzDepth is the depth cap used by the fuzz targets: small, so that the
// fuzzer reaches it.
const fuzzDepth = 8

func addSeeds(f *testing.F) {
	for _, tt := range acceptCases() {
		f.Add([]byte(tt.in))
	}
	for _, tt := range rejectCases() {
		if len(tt.in) < 4096 {
			f.Add([]byte(tt.in))
		}
	}
}

// FuzzDecode checks Decode against encoding/json plus an independent
// statement of the rules: Decode accepts exactly the inputs that are valid
// JSON, valid UTF-8 with paired surrogate escapes, nested at most fuzzDepth
// deep, free of duplicate and case-variant names, and a well-formed
// envelope; and what it returns agrees with json.Unmarshal.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data, Limits{MaxDepth: fuzzDepth})
		var jerr *Error
		if err != nil && !errors.As(err, &jerr) {
			t.Fatalf("error %T is not *Error", err)
		}

		syntaxOK := json.Valid(data) && utf8.Valid(data) && surrogatesPaired(data)
		if !syntaxOK {
			if err == nil {
				t.Fatalf("accepted malformed input %q", data)
			}
			if jerr.Code != CodeParseError && !strings.Contains(jerr.Message, "nesting deeper") {
				t.Fatalf("malformed input %q: got %d %q, want a parse error", data, jerr.Code, jerr.Message)
			}
			return
		}
		if err != nil && jerr.Code == CodeParseError {
			t.Fatalf("valid JSON %q rejected as malformed: %v", data, err)
		}

		depth, dup := structure(t, data)
		var env map[string]any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		isObject := dec.Decode(&env) == nil
		wantKind, envOK := Kind(0), false
		if isObject {
			wantKind, envOK = envelopeOracle(env)
		}
		wantOK := depth <= fuzzDepth && isObject && !dup && envOK
		if (err == nil) != wantOK {
			t.Fatalf("Decode(%q) error = %v; oracle: depth %d, object %v, duplicate %v, envelope ok %v",
				data, err, depth, isObject, dup, envOK)
		}
		if err != nil {
			if bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("[")) && depth <= fuzzDepth &&
				jerr.Message != "batch requests are not supported" {
				t.Fatalf("batch %q: message %q", data, jerr.Message)
			}
			return
		}

		// Accepted: the message must agree with encoding/json.
		if m.Kind != wantKind {
			t.Fatalf("kind %v, want %v", m.Kind, wantKind)
		}
		if method, _ := env["method"].(string); m.Method != method {
			t.Fatalf("method %q, encoding/json says %q", m.Method, method)
		}
		switch id := env["id"].(type) {
		case nil:
			if !m.ID.IsZero() {
				t.Fatalf("id %q, encoding/json says none", m.ID)
			}
		case string:
			if s, err := DecodeString(m.ID.Raw()); err != nil || s != id {
				t.Fatalf("id %q decodes to %q, %v; encoding/json says %q", m.ID, s, err, id)
			}
		case json.Number:
			if m.ID.String() != id.String() {
				t.Fatalf("id %q, encoding/json says %q", m.ID, id)
			}
		}
		sameJSON(t, "params", m.Params, env, "params")
		sameJSON(t, "result", m.Result, env, "result")
		sameJSON(t, "error", m.Error, env, "error")
	})
}

// sameJSON checks that raw decodes to env[key] (raw is nil iff key is
// absent, except for result and error, which only their kind carries).
func sameJSON(t *testing.T, what string, raw []byte, env map[string]any, key string) {
	t.Helper()
	want, present := env[key]
	if raw == nil {
		if present && key == "params" {
			t.Fatalf("%s missing, encoding/json has %v", what, want)
		}
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var got any
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%s %q does not decode: %v", what, raw, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("%s %q has trailing data", what, raw)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s = %v, encoding/json says %v", what, got, want)
	}
}

// surrogatesPaired reports whether every \u escape of a surrogate in the
// valid JSON text data is a high surrogate followed by an escaped low one.
func surrogatesPaired(data []byte) bool {
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case !inString:
			inString = c == '"'
		case c == '"':
			inString = false
		case c == '\\':
			i++
			if data[i] != 'u' {
				continue
			}
			r, _ := strconv.ParseUint(string(data[i+1:i+5]), 16, 32)
			i += 4
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return false
			case r >= 0xD800 && r <= 0xDBFF:
				if i+6 >= len(data) || data[i+1] != '\\' || data[i+2] != 'u' {
					return false
				}
				r2, _ := strconv.ParseUint(string(data[i+3:i+7]), 16, 32)
				if r2 < 0xDC00 || r2 > 0xDFFF {
					return false
				}
				i += 6
			}
		}
	}
	return true
}

// structure walks valid JSON with encoding/json's tokenizer and returns its
// maximum nesting depth and whether some object has two member names that
// strings.EqualFold considers equal.
func structure(t *testing.T, data []byte) (maxDepth int, dup bool) {
	type level struct {
		object    bool
		expectKey bool
		names     []string
	}
	var stack []*level
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return maxDepth, dup
		}
		if err != nil {
			t.Fatalf("tokenizing valid JSON %q: %v", data, err)
		}
		var top *level
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if top != nil && top.object {
			if top.expectKey {
				name := tok.(string)
				for _, n := range top.names {
					dup = dup || strings.EqualFold(n, name)
				}
				top.names = append(top.names, name)
				top.expectKey = false
				continue
			}
			top.expectKey = true
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, &level{object: d == '{', expectKey: d == '{'})
			maxDepth = max(maxDepth, len(stack))
		}
	}
}

var intRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

func oracleInt(v any) bool {
	n, ok := v.(json.Number)
	if !ok || !intRE.MatchString(string(n)) || n == "-0" {
		return false
	}
	v64, err := strconv.ParseInt(string(n), 10, 64)
	return err == nil && v64 <= 1<<53-1 && v64 >= -(1<<53-1)
}

// envelopeOracle states the envelope rules over encoding/json's view.
func envelopeOracle(env map[string]any) (Kind, bool) {
	for k := range env {
		switch k {
		case "jsonrpc", "id", "method", "params", "result", "error":
		default:
			return 0, false
		}
	}
	if v, ok := env["jsonrpc"].(string); !ok || v != "2.0" {
		return 0, false
	}
	id, hasID := env["id"]
	_, idString := id.(string)
	idOK := hasID && (idString || oracleInt(id))
	_, hasParams := env["params"]
	_, hasResult := env["result"]
	e, hasError := env["error"]
	if method, hasMethod := env["method"]; hasMethod {
		if s, ok := method.(string); !ok || s == "" || hasResult || hasError {
			return 0, false
		}
		if _, ok := env["params"].(map[string]any); hasParams && !ok {
			return 0, false
		}
		if !hasID {
			return KindNotification, true
		}
		return KindRequest, idOK
	}
	switch {
	case hasParams || hasResult && hasError:
		return 0, false
	case hasResult:
		return KindResult, idOK
	case hasError:
		eo, ok := e.(map[string]any)
		if !ok || !oracleInt(eo["code"]) {
			return 0, false
		}
		if _, ok := eo["message"].(string); !ok {
			return 0, false
		}
		return KindError, idOK || hasID && id == nil
	}
	return 0, false
}

// objectsIn returns every object in the validated value raw, raw included
// if it is one, found with Members.
func objectsIn(raw []byte, out [][]byte) [][]byte {
	switch raw[0] {
	case '{':
		out = append(out, raw)
		for _, v := range Members(raw) {
			out = objectsIn(v, out)
		}
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err == nil {
			for _, e := range elems {
				// json.RawMessage keeps the original bytes minus surrounding space.
				out = objectsIn(bytes.TrimSpace(e), out)
			}
		}
	}
	return out
}

// FuzzLookup checks Lookup against Members and encoding/json on every
// object of every message Decode accepts, and that it never panics on
// arbitrary input.
func FuzzLookup(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		Lookup(data, "name") // arbitrary input: must not panic
		m, err := Decode(data, Limits{MaxDepth: fuzzDepth})
		if err != nil {
			return
		}
		var objs [][]byte
		for _, raw := range [][]byte{m.Params, m.Result, m.Error} {
			if raw != nil {
				objs = objectsIn(raw, objs)
			}
		}
		for _, obj := range objs {
			var want map[string]json.RawMessage
			if err := json.Unmarshal(obj, &want); err != nil {
				t.Fatalf("json.Unmarshal(%q): %v", obj, err)
			}
			n := 0
			for name, v := range Members(obj) {
				n++
				got, ok := Lookup(obj, name)
				if !ok || &got[0] != &v[0] || len(got) != len(v) {
					t.Fatalf("Lookup(%q, %q) = %q, %v; Members yields %q", obj, name, got, ok, v)
				}
				if w, ok := want[name]; !ok || !bytes.Equal(bytes.TrimSpace(w), v) {
					t.Fatalf("member %q = %q, encoding/json says %q (present %v)", name, v, w, ok)
				}
				for _, variant := range []string{strings.ToUpper(name), strings.ToLower(name)} {
					if variant != name {
						if got, ok := Lookup(obj, variant); ok {
							t.Fatalf("Lookup(%q, %q) = %q: case variant found", obj, variant, got)
						}
					}
				}
			}
			if n != len(want) {
				t.Fatalf("Members(%q) yields %d members, encoding/json sees %d", obj, n, len(want))
			}
		}
	})
}

// FuzzMembers checks that Members never panics, yields only valid JSON
// values, and on a validated params object yields exactly encoding/json's
// members, in order, decoding names and string values the same way.
func FuzzMembers(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for name, v := range Members(data) { // arbitrary input
			if !json.Valid(v) {
				t.Fatalf("Members(%q) yields invalid value %q for %q", data, v, name)
			}
		}
		m, err := Decode(data, Limits{MaxDepth: fuzzDepth})
		if err != nil || m.Params == nil {
			return
		}
		var order []string
		dec := json.NewDecoder(bytes.NewReader(m.Params))
		dec.Token() // '{'
		for dec.More() {
			tok, _ := dec.Token()
			order = append(order, tok.(string))
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		for name, v := range Members(m.Params) {
			got = append(got, name)
			if v[0] == '"' {
				s, err := DecodeString(v)
				var want string
				if jerr := json.Unmarshal(v, &want); err != nil || jerr != nil || s != want {
					t.Fatalf("DecodeString(%q) = %q, %v; encoding/json says %q, %v", v, s, err, want, jerr)
				}
			} else if _, err := DecodeString(v); err == nil {
				t.Fatalf("DecodeString(%q) accepted a non-string", v)
			}
		}
		if !reflect.DeepEqual(got, order) {
			t.Fatalf("Members names %q, encoding/json order %q", got, order)
		}
	})
}
