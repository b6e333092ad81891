package redact

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func addSeeds(f *testing.F, add func(doc string)) {
	r := newRand(f)
	for _, fx := range fixtures(r)[:12] {
		for _, e := range embeddings() {
			add(e.build(fx.text))
		}
	}
	for _, n := range negatives(r)[:20] {
		add(toolResult(jsonQuote(n)))
	}
	for _, s := range []string{`{}`, `[]`, `""`, `0`, `-1.5e+10`, `[null,true,false]`, `{"a":{"b":[1,"\u0000\ud800\udfff\u2028"]}}`,
		`"\\u0067hp_x"`, `{"type":"service_account","private_key":"x","private_key_id":"y"}`, `[` + jsonQuote(`[{"a":"b\\"}]`) + `]`} {
		add(s)
	}
}

// tokenLike secrets are what live credentials are in practice; for them
// the fuzz tests also check every decoded string of the output.
func tokenLike(s string) bool {
	for i := range len(s) {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("-._~+/=", rune(c)) {
			return false
		}
	}
	return true
}

// checkNoSecret: the output of an unblocked scan does not hold the live
// secret, raw or (for token-like secrets) in any decoded string.
func checkNoSecret(t *testing.T, res Result, secret string, isJSON bool) {
	t.Helper()
	if len(secret) < MinLiveLen {
		return
	}
	if res.Blocked {
		if res.Reason != ReasonUnredactable && res.Reason != ReasonBlockAction {
			t.Fatalf("blocked with reason %q", res.Reason)
		}
		return
	}
	if bytes.Contains(res.Out, []byte(secret)) {
		t.Fatalf("live secret in output")
	}
	if isJSON && tokenLike(secret) {
		for _, s := range texts(t, res.Out) {
			if strings.Contains(s, secret) {
				t.Fatalf("live secret in a decoded string of the output")
			}
		}
	}
}

// FuzzScanJSON: ScanJSON accepts exactly the valid JSON texts, its output
// is valid JSON, an unchanged output is the input, and a live secret does
// not survive.
func FuzzScanJSON(f *testing.F) {
	addSeeds(f, func(doc string) { f.Add([]byte(doc), "live-"+doc[:min(len(doc), 12)]) })
	s := mustNew(f, Config{})
	f.Fuzz(func(t *testing.T, data []byte, secret string) {
		res, err := s.ScanJSON(data, []string{secret})
		if valid := json.Valid(data); valid != (err == nil) {
			t.Fatalf("json.Valid = %v, ScanJSON err = %v", valid, err)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "invalid JSON at offset") {
				t.Fatalf("error %v", err)
			}
			return
		}
		if !res.Blocked {
			if !json.Valid(res.Out) {
				t.Fatalf("output is not valid JSON: %q", res.Out)
			}
			if !res.Changed && !sameSlice(res.Out, data) {
				t.Fatalf("unchanged output is not the input")
			}
		}
		checkNoSecret(t, res, secret, true)
	})
}

// FuzzScanJSONSecret puts a live secret into a string of a JSON document
// (optionally as JSON text inside a string, up to three levels deep) and
// checks that it does not survive.
func FuzzScanJSONSecret(f *testing.F) {
	addSeeds(f, func(doc string) { f.Add([]byte(doc), "Zm9vYmFyYmF6/+x", uint16(3), uint8(1)) })
	s := mustNew(f, Config{})
	f.Fuzz(func(t *testing.T, data []byte, secret string, pos uint16, depth uint8) {
		if len(secret) < MinLiveLen || !utf8.ValidString(secret) {
			return
		}
		var v any
		if json.Unmarshal(data, &v) != nil {
			v = string(data)
		}
		n := 0
		var insert func(v any) any
		insert = func(v any) any {
			switch x := v.(type) {
			case string:
				n++
				if n == int(pos)%8+1 {
					i := int(pos) % (len(x) + 1)
					for i > 0 && !utf8.RuneStart(x[i%len(x)]) {
						i--
					}
					return x[:i] + secret + x[i:]
				}
			case []any:
				for i := range x {
					x[i] = insert(x[i])
				}
			case map[string]any:
				for k, e := range x {
					x[k] = insert(e)
				}
			}
			return v
		}
		v = []any{insert(v), "tail " + secret}
		doc, err := json.Marshal(v)
		if err != nil {
			return // not a JSON document: nothing to scan
		}
		for range depth % 4 {
			doc, _ = json.Marshal(map[string]any{"text": string(doc)})
		}
		res, err := s.ScanJSON(doc, []string{secret})
		if err != nil {
			t.Fatalf("valid JSON refused: %v", err)
		}
		if !res.Blocked {
			if !json.Valid(res.Out) {
				t.Fatalf("output is not valid JSON")
			}
			if f, _ := finding(res, LiveCredential); f.Count == 0 {
				t.Fatalf("live secret not reported: %+v", res.Findings)
			}
		}
		checkNoSecret(t, res, secret, true)
	})
}

