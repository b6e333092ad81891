package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLiveCredentials(t *testing.T) {
	r := newRand(t)
	// An opaque token with characters that JSON and URLs escape.
	tok := randTok(r, alnumChars, 20) + "/" + randTok(r, alnumChars, 10) + "+=="
	other := "gho_" + randTok(r, alnumChars, 36)
	live := []string{tok, other, "short7x"}
	lbl := "[REDACTED:live_credential]"
	tests := []struct {
		name, in, want string
		count          int
	}{
		{"text", "token " + tok + " end", "token " + lbl + " end", 1},
		{"repeated", tok + tok + "," + tok, lbl + lbl + "," + lbl, 3},
		{"percent-encoded", "?access_token=" + url.QueryEscape(tok) + "&x=1", "?access_token=" + lbl + "&x=1", 1},
		{"json-escaped in text", `{"t":"` + strings.ReplaceAll(tok, "/", `\/`) + `"`, `{"t":"` + lbl + `"`, 1},
		{"short ignored", "pin short7x here", "pin short7x here", 0},
	}
	s := mustNew(t, Config{Disabled: BuiltinNames()}) // live_credential cannot be turned off
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := s.ScanText([]byte(tc.in), live)
			if string(res.Out) != tc.want {
				t.Errorf("Out = %q\nwant  %q", res.Out, tc.want)
			}
			var want []Finding
			if tc.count > 0 {
				want = []Finding{{LiveCredential, ActionRedact, tc.count}}
			}
			if d := cmp.Diff(want, res.Findings); d != "" {
				t.Errorf("findings (-want +got):\n%s", d)
			}
		})
	}

	// JSON: escaped slash, \u escapes, keys, numbers, nested JSON text.
	docs := []string{
		`{"a":"` + strings.ReplaceAll(tok, "/", `\/`) + `"}`,
		`{"a":` + uEscapeAll("x "+tok) + `}`,
		`{` + jsonQuote(tok) + `:1}`,
		`{"n":[1,2,` + "98765432101234" + `]}`,
		toolResult(jsonQuote(`{"headers":{"Authorization":"Bearer ` + strings.ReplaceAll(tok, "/", `\/`) + `"}}`)),
		`[` + jsonQuote(other) + `,` + jsonQuote(other) + `]`,
	}
	numLive := []string{tok, "98765432101234"}
	for i, d := range docs {
		res, err := s.ScanJSON([]byte(d), numLive)
		if i == len(docs)-1 {
			res, err = s.ScanJSON([]byte(d), live)
		}
		if err != nil {
			t.Fatal(err)
		}
		if !res.Changed || res.Blocked || !json.Valid(res.Out) {
			t.Fatalf("doc %d: Changed=%v Blocked=%v out=%s", i, res.Changed, res.Blocked, res.Out)
		}
		if !bytes.Contains(res.Out, []byte(lbl)) {
			t.Errorf("doc %d: no label: %s", i, res.Out)
		}
		for _, txt := range append(texts(t, res.Out), string(res.Out)) {
			for _, v := range live[:2] {
				if strings.Contains(txt, v) {
					t.Errorf("doc %d: live credential survived", i)
				}
			}
			if strings.Contains(txt, numLive[1]) {
				t.Errorf("doc %d: numeric live credential survived", i)
			}
		}
	}
	// A JSON number holding a live credential becomes a string.
	res, _ := s.ScanJSON([]byte(`{"n":98765432101234}`), numLive)
	if string(res.Out) != `{"n":"`+lbl+`"}` {
		t.Errorf("number: %s", res.Out)
	}
	// Two occurrences in one array: counted twice.
	res, _ = s.ScanJSON([]byte(docs[5]), live)
	if f, _ := finding(res, LiveCredential); f.Count != 2 {
		t.Errorf("count = %d, want 2", f.Count)
	}
}

// A live credential that spans JSON syntax cannot be redacted in place;
// the message is blocked instead of sent.
func TestLiveCredentialUnredactable(t *testing.T) {
	secret := `abcd1234","efgh5678`
	doc := []byte(`["abcd1234","efgh5678"]`)
	s := mustNew(t, Config{})
	res, err := s.ScanJSON(doc, []string{secret})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Blocked || res.Reason != ReasonUnredactable || res.Out != nil {
		t.Errorf("Blocked=%v Reason=%q Out=%q", res.Blocked, res.Reason, res.Out)
	}
	// As plain text the same bytes are redacted in place.
	res = s.ScanText([]byte(`x abcd1234","efgh5678 y`), []string{secret})
	if res.Blocked || string(res.Out) != "x [REDACTED:live_credential] y" {
		t.Errorf("ScanText: Blocked=%v Out=%q", res.Blocked, res.Out)
	}
}

