package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCompileErrorsAllAtOnce feeds one configuration with a problem of every
// kind and checks that each is reported, naming its item and field.
func TestCompileErrorsAllAtOnce(t *testing.T) {
	p := map[string]ArgRule{"project": projectRule}
	rc := RouteConfig{
		RequiredScopes: []string{"mcp:basic", "", "bad scope", "mcp:{x}"},
		Tools: map[string]Rule{
			"unknown_var":   {Scopes: []string{"document:read:{project}"}},
			"bad_pattern":   {Scopes: []string{"doc:{p}"}, Arguments: map[string]ArgRule{"p": {Pattern: "[a-"}}},
			"empty_scope":   {Scopes: []string{""}},
			"illegal_chars": {Scopes: []string{"docs read", `doc"s:{project}`}, Arguments: p},
			"deny_scopes":   {Deny: true, Scopes: []string{"x"}},
			"only_var":      {Scopes: []string{"{project}"}, Arguments: p},
			"unbalanced":    {Scopes: []string{"doc:{project"}, Arguments: p},
			"empty_match":   {Arguments: map[string]ArgRule{"q": {Pattern: ".*"}}},
			"bad name":      {},
		},
		Prompts: map[string]Rule{
			"p_unknown_var": {Scopes: []string{"prompt:{x}"}},
		},
		Resources: []ResourceRule{
			{URI: "docs://readme", Scopes: []string{"docs:read"}},                                               // 0
			{URI: "docs://readme", Scopes: []string{"docs:write"}},                                              // 1 duplicate of 0
			{URI: "docs://projects/{project}x/readme", Arguments: p},                                            // 2 var not a whole segment
			{URI: "docs://projects/{project}/readme"},                                                           // 3 var without pattern
			{URI: "docs://p/{a}", Scopes: []string{"doc:{b}"}, Arguments: map[string]ArgRule{"a": projectRule}}, // 4 scope var not in URI
			{URI: "docs://q/{a}", Arguments: map[string]ArgRule{"a": projectRule, "z": projectRule}},            // 5 pattern for no var
			{URI: "docs://public/*"}, // 6
			{URI: "docs://public/x"}, // 7 shadowed by 6
			{URI: "docs://../x"},     // 8 traversal in a rule
			{URI: "docs://deny/*", Deny: true, Scopes: []string{"x"}},                  // 9
			{URI: "docs://r/{a}", Arguments: map[string]ArgRule{"a": {Pattern: "(x"}}}, // 10 bad pattern
		},
		DefaultTool:     Default{Scopes: []string{"x"}},
		DefaultPrompt:   Default{Allow: true, Scopes: []string{"bad scope", "{x}"}},
		DefaultResource: Default{Allow: true},
	}
	_, err := Compile(nil, rc)
	if err == nil {
		t.Fatal("Compile accepted an invalid configuration")
	}
	want := []string{
		`required_scopes[1]: empty scope`,
		`required_scopes[2]: scope "bad scope" contains a character not allowed`,
		`required_scopes[3]: scope "mcp:{x}": braces are reserved`,
		`tool "unknown_var": scopes[0]: scope "document:read:{project}": variable "project" has no argument rule`,
		`tool "bad_pattern": arguments["p"]: pattern "[a-": error parsing regexp`,
		`tool "empty_scope": scopes[0]: empty scope`,
		`tool "illegal_chars": scopes[0]: scope "docs read" contains a character not allowed`,
		`tool "illegal_chars": scopes[1]: scope "doc\"s:{project}": literal text contains a character not allowed`,
		`tool "deny_scopes": deny cannot be combined with scopes or arguments`,
		`tool "only_var": scopes[0]: scope "{project}": must contain literal text`,
		`tool "unbalanced": scopes[0]: scope "doc:{project": unterminated`,
		`tool "empty_match": arguments["q"]: pattern ".*" matches the empty string`,
		`tool "bad name": name must be`,
		`prompt "p_unknown_var": scopes[0]: scope "prompt:{x}": variable "x" has no argument rule`,
		`resource 1 "docs://readme": unreachable: resource 0 already matches`,
		`resource 2 "docs://projects/{project}x/readme": uri "docs://projects/{project}x/readme": a variable must be a whole path segment`,
		`resource 3 "docs://projects/{project}/readme": arguments: URI variable "project" has no pattern`,
		`resource 4 "docs://p/{a}": scopes[0]: scope "doc:{b}": variable "b" is not a variable of the URI`,
		`resource 5 "docs://q/{a}": arguments["z"]: not a variable of the URI`,
		`resource 7 "docs://public/x": unreachable: resource 6 already matches`,
		`resource 8 "docs://../x": uri "docs://../x": contains ".."`,
		`resource 9 "docs://deny/*": deny cannot be combined with scopes or arguments`,
		`resource 10 "docs://r/{a}": arguments["a"]: pattern "(x": error parsing regexp`,
		`default_tool: scopes given but allow is false`,
		`default_prompt: scopes[0]: scope "bad scope" contains a character not allowed`,
		`default_prompt: scopes[1]: scope "{x}": braces are reserved`,
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q", w)
		}
	}
	if got := len(unjoin(err)); got != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", got, len(want), err)
	}
}

func TestCompileValid(t *testing.T) {
	for _, tt := range []struct {
		name string
		rc   RouteConfig
	}{
		{"zero", RouteConfig{}},
		{"realistic", testConfig()},
		{"deny resource with a variable and no pattern", RouteConfig{Resources: []ResourceRule{{URI: "docs://p/{x}/secret", Deny: true}}}},
		{"narrow rule before a broad one", RouteConfig{Resources: []ResourceRule{{URI: "docs://public/x", Deny: true}, {URI: "docs://public/*"}}}},
		{"argument validated but not used in a scope", RouteConfig{Tools: map[string]Rule{"t": {Arguments: map[string]ArgRule{"path": {Pattern: `[a-z/]+`}}}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Compile(nil, tt.rc); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBaselineScopes(t *testing.T) {
	r, err := Compile(nil, RouteConfig{RequiredScopes: []string{"mcp:tools", "mcp:basic", "mcp:tools"}})
	if err != nil {
		t.Fatal(err)
	}
	got := r.BaselineScopes()
	if diff := cmp.Diff([]string{"mcp:basic", "mcp:tools"}, got); diff != "" {
		t.Errorf("BaselineScopes (-want +got):\n%s", diff)
	}
	got[0] = "changed"
	if r.BaselineScopes()[0] != "mcp:basic" {
		t.Error("BaselineScopes exposes internal state")
	}
	r, _ = Compile(nil, RouteConfig{})
	if len(r.BaselineScopes()) != 0 {
		t.Error("zero config has baseline scopes")
	}
}

func TestUnjoin(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	if got := unjoin(errors.Join(a, errors.Join(b, c))); len(got) != 3 {
		t.Errorf("unjoin = %v", got)
	}
	if unjoin(nil) != nil {
		t.Error("unjoin(nil) != nil")
	}
}
