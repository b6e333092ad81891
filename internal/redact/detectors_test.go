package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestFixturesCoverEveryBuiltin(t *testing.T) {
	n := make(map[string]int)
	for _, f := range fixtures(newRand(t)) {
		n[f.det]++
	}
	for _, d := range BuiltinNames() {
		if n[d] < 2 {
			t.Errorf("%s: %d fixtures, want at least 2", d, n[d])
		}
	}
	if len(n) != len(BuiltinNames()) {
		t.Errorf("fixtures name %d detectors, there are %d built-ins", len(n), len(BuiltinNames()))
	}
}

func checkGone(t *testing.T, what string, out []byte, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("%s: a secret survived in the output", what)
		}
	}
}

func TestDetectorsText(t *testing.T) {
	s := mustNew(t, Config{})
	for i, f := range fixtures(newRand(t)) {
		t.Run(fmt.Sprintf("%s/%d", f.det, i), func(t *testing.T) {
			for _, in := range []string{f.text, "prefix text " + f.text + " suffix text", f.text + "\n" + f.text} {
				r := s.ScanText([]byte(in), nil)
				if r.Blocked || !r.Changed {
					t.Fatalf("Blocked=%v Changed=%v, want a redaction", r.Blocked, r.Changed)
				}
				if _, ok := finding(r, f.det); !ok {
					t.Errorf("findings %+v lack %s", r.Findings, f.det)
				}
				if !bytes.Contains(r.Out, []byte("[REDACTED:")) {
					t.Errorf("no redaction label in the output")
				}
				checkGone(t, "text", r.Out, f.secrets)
				checkGone(t, "findings", []byte(fmt.Sprintf("%+v", r.Findings)), f.secrets)
			}
		})
	}
}

func TestDetectorsJSON(t *testing.T) {
	s := mustNew(t, Config{})
	for i, f := range fixtures(newRand(t)) {
		for _, e := range embeddings() {
			t.Run(fmt.Sprintf("%s/%d/%s", f.det, i, e.name), func(t *testing.T) {
				doc := []byte(e.build(f.text))
				if !json.Valid(doc) {
					t.Fatalf("bad test document")
				}
				r, err := s.ScanJSON(doc, nil)
				if err != nil {
					t.Fatal(err)
				}
				if r.Blocked || !r.Changed {
					t.Fatalf("Blocked=%v Changed=%v, want a redaction", r.Blocked, r.Changed)
				}
				if _, ok := finding(r, f.det); !ok {
					t.Errorf("findings %+v lack %s", r.Findings, f.det)
				}
				if !json.Valid(r.Out) {
					t.Fatalf("output is not valid JSON")
				}
				checkGone(t, "raw output", r.Out, f.secrets)
				for _, txt := range texts(t, r.Out) {
					checkGone(t, "decoded output", []byte(txt), f.secrets)
				}
			})
		}
	}
}

func TestNegativeCorpus(t *testing.T) {
	s := mustNew(t, Config{})
	live := []string{"an-unrelated-live-token-0123456789"}
	for i, n := range negatives(newRand(t)) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			in := []byte(n)
			r := s.ScanText(in, live)
			if r.Changed || r.Blocked || len(r.Findings) > 0 || !sameSlice(r.Out, in) {
				t.Errorf("ScanText(%.60q): Changed=%v Blocked=%v Findings=%+v", n, r.Changed, r.Blocked, r.Findings)
			}
			for _, e := range embeddings() {
				doc := []byte(e.build(n))
				r, err := s.ScanJSON(doc, live)
				if err != nil {
					t.Fatal(err)
				}
				if r.Changed || r.Blocked || len(r.Findings) > 0 || !sameSlice(r.Out, doc) {
					t.Errorf("ScanJSON %s(%.60q): Changed=%v Blocked=%v Findings=%+v", e.name, n, r.Changed, r.Blocked, r.Findings)
				}
			}
			if json.Valid(in) {
				r, err := s.ScanJSON(in, live)
				if err != nil || r.Changed || len(r.Findings) > 0 || !sameSlice(r.Out, in) {
					t.Errorf("ScanJSON(document): err=%v Changed=%v Findings=%+v", err, r.Changed, r.Findings)
				}
			}
		})
	}
}