// FuzzScanText: no panics, an unchanged output is the input, and a live
// secret inserted anywhere does not survive.
func FuzzScanText(f *testing.F) {
	addSeeds(f, func(doc string) { f.Add([]byte(doc), "Zm9vYmFyYmF6/+x", uint16(5)) })
	f.Add([]byte("Authorization: Bearer "), "abcdefgh12345678", uint16(22))
	s := mustNew(f, Config{})
	f.Fuzz(func(t *testing.T, data []byte, secret string, pos uint16) {
		in := data
		if len(secret) >= MinLiveLen {
			i := int(pos) % (len(data) + 1)
			in = append(append(append([]byte{}, data[:i]...), secret...), data[i:]...)
		}
		res := s.ScanText(in, []string{secret})
		if !res.Blocked && !res.Changed && !sameSlice(res.Out, in) {
			t.Fatalf("unchanged output is not the input")
		}
		if res.Blocked && res.Out != nil {
			t.Fatalf("blocked with output")
		}
		checkNoSecret(t, res, secret, false)
		if len(secret) >= MinLiveLen && !res.Blocked {
			if f, _ := finding(res, LiveCredential); f.Count == 0 {
				t.Fatalf("live secret not reported")
			}
		}
	})
}

// FuzzDecodeEncode: decoding a string token and encoding it again gives
// a token that decodes to the same text (lone surrogates included).
func FuzzDecodeEncode(f *testing.F) {
	for _, s := range []string{`a`, `\ud800`, `\ud83d\ude00`, `\udc00\ud800x`, `\"\\\/\b\f\n\r\t`, "\u2028é", `\u0000`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tok := []byte(`"` + raw + `"`)
		var std string
		if json.Unmarshal(tok, &std) != nil {
			return // not one JSON string
		}
		text := decodeString(nil, []byte(raw))
		enc := appendJSONString(nil, text)
		if !json.Valid(enc) {
			t.Fatalf("encoding %q is not valid JSON", enc)
		}
		if again := decodeString(nil, enc[1:len(enc)-1]); !bytes.Equal(again, text) {
			t.Fatalf("round trip: %q → %q → %q", raw, enc, again)
		}
		var std2 string
		if err := json.Unmarshal(enc, &std2); err != nil || std != std2 {
			t.Fatalf("encoding/json reads %q and %q differently (%v)", tok, enc, err)
		}
		if utf8.Valid(text) && string(text) != std {
			t.Fatalf("decodeString(%q) = %q, encoding/json: %q", raw, text, std)
		}
	})
}

// FuzzNeedle: needle.index agrees with bytes.Index.
func FuzzNeedle(f *testing.F) {
	f.Add([]byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"), []byte("aaab"))
	f.Add([]byte("xQyQzQ token Qx"), []byte("Qx"))
	f.Add([]byte(""), []byte("a"))
	f.Fuzz(func(t *testing.T, s, sub []byte) {
		if len(sub) == 0 {
			return
		}
		if got, want := newNeedle(sub, byteRanks()).index(s), bytes.Index(s, sub); got != want {
			t.Fatalf("index(%q, %q) = %d, want %d", s, sub, got, want)
		}
	})
}

// FuzzHandMatchers: the hand-written matchers agree with the anchored
// expressions they stand for.
func FuzzHandMatchers(f *testing.F) {
	for _, s := range []string{"basic dXNlcjpwYXNz==", "Bearer abc.def-ghi_jkl~mno+pqr/stu===", "BASIC\t\t  abcdef", "bearer x", "basic", "Basic abcde=", "basic abcdef===="} {
		f.Add([]byte(s))
	}
	var specs []ruleSpec
	for _, r := range builtinRules() {
		if r.match != nil {
			specs = append(specs, r)
		}
	}
	if len(specs) != 2 {
		f.Fatalf("%d hand-written matchers", len(specs))
	}
	res := make([]*regexp.Regexp, len(specs))
	for i, r := range specs {
		res[i] = regexp.MustCompile(`\A(?:` + r.expr + `)`)
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		for i, r := range specs {
			l := res[i].FindSubmatchIndex(text)
			s, e, end, ok := r.match(text, 0)
			if ok != (l != nil) || ok && (s != l[2] || e != l[3] || end != l[1]) {
				t.Fatalf("%s on %q: match = %d,%d,%d,%v; regexp = %v", r.det, text, s, e, end, ok, l)
			}
		}
	})
}
