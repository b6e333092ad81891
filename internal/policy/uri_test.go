package policy

import (
	"strings"
	"testing"
)

func TestURIProblem(t *testing.T) {
	for _, tt := range []struct {
		uri, want string // want: substring of the problem, "" if accepted
	}{
		{"docs://readme", ""},
		{"docs://projects/roadmap/readme", ""},
		{"DOCS://readme", ""},
		{"file:///home/user/notes.txt", ""},
		{"https://example.com:8443/a/b?x=1#f", ""},
		{"urn:isbn:0451450523", ""},
		{"docs://dir/", ""},
		{"docs://notes/caf%C3%A9", ""},
		{"docs://notes/a%20b", ""},
		{"docs://v1.2/a.b", ""},
		{"readme", "not an absolute URI"},
		{"", "not an absolute URI"},
		{"://x", "not an absolute URI"},
		{"1docs://x", "not an absolute URI"},
		{"docs://public/../secret", `".."`},
		{"docs://public/..", `".."`},
		{"docs://public/a..b", `".."`},
		{"docs://public/./x", `"." segment`},
		{"docs://public/.", `"." segment`},
		{"docs://./x", `"." segment`},
		{"docs:.", `"." segment`},
		{"docs://public/%2e%2e/secret", "percent-encoded dot"},
		{"docs://public/%2E%2E/secret", "percent-encoded dot"},
		{"docs://public/.%2e/secret", "percent-encoded dot"},
		{"docs://public/a%2fb", "percent-encoded dot, slash"},
		{"docs://public/a%2Fb", "percent-encoded dot, slash"},
		{"docs://public/a%5cb", "backslash"},
		{"docs://public/a%5Cb", "backslash"},
		{"docs://public/%252e%252e/x", "percent sign"},
		{"docs://public/%00", "percent-encoded control"},
		{"docs://public/%7f", "percent-encoded control"},
		{"docs://public/%zz", "malformed percent"},
		{"docs://public/%2", "malformed percent"},
		{"docs://public/%", "malformed percent"},
		{`docs://public\..\secret`, "backslash"},
		{`docs://public\x`, "backslash"},
		{"docs://public/a b", "whitespace"},
		{"docs://public/a\tb", "whitespace"},
		{"docs://public/a\nb", "whitespace"},
		{"docs://public/a\x00", "control"},
		{"docs://public/a\x7f", "control"},
		{"docs://public/caf\u00e9", "non-ASCII"},
		{"docs://public/\uff0e\uff0e/x", "non-ASCII"},
		{"docs://public/a\u200bb", "non-ASCII"},
		{"docs://public//secret", "empty path segment"},
		{"file:////etc/passwd", "empty path segment"},
		{"docs:a//b", "empty path segment"},
		{"docs://x/" + strings.Repeat("a", maxURILen), "longer than"},
	} {
		got := uriProblem(tt.uri)
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("uriProblem(%q) = %q, want %q", tt.uri, got, tt.want)
		}
	}
}

func TestParseURIPatternErrors(t *testing.T) {
	for _, tt := range []struct{ uri, want string }{
		{"docs://projects/{p}x/readme", "whole path segment"},
		{"docs://projects/x{p}/readme", "whole path segment"},
		{"docs://projects/{p/readme", "whole path segment"},
		{"docs://projects/{{p}}/readme", "whole path segment"},
		{"docs://projects/{a b}/readme", "variable name"},
		{"docs://projects/{}/readme", "variable name"},
		{"docs://{host}/readme", "authority cannot be a variable"},
		{"docs://p/{a}/{a}", "appears twice"},
		{"docs://p/*/x", "'*' is only allowed"},
		{"docs://p/a*", "'*' is only allowed"},
		{"docs://p/**", "'*' is only allowed"},
		{"readme", "not an absolute URI"},
		{"{s}://x", "not an absolute URI"},
		{"docs://p/../x", `".."`},
		{"docs://p/%2e/x", "percent-encoded"},
		{"docs://p//x", "empty path segment"},
		{"docs://p/ x", "whitespace"},
		{"docs://p/./*", `"." segment`},
	} {
		if _, err := parseURIPattern(tt.uri, false); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseURIPattern(%q) error = %v, want containing %q", tt.uri, err, tt.want)
		}
	}
}