// The exact output of a few redactions: what is kept and what is not.
func TestRedactionShape(t *testing.T) {
	r := newRand(t)
	tok := randTok(r, alnumChars, 32)
	pw := randTok(r, alnumChars, 16)
	basic := b64std([]byte("u:" + pw))
	gh := "gh" + "p_" + randTok(r, alnumChars, 36)
	jwt := jwtOf(r, `{"alg":"ES256"}`, 64)
	key, _ := pemBlock(r, privKind("RSA "), 300, true)
	tests := []struct{ in, want string }{
		{"Authorization: Bearer " + tok, "Authorization: Bearer [REDACTED:bearer]"},
		{"Authorization: Basic " + basic, "Authorization: Basic [REDACTED:basic]"},
		{"Bearer " + jwt, "Bearer [REDACTED:jwt]"}, // jwt outranks bearer
		{"postgres://app:" + pw + "@db:5432/app", "postgres://app:[REDACTED:connection_string]@db:5432/app"},
		{"redis://:" + pw + "@cache:6379", "redis://:[REDACTED:connection_string]@cache:6379"},
		{"a " + gh + ", b " + gh + ".", "a [REDACTED:github], b [REDACTED:github]."},
		{"before\n" + key + "after", "before\n[REDACTED:private_key]\nafter"},
		{"x=" + key[:100], "x=[REDACTED:private_key]"},
		{"https://" + "hooks.slack.com/services/T0/B0/" + tok, "https://[REDACTED:slack]"},
	}
	s := mustNew(t, Config{})
	for _, tc := range tests {
		if got := s.ScanText([]byte(tc.in), nil); string(got.Out) != tc.want {
			t.Errorf("ScanText(%.40q…) = %q, want %q", tc.in, got.Out, tc.want)
		}
	}
}