func TestSizeCap(t *testing.T) {
	s := mustNew(t, Config{MaxScanBytes: 1024})
	gh := "gh" + "p_" + randTok(newRand(t), alnumChars, 36)
	pad := 1024 - len(toolResult(jsonQuote(gh)))
	at := []byte(toolResult(jsonQuote(gh + strings.Repeat("x", pad))))
	if len(at) != 1024 {
		t.Fatalf("test document is %d bytes", len(at))
	}
	over := append([]byte{' '}, at...)

	res, err := s.ScanJSON(at, nil)
	if err != nil || res.Blocked || !res.Changed {
		t.Errorf("at the cap: err=%v Blocked=%v Changed=%v", err, res.Blocked, res.Changed)
	}
	res, err = s.ScanJSON(over, nil)
	if err != nil || !res.Blocked || res.Reason != ReasonTooLarge || res.Out != nil {
		t.Errorf("over the cap: err=%v %+v", err, res)
	}
	res = s.ScanText(over, nil)
	if !res.Blocked || res.Reason != ReasonTooLarge || res.Out != nil {
		t.Errorf("ScanText over the cap: %+v", res)
	}
	// Over the cap is blocked even when it is not JSON.
	if res, err := s.ScanJSON(bytes.Repeat([]byte("{"), 2000), nil); err != nil || !res.Blocked {
		t.Errorf("invalid and over the cap: err=%v Blocked=%v", err, res.Blocked)
	}
	if d := mustNew(t, Config{}); d.max != DefaultMaxScanBytes {
		t.Errorf("default cap %d", d.max)
	}
}

func TestInvalidJSON(t *testing.T) {
	secret := "gh" + "p_" + randTok(newRand(t), alnumChars, 36)
	tests := []string{
		``, ` `, `{`, `[`, `"`, `"` + secret, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[1 2]`, `{a:1}`, `{1:2}`,
		`["` + secret + `" "x"]`, `"\x"`, `"\u12"`, `"\u12G4"`, "\"a\x01\"", `01`, `-`, `1.`, `1e`, `.5`, `+1`,
		`tru`, `nul`, `falsey`, `[] []`, `"` + secret + `"x`, `{"a":1}}`, `]`, `NaN`, `[Infinity]`,
		strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1),
	}
	s := mustNew(t, Config{})
	for _, in := range tests {
		_, err := s.ScanJSON([]byte(in), []string{secret})
		if !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("ScanJSON(%.40q) err = %v, want ErrInvalidJSON", in, err)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), secret[:8]) {
			t.Errorf("error carries input text: %v", err)
		}
		if json.Valid([]byte(in)) {
			t.Errorf("test input %.40q is valid JSON", in)
		}
	}
	// Deep but allowed nesting is fine.
	deep := strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting)
	if _, err := s.ScanJSON([]byte(deep), nil); err != nil {
		t.Errorf("nesting %d: %v", maxNesting, err)
	}
}

// Valid JSON that is not a container, and strings inside strings that
// only look like JSON, are handled.
func TestJSONScalarsAndFalseStarts(t *testing.T) {
	gh := "gh" + "p_" + randTok(newRand(t), alnumChars, 36)
	s := mustNew(t, Config{})
	for _, tc := range []struct{ in, want string }{
		{jsonQuote(gh), `"[REDACTED:github]"`},
		{` 12 `, ` 12 `},
		{`true`, `true`},
		{`["[not json ` + gh + `"]`, `["[not json [REDACTED:github]"]`},
		{`["{\"a\":\"` + gh + `\""]`, `["{\"a\":\"[REDACTED:github]\""]`}, // truncated inner JSON
	} {
		res, err := s.ScanJSON([]byte(tc.in), nil)
		if err != nil || string(res.Out) != tc.want {
			t.Errorf("ScanJSON(%.40q) = %q, %v; want %q", tc.in, res.Out, err, tc.want)
		}
	}
}

// Secrets nested beyond the decode depth are not promised; to depth 3 of
// JSON-in-string they are found.
func TestNestedDepth(t *testing.T) {
	gh := "gh" + "p_" + randTok(newRand(t), alnumChars, 36)
	s := mustNew(t, Config{})
	doc := jsonQuote(gh)
	for depth := 1; depth <= 4; depth++ {
		doc = jsonQuote(`{"d":` + doc + `}`)
		res, err := s.ScanJSON([]byte(`{"x":`+doc+`}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		if depth <= 3 && (!res.Changed || bytes.Contains(res.Out, []byte(gh[4:]))) {
			t.Errorf("depth %d: not redacted", depth)
		}
		if !json.Valid(res.Out) {
			t.Errorf("depth %d: invalid output", depth)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	s := mustNew(t, Config{Patterns: []Pattern{{Name: "acme", Regex: `acme_[a-z]{8}`}}})
	fs := fixtures(newRand(t))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i, f := range fs {
				live := []string{fmt.Sprintf("live-token-%d-%d-xyz", g, i)}
				doc := []byte(toolResult(jsonQuote(f.text + " " + live[0] + " acme_abcdefgh")))
				res, err := s.ScanJSON(doc, live)
				if err != nil {
					errs <- err
					return
				}
				if _, ok := finding(res, f.det); !ok || bytes.Contains(res.Out, []byte(live[0])) {
					errs <- fmt.Errorf("goroutine %d fixture %d: %+v", g, i, res.Findings)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestLooseUnescape(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{`plain`, ``, false},
		{`a\qb\`, ``, false},
		{`\"x\" \/ \\ \n\t \u0041\u00e9 \ud83d\ude00 \ud800 \u12 \z`, "\"x\" / \\ \n\t A\u00e9 \U0001F600 \uFFFD \\u12 \\z", true},
	} {
		got, ok := looseUnescape([]byte(tc.in))
		if ok != tc.ok || string(got) != tc.want {
			t.Errorf("looseUnescape(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