func TestURIMatch(t *testing.T) {
	for _, tt := range []struct {
		pattern string
		deny    bool
		uri     string
		want    bool
		vals    []string
	}{
		{pattern: "docs://readme", uri: "docs://readme", want: true},
		{pattern: "docs://readme", uri: "DOCS://readme", want: true}, // scheme is case-insensitive
		{pattern: "DOCS://readme", uri: "docs://readme", want: true},
		{pattern: "docs://readme", uri: "docs://README", want: false},
		{pattern: "docs://readme", uri: "docs://readme/", want: false},
		{pattern: "docs://readme", uri: "docs://readme/x", want: false},
		{pattern: "docs://readme", uri: "docs://readme?x=1", want: false},
		{pattern: "docs://readme", uri: "doc://readme", want: false},
		{pattern: "docs://readme", uri: "docsx://readme", want: false},
		{pattern: "docs://readme", uri: "docs:readme", want: false},
		{pattern: "docs://Readme", deny: true, uri: "docs://README", want: true}, // deny rules fold the authority
		{pattern: "docs://Readme", deny: false, uri: "docs://README", want: false},
		{pattern: "docs://x/Secret", deny: true, uri: "docs://x/SECRET", want: true}, // and the path, for deny rules
		{pattern: "docs://projects/{p}/readme", uri: "docs://projects/roadmap/readme", want: true, vals: []string{"roadmap"}},
		{pattern: "docs://projects/{p}/readme", uri: "docs://projects/Roadmap/readme", want: true, vals: []string{"Roadmap"}},
		{pattern: "docs://projects/{p}/readme", uri: "docs://projects/a/b/readme", want: false},
		{pattern: "docs://projects/{p}/readme", uri: "docs://projects/readme", want: false},
		{pattern: "docs://projects/{p}/readme", uri: "docs://projects/x/readme/", want: false},
		{pattern: "docs://projects/{p}/{f}", uri: "docs://projects/x/y.md", want: true, vals: []string{"x", "y.md"}},
		{pattern: "urn:{id}", uri: "urn:isbn:1", want: true, vals: []string{"isbn:1"}},
		{pattern: "docs://public/*", uri: "docs://public/a", want: true},
		{pattern: "docs://public/*", uri: "docs://public/a/b/c", want: true},
		{pattern: "docs://public/*", uri: "docs://public/", want: true},
		{pattern: "docs://public/*", uri: "docs://public", want: false},
		{pattern: "docs://public/*", uri: "docs://publicity/x", want: false},
		{pattern: "docs://public/*", uri: "docs://publicx", want: false},
		{pattern: "docs://public/*", uri: "docs://other/public/x", want: false},
		{pattern: "docs://*", uri: "docs://anything/at/all", want: true},
		{pattern: "docs://*", uri: "docs:x", want: false},
		{pattern: "file:///home/*", uri: "file:///home/u/x", want: true},
		{pattern: "file:///home/*", uri: "file://host/home/u/x", want: false},
		{pattern: "docs://p/{id}/*", uri: "docs://p/7/a/b", want: true, vals: []string{"7"}},
		{pattern: "docs://p/{id}/*", uri: "docs://p/7", want: false},
	} {
		p, err := parseURIPattern(tt.pattern, tt.deny)
		if err != nil {
			t.Fatalf("parseURIPattern(%q): %v", tt.pattern, err)
		}
		if why := uriProblem(tt.uri); why != "" {
			t.Fatalf("test URI %q refused: %s", tt.uri, why)
		}
		vals := make([]string, len(p.vars))
		got := p.match(tt.uri, vals)
		if got != tt.want {
			t.Errorf("%q (deny=%v) match %q = %v, want %v", tt.pattern, tt.deny, tt.uri, got, tt.want)
		}
		if got && tt.vals != nil && strings.Join(vals, "|") != strings.Join(tt.vals, "|") {
			t.Errorf("%q match %q vals = %q, want %q", tt.pattern, tt.uri, vals, tt.vals)
		}
	}
}