// ScanJSON keeps every byte outside the changed string.
func TestJSONBytesKept(t *testing.T) {
	gh := "gh" + "p_" + randTok(newRand(t), alnumChars, 36)
	prefix := "{ \"a\" : [ 1.50e+3 , -0 , true,false , null ,\"\\u00e9t\\u00E9 \\ud83d\\ude00\\/\" ],\n\t\"b\":"
	suffix := " , \"c\" : { } , \"d\" : [ ] }  \n"
	doc := prefix + `"tok: ` + gh + `\n"` + suffix
	r, err := mustNew(t, Config{}).ScanJSON([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := prefix + `"tok: [REDACTED:github]\n"` + suffix
	if string(r.Out) != want {
		t.Errorf("got  %q\nwant %q", r.Out, want)
	}
}

// A re-encoded string keeps characters that need escapes; a lone
// surrogate becomes U+FFFD (as encoding/json reads it).
func TestJSONReencoding(t *testing.T) {
	gh := "gh" + "p_" + randTok(newRand(t), alnumChars, 36)
	doc := `["q\"b\\s\u0001\t\ud800x\u2028é` + gh + `"]`
	r, err := mustNew(t, Config{}).ScanJSON([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `["q\"b\\s\u0001\t` + "\uFFFD" + `x\u2028é[REDACTED:github]"]`
	if string(r.Out) != want {
		t.Errorf("got  %q\nwant %q", r.Out, want)
	}
}

// The credentials of an STS response are found although names and values
// are separate JSON strings.
func TestAWSCredentialsJSON(t *testing.T) {
	r := newRand(t)
	id := "AS" + "IA" + randStr(r, upperChars+digitChars, 16)
	secret := randTok(r, b64Chars, 40)
	session := randTok(r, b64Chars, 400)
	doc := fmt.Sprintf(`{"Credentials":{"AccessKeyId":%q,"SecretAccessKey":%q,"SessionToken":%q,"Expiration":"2030-01-01T00:00:00Z"}}`, id, secret, session)
	res, err := mustNew(t, Config{}).ScanJSON([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Credentials":{"AccessKeyId":"[REDACTED:aws_access_key]","SecretAccessKey":"[REDACTED:aws_secret_key]","SessionToken":"[REDACTED:aws_secret_key]","Expiration":"2030-01-01T00:00:00Z"}}`
	if string(res.Out) != want {
		t.Errorf("got  %s\nwant %s", res.Out, want)
	}
	if f, _ := finding(res, "aws_secret_key"); f.Count != 2 {
		t.Errorf("aws_secret_key count = %d, want 2", f.Count)
	}
	// A 40-character value under another name is not a secret key.
	doc = fmt.Sprintf(`{"commit":%q,"checksum":%q}`, strings.Repeat("ab", 20), secret)
	if res, _ := mustNew(t, Config{}).ScanJSON([]byte(doc), nil); res.Changed {
		t.Errorf("unrelated 40-character values redacted: %s", res.Out)
	}
}

func TestServiceAccountObject(t *testing.T) {
	r := newRand(t)
	kid := randStr(r, "0123456789abcdef", 40)
	key, _ := pemBlock(r, privKind(""), 600, true)
	sa := map[string]string{"private_key_id": kid, "private_key": key, "type": "service_account", "client_id": "1234"}
	doc, _ := json.Marshal(map[string]any{"files": []any{sa}})
	for _, tc := range []struct {
		cfg       Config
		wantLabel string
		wantPK    bool // private_key detector still reports
	}{
		{Config{}, `"[REDACTED:gcp_service_account]"`, true},
		{Config{Disabled: []string{"private_key"}}, `"[REDACTED:gcp_service_account]"`, false},
		{Config{Disabled: []string{"gcp_service_account"}}, "[REDACTED:private_key]", true},
	} {
		res, err := mustNew(t, tc.cfg).ScanJSON(doc, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(res.Out, []byte(tc.wantLabel)) {
			t.Errorf("%+v: output lacks %s: %s", tc.cfg, tc.wantLabel, res.Out)
		}
		if _, ok := finding(res, "private_key"); ok != tc.wantPK {
			t.Errorf("%+v: private_key finding %v, want %v", tc.cfg, ok, tc.wantPK)
		}
		if bytes.Contains(res.Out, []byte(key[40:100])) {
			t.Errorf("%+v: key body survived", tc.cfg)
		}
		gcp, ok := finding(res, "gcp_service_account")
		if disabled := slices.Contains(tc.cfg.Disabled, "gcp_service_account"); ok == disabled || !disabled && gcp.Count != 1 {
			t.Errorf("%+v: gcp finding %+v", tc.cfg, gcp)
		}
	}
}

// Every built-in expression compiles and the keyword sets fit the mask.
func TestBuiltinRules(t *testing.T) {
	names := make(map[string]bool)
	for _, n := range builtinOrder() {
		names[n] = true
	}
	for _, r := range builtinRules() {
		if !names[r.det] {
			t.Errorf("rule for unknown detector %s", r.det)
		}
		for _, k := range append(r.keywords, r.also...) {
			if k == "" || k != strings.ToLower(k) {
				t.Errorf("%s: keyword %q must be non-empty lowercase", r.det, k)
			}
		}
		if len(r.keywords) == 0 {
			t.Errorf("%s: a built-in rule needs keywords", r.det)
		}
	}
	s := mustNew(t, Config{})
	if len(s.dets) != len(BuiltinNames())+1 {
		t.Errorf("%d detectors", len(s.dets))
	}
}

func TestPrefilter(t *testing.T) {
	// Bits 0..4; positions reported for bits 2 (his) and 4 (ghp_, gho_).
	p := newPrefilter([]string{"he", "she", "his", "hers", "ghp_", "gho_"}, []uint8{0, 1, 2, 3, 4, 4}, 1<<2|1<<4)
	for _, tc := range []struct {
		in   string
		want uint64
		hits []hit
	}{
		{"", 0, nil},
		{"xyz", 0, nil},
		{"ushers", 1<<0 | 1<<1 | 1<<3, nil},
		{"HIS", 1 << 2, []hit{{2, 0}}},
		{"sHe", 1<<0 | 1<<1, nil},
		{"aGHP_b gho_ ghp", 1 << 4, []hit{{4, 1}, {4, 7}}},
		{"gh_p", 0, nil},
		{"hhis his", 1 << 2, []hit{{2, 1}, {2, 5}}},
	} {
		got, hits := p.scan([]byte(tc.in), nil)
		if got != tc.want || !slices.Equal(hits, tc.hits) {
			t.Errorf("scan(%q) = %b %v, want %b %v", tc.in, got, hits, tc.want, tc.hits)
		}
	}
}

// Anchored rules honour their lookbehind and FindAll's non-overlap.
func TestAnchoredRules(t *testing.T) {
	r := newRand(t)
	pw := randTok(r, alnumChars, 12)
	tok := randTok(r, alnumChars, 24)
	s := mustNew(t, Config{})
	for _, tc := range []struct{ in, want string }{
		{"xbasic " + b64std([]byte("u:"+pw)), "xbasic " + b64std([]byte("u:"+pw))},
		{"_Bearer " + tok, "_Bearer " + tok},
		{"(Bearer " + tok + ")", "(Bearer [REDACTED:bearer])"},
		{"BEARER " + tok, "BEARER [REDACTED:bearer]"},
		{"x;  Password = " + pw + ";y", "x;  Password = [REDACTED:connection_string];y"},
		{"my password=" + pw, "my password=" + pw},
		{"u?sv=2022-11-02&xsig=" + tok + "&sig=" + tok, "u?sv=2022-11-02&xsig=" + tok + "&sig=[REDACTED:azure]"},
	} {
		if got := s.ScanText([]byte(tc.in), nil); string(got.Out) != tc.want {
			t.Errorf("ScanText(%q) = %q, want %q", tc.in, got.Out, tc.want)
		}
	}
}