func TestURICovers(t *testing.T) {
	for _, tt := range []struct {
		a, b  string
		aDeny bool
		want  bool
	}{
		{a: "docs://readme", b: "docs://readme", want: true},
		{a: "docs://readme", b: "DOCS://readme", want: true},
		{a: "docs://readme", b: "docs://other", want: false},
		{a: "docs://p/{a}", b: "docs://p/{b}", want: true},
		{a: "docs://p/{a}", b: "docs://p/x", want: true},
		{a: "docs://p/x", b: "docs://p/{a}", want: false},
		{a: "docs://public/*", b: "docs://public/secret", want: true},
		{a: "docs://public/*", b: "docs://public/a/*", want: true},
		{a: "docs://public/*", b: "docs://public/*", want: true},
		{a: "docs://public/*", b: "docs://public", want: false},
		{a: "docs://public/a/*", b: "docs://public/*", want: false},
		{a: "docs://p/{x}/*", b: "docs://p/q/r", want: true},
		{a: "docs://p/{x}", b: "docs://p/{x}/*", want: false},
		{a: "docs://Host/*", aDeny: true, b: "docs://host/x", want: true},
		{a: "docs://Host/*", b: "docs://host/x", want: false},
		{a: "docs://{x}/*", b: "docs://a/b", want: false}, // rejected anyway: authority variable
	} {
		pa, err := parseURIPattern(tt.a, tt.aDeny)
		if err != nil {
			continue
		}
		pb, err := parseURIPattern(tt.b, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := pa.covers(pb); got != tt.want {
			t.Errorf("%q covers %q = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// FuzzResourceURI checks the matcher on arbitrary URIs: no panic; a URI
// with "..", "%2e" or "%2f" (any case) never passes the safety check and so
// never matches a prefix rule; a URI that passes and matches a template
// rule yields values that, when accepted by the pattern, fill a
// scope-token-safe scope.
func FuzzResourceURI(f *testing.F) {
	for _, s := range []string{
		"docs://public/a", "docs://public/../secret", "docs://public/%2e%2e/secret",
		"docs://public/%2F", "docs://public/.", "docs://public//x", "docs://public",
		"docs://publicity/x", "docs://projects/roadmap/readme", "docs://projects/Roadmap/readme",
		"DOCS://PUBLIC/x", "docs://public/a\x00", "docs://public/\uff0e\uff0e/x", `docs://public\x`,
		"docs://public/%252e", "docs://projects/%41/readme", "docs:", "docs:/public/x",
	} {
		f.Add(s)
	}
	project := map[string]ArgRule{"project": {Pattern: `(?s).+`}}
	r, err := Compile(nil, RouteConfig{
		Resources: []ResourceRule{
			{URI: "docs://secret/*", Deny: true},
			{URI: "docs://projects/{project}/readme", Scopes: []string{"document:read:{project}"}, Arguments: project},
			{URI: "docs://public/*", Scopes: []string{"docs:public"}},
		},
	})
	if err != nil {
		f.Fatal(err)
	}
	prefix := r.resources[2].uri
	tmpl := r.resources[1]
	f.Fuzz(func(t *testing.T, u string) {
		why := uriProblem(u)
		lower := strings.ToLower(u)
		if why == "" && (strings.Contains(u, "..") || strings.Contains(lower, "%2e") || strings.Contains(lower, "%2f")) {
			t.Fatalf("uriProblem(%q) accepted a traversal", u)
		}
		d := r.Decide(Request{Method: "resources/read", URI: u, Grant: (*Hierarchy)(nil).Expand([]string{"docs:public"})})
		if why != "" {
			if d.Outcome != Deny || d.RuleID != "invalid:resource" {
				t.Fatalf("unsafe URI %q (%s) decided %v by %s", u, why, d.Outcome, d.RuleID)
			}
			return
		}
		if prefix.match(u, nil) {
			if !strings.HasPrefix(strings.ToLower(u), "docs://public/") {
				t.Fatalf("prefix rule matched %q", u)
			}
			if d.Outcome != Allow || d.RuleID != "resource:2" {
				t.Fatalf("prefix URI %q decided %v by %s", u, d.Outcome, d.RuleID)
			}
		}
		vals := make([]string, 1)
		if tmpl.uri.match(u, vals) && tmpl.args[0].check(vals[0]) == valueOK {
			if s := tmpl.tmpls[0].expand(vals); !validScope(s) {
				t.Fatalf("URI %q produced scope %q", u, s)
			}
			if d.Outcome != InsufficientScope || d.RuleID != "resource:1" {
				t.Fatalf("template URI %q decided %v by %s", u, d.Outcome, d.RuleID)
			}
		}
	})
}

// FuzzURIPattern pairs arbitrary rule URIs with arbitrary request URIs: no
// panic; a rule that compiles obeys the request rules itself; a URI that
// Decide would match never carries "..", "%2e" or "%2f"; variable values
// are whole, non-empty segments.
func FuzzURIPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"docs://public/*", "docs://public/a"},
		{"docs://public/*", "docs://public/../secret"},
		{"docs://public/*", "docs://public/%2e%2e/secret"},
		{"docs://projects/{p}/readme", "docs://projects/x/readme"},
		{"docs://projects/{p}/*", "docs://projects/x/y/z"},
		{"docs://{h}/x", "docs://a/x"},
		{"file:///*", "file:///etc/passwd"},
		{"urn:{id}", "urn:a:b"},
		{"docs:*", "docs:x"},
		{"DOCS://Public/*", "docs://PUBLIC/x"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, rule, u string) {
		for _, deny := range []bool{false, true} {
			p, err := parseURIPattern(rule, deny)
			if err != nil {
				continue
			}
			if strings.Contains(rule, "..") || strings.Contains(strings.ToLower(rule), "%2e") {
				t.Fatalf("rule %q compiled", rule)
			}
			if uriProblem(u) != "" {
				continue
			}
			vals := make([]string, len(p.vars))
			if !p.match(u, vals) {
				continue
			}
			lower := strings.ToLower(u)
			if strings.Contains(u, "..") || strings.Contains(lower, "%2e") || strings.Contains(lower, "%2f") {
				t.Fatalf("rule %q matched %q", rule, u)
			}
			for _, v := range vals {
				if v == "" || strings.Contains(v, "/") {
					t.Fatalf("rule %q matched %q with variable %q", rule, u, v)
				}
			}
			if !p.covers(p) {
				t.Fatalf("rule %q does not cover itself", rule)
			}
		}
	})
}

// TestDenyRulesResistEncodingAndCase: a deny rule cannot be side-stepped by
// percent-encoding an unreserved character or changing letter case, which
// upstreams that decode or fold would still read as the denied resource.
func TestDenyRulesResistEncodingAndCase(t *testing.T) {
	r, err := Compile(nil, RouteConfig{Resources: []ResourceRule{
		{URI: "file:///data/secret/*", Deny: true},
		{URI: "file:///data/*"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{
		"file:///data/secret/pw",
		"file:///data/%73ecret/pw",
		"file:///data/SECRET/pw",
		"file:///data/Secret/pw",
		"file:///DATA/secret/pw",
		"file:///data/secret%2Dx/pw",
	} {
		if d := r.Decide(Request{Method: "resources/read", URI: u}); d.Outcome == Allow {
			t.Errorf("%s allowed by %s, want denied", u, d.RuleID)
		}
	}
	if d := r.Decide(Request{Method: "resources/read", URI: "file:///data/public/a"}); d.Outcome != Allow {
		t.Errorf("file:///data/public/a: %v %s", d.Outcome, d.Reason)
	}
}
