package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func args(kv ...string) map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = json.RawMessage(kv[i+1])
	}
	return m
}

func TestDecide(t *testing.T) {
	r := testRoute(t)
	const strictPattern = `^[a-z0-9-]{1,40}$`
	for _, tt := range []struct {
		name     string
		req      Request
		granted  string
		want     Outcome
		ruleID   string
		required []string
		reason   string // substring; "" means Reason must be empty
	}{
		// Route scopes apply to every method.
		{name: "initialize with baseline", req: Request{Method: "initialize"}, granted: "mcp:basic", want: Allow, ruleID: "route", required: []string{"mcp:basic"}},
		{name: "initialize without baseline", req: Request{Method: "initialize"}, granted: "docs:admin", want: InsufficientScope, ruleID: "route", required: []string{"mcp:basic"}, reason: `this route requires scopes "mcp:basic" (missing "mcp:basic")`},
		{name: "empty method (GET stream, DELETE)", req: Request{}, granted: "mcp:basic", want: Allow, ruleID: "route", required: []string{"mcp:basic"}},
		{name: "tools/list needs the route only", req: Request{Method: "tools/list"}, granted: "mcp:basic", want: Allow, ruleID: "route", required: []string{"mcp:basic"}},

		// Simple tools.
		{name: "tool allowed", req: Request{Method: "tools/call", Name: "search"}, granted: "mcp:basic docs:read", want: Allow, ruleID: "tool:search", required: []string{"docs:read", "mcp:basic"}},
		{name: "tool allowed through hierarchy", req: Request{Method: "tools/call", Name: "search"}, granted: "mcp:basic docs:admin", want: Allow, ruleID: "tool:search", required: []string{"docs:read", "mcp:basic"}},
		{name: "tool missing rule scope", req: Request{Method: "tools/call", Name: "search"}, granted: "mcp:basic", want: InsufficientScope, ruleID: "tool:search", required: []string{"docs:read", "mcp:basic"}, reason: `tool "search" requires scopes "docs:read mcp:basic" (missing "docs:read")`},
		{name: "tool missing every scope: one challenge lists all", req: Request{Method: "tools/call", Name: "search"}, granted: "", want: InsufficientScope, ruleID: "tool:search", required: []string{"docs:read", "mcp:basic"}, reason: `(missing "docs:read mcp:basic")`},
		{name: "tool with no scopes of its own", req: Request{Method: "tools/call", Name: "echo"}, granted: "mcp:basic", want: Allow, ruleID: "tool:echo", required: []string{"mcp:basic"}},
		{name: "implied scope does not imply upward", req: Request{Method: "tools/call", Name: "write_document", Arguments: args("project", `"roadmap"`)}, granted: "mcp:basic docs:read document:write:roadmap", want: InsufficientScope, ruleID: "tool:write_document", required: []string{"docs:write", "document:write:roadmap", "mcp:basic"}, reason: `(missing "docs:write")`},
		{name: "listed deny", req: Request{Method: "tools/call", Name: "delete_repo"}, granted: "mcp:basic docs:admin", want: Deny, ruleID: "tool:delete_repo", reason: `tool "delete_repo" is not available through this gateway`},
		{name: "listed deny wins over missing route scope", req: Request{Method: "tools/call", Name: "delete_repo"}, granted: "", want: Deny, ruleID: "tool:delete_repo"},
		{name: "unlisted tool denied by default", req: Request{Method: "tools/call", Name: "drop_table"}, granted: "mcp:basic docs:admin", want: Deny, ruleID: "default:tool", reason: `tool "drop_table" is not allowed by this gateway's policy`},
		{name: "tool names are exact", req: Request{Method: "tools/call", Name: "Search"}, granted: "mcp:basic docs:read", want: Deny, ruleID: "default:tool"},
		{name: "missing tool name", req: Request{Method: "tools/call"}, granted: "mcp:basic", want: Deny, ruleID: "invalid:tool", reason: "tool name is missing"},
		{name: "untrusted name is escaped and truncated", req: Request{Method: "tools/call", Name: "x\u202e\n" + strings.Repeat("y", 100)}, granted: "mcp:basic", want: Deny, ruleID: "default:tool", reason: `tool "x\u202e\n` + strings.Repeat("y", 59) + `"... is not allowed`},

		// Templated tools.
		{name: "templated allowed", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `"roadmap"`)}, granted: "mcp:basic docs:read document:read:roadmap", want: Allow, ruleID: "tool:get_document", required: []string{"docs:read", "document:read:roadmap", "mcp:basic"}},
		{name: "templated escaped argument decodes like upstream", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `"\u0072oadmap"`)}, granted: "mcp:basic docs:read document:read:roadmap", want: Allow, ruleID: "tool:get_document", required: []string{"docs:read", "document:read:roadmap", "mcp:basic"}},
		{name: "templated other project", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `"payroll"`)}, granted: "mcp:basic docs:read document:read:roadmap", want: InsufficientScope, ruleID: "tool:get_document", required: []string{"docs:read", "document:read:payroll", "mcp:basic"}, reason: `(missing "document:read:payroll")`},
		{name: "templated missing all", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `"payroll"`)}, granted: "", want: InsufficientScope, ruleID: "tool:get_document", required: []string{"docs:read", "document:read:payroll", "mcp:basic"}, reason: `(missing "docs:read document:read:payroll mcp:basic")`},
		{name: "extra arguments are ignored", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `"roadmap"`, "page", `3`)}, granted: "mcp:basic docs:read document:read:roadmap", want: Allow, ruleID: "tool:get_document", required: []string{"docs:read", "document:read:roadmap", "mcp:basic"}},
		{name: "missing argument", req: Request{Method: "tools/call", Name: "get_document"}, granted: "mcp:basic docs:read", want: Deny, ruleID: "tool:get_document", reason: `tool "get_document": argument "project" is required and must be a string matching ` + strictPattern},
		{name: "null argument", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `null`)}, granted: "mcp:basic", want: Deny, ruleID: "tool:get_document", reason: `argument "project" must be a string matching ` + strictPattern},
		{name: "number argument", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `42`)}, granted: "mcp:basic", want: Deny, ruleID: "tool:get_document", reason: `must be a string`},
		{name: "array argument", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `["roadmap"]`)}, granted: "mcp:basic", want: Deny, ruleID: "tool:get_document", reason: `must be a string`},
		{name: "object argument", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `{"project":"roadmap"}`)}, granted: "mcp:basic", want: Deny, ruleID: "tool:get_document", reason: `must be a string`},
		{name: "case-variant key is not the argument", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("Project", `"roadmap"`)}, granted: "mcp:basic", want: Deny, ruleID: "tool:get_document", reason: `is required`},
		{name: "traversal", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `"../x"`)}, granted: "mcp:basic docs:read document:read:../x", want: Deny, ruleID: "tool:get_document", reason: `argument "project" value "../x" must match ` + strictPattern},
		{name: "percent-encoded traversal", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `"%2e%2e"`)}, granted: "mcp:basic", want: Deny, ruleID: "tool:get_document", reason: `value "%2e%2e" must match`},
		{name: "case", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `"Roadmap"`)}, granted: "mcp:basic", want: Deny, ruleID: "tool:get_document", reason: `value "Roadmap" must match`},
		{name: "trailing space", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `"roadmap "`)}, granted: "mcp:basic", want: Deny, ruleID: "tool:get_document", reason: `value "roadmap " contains characters not allowed in a scope`},
		{name: "leading space", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `" roadmap"`)}, granted: "mcp:basic", want: Deny, ruleID: "tool:get_document", reason: `value " roadmap" contains characters`},
		{name: "zero-width space", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `"road\u200bmap"`)}, granted: "mcp:basic", want: Deny, ruleID: "tool:get_document", reason: `value "road\u200bmap" contains characters`},
		{name: "full-width letters", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `"ｒｏａｄｍａｐ"`)}, granted: "mcp:basic", want: Deny, ruleID: "tool:get_document", reason: `value "\uff52\uff4f\uff41\uff44\uff4d\uff41\uff50" contains characters`},
		{name: "cyrillic look-alike", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `"rоadmap"`)}, granted: "mcp:basic", want: Deny, ruleID: "tool:get_document", reason: `value "r\u043eadmap" contains characters`},
		{name: "NUL", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `"road\u0000map"`)}, granted: "mcp:basic", want: Deny, ruleID: "tool:get_document", reason: `value "road\x00map" contains characters`},
		{name: "long value truncated in reason", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `"`+strings.Repeat("a", 200)+`"`)}, granted: "mcp:basic", want: Deny, ruleID: "tool:get_document", reason: `value "` + strings.Repeat("a", 64) + `"... must match`},
		{name: "bad argument denies even without route scope", req: Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `"../x"`)}, granted: "", want: Deny, ruleID: "tool:get_document"},

		// Prompts.
		{name: "prompt allowed", req: Request{Method: "prompts/get", Name: "summarize"}, granted: "mcp:basic docs:write", want: Allow, ruleID: "prompt:summarize", required: []string{"docs:read", "mcp:basic"}},
		{name: "prompt templated", req: Request{Method: "prompts/get", Name: "project_brief", Arguments: args("project", `"roadmap"`)}, granted: "mcp:basic", want: InsufficientScope, ruleID: "prompt:project_brief", required: []string{"document:read:roadmap", "mcp:basic"}},
		{name: "prompt bad argument", req: Request{Method: "prompts/get", Name: "project_brief", Arguments: args("project", `"a b"`)}, granted: "mcp:basic", want: Deny, ruleID: "prompt:project_brief", reason: `prompt "project_brief": argument "project"`},
		{name: "prompt listed deny", req: Request{Method: "prompts/get", Name: "forbidden"}, granted: "mcp:basic", want: Deny, ruleID: "prompt:forbidden", reason: `prompt "forbidden" is not available through this gateway`},
		{name: "prompt default allows with extra scope", req: Request{Method: "prompts/get", Name: "other"}, granted: "mcp:basic prompts:any", want: Allow, ruleID: "default:prompt", required: []string{"mcp:basic", "prompts:any"}},
		{name: "prompt default needs its scope", req: Request{Method: "prompts/get", Name: "other"}, granted: "mcp:basic", want: InsufficientScope, ruleID: "default:prompt", required: []string{"mcp:basic", "prompts:any"}, reason: `prompt "other" requires scopes`},
		{name: "missing prompt name", req: Request{Method: "prompts/get"}, granted: "mcp:basic", want: Deny, ruleID: "invalid:prompt"},

		// Resources.
		{name: "resource exact", req: Request{Method: "resources/read", URI: "docs://readme"}, granted: "mcp:basic docs:read", want: Allow, ruleID: "resource:1", required: []string{"docs:read", "mcp:basic"}},
		{name: "resource exact scheme case-insensitive", req: Request{Method: "resources/read", URI: "Docs://readme"}, granted: "mcp:basic docs:read", want: Allow, ruleID: "resource:1", required: []string{"docs:read", "mcp:basic"}},
		{name: "resource exact missing scope", req: Request{Method: "resources/read", URI: "docs://readme"}, granted: "mcp:basic", want: InsufficientScope, ruleID: "resource:1", required: []string{"docs:read", "mcp:basic"}, reason: `resource "docs://readme" requires scopes`},
		{name: "resource template", req: Request{Method: "resources/read", URI: "docs://projects/roadmap/readme"}, granted: "mcp:basic document:read:roadmap", want: Allow, ruleID: "resource:2", required: []string{"document:read:roadmap", "mcp:basic"}},
		{name: "resource template other project", req: Request{Method: "resources/read", URI: "docs://projects/payroll/readme"}, granted: "mcp:basic document:read:roadmap", want: InsufficientScope, ruleID: "resource:2", required: []string{"document:read:payroll", "mcp:basic"}},
		{name: "resource template bad segment", req: Request{Method: "resources/read", URI: "docs://projects/Roadmap/readme"}, granted: "mcp:basic document:read:Roadmap", want: Deny, ruleID: "resource:2", reason: `URI variable "project" value "Roadmap" must match ` + strictPattern},
		{name: "resource template encoded segment", req: Request{Method: "resources/read", URI: "docs://projects/road%41map/readme"}, granted: "mcp:basic", want: Deny, ruleID: "invalid:resource", reason: `percent-encoded letter`},
		{name: "resource subscribe uses read rules", req: Request{Method: "resources/subscribe", URI: "docs://projects/roadmap/readme"}, granted: "mcp:basic", want: InsufficientScope, ruleID: "resource:2", required: []string{"document:read:roadmap", "mcp:basic"}},
		{name: "resource unsubscribe uses read rules", req: Request{Method: "resources/unsubscribe", URI: "docs://secret/x"}, granted: "mcp:basic", want: Deny, ruleID: "resource:0"},
		{name: "resource prefix", req: Request{Method: "resources/read", URI: "docs://public/a/b.md"}, granted: "mcp:basic", want: Allow, ruleID: "resource:3", required: []string{"mcp:basic"}},
		{name: "resource prefix needs route scope", req: Request{Method: "resources/read", URI: "docs://public/a"}, granted: "", want: InsufficientScope, ruleID: "resource:3", required: []string{"mcp:basic"}},
		{name: "resource prefix is segment-wise", req: Request{Method: "resources/read", URI: "docs://publicity/a"}, granted: "mcp:basic", want: Deny, ruleID: "default:resource", reason: `resource "docs://publicity/a" is not allowed by this gateway's policy`},
		{name: "resource prefix itself", req: Request{Method: "resources/read", URI: "docs://public"}, granted: "mcp:basic", want: Deny, ruleID: "default:resource"},
		{name: "resource deny rule", req: Request{Method: "resources/read", URI: "docs://secret/keys"}, granted: "mcp:basic docs:admin", want: Deny, ruleID: "resource:0", reason: `resource "docs://secret/keys" is not available through this gateway`},
		{name: "resource deny rule folds authority", req: Request{Method: "resources/read", URI: "DOCS://SECRET/keys"}, granted: "mcp:basic", want: Deny, ruleID: "resource:0"},
		{name: "resource traversal out of prefix", req: Request{Method: "resources/read", URI: "docs://public/../secret/keys"}, granted: "mcp:basic", want: Deny, ruleID: "invalid:resource", reason: `resource "docs://public/../secret/keys" is refused: it contains ".."`},
		{name: "resource encoded traversal", req: Request{Method: "resources/read", URI: "docs://public/%2E%2E/secret/keys"}, granted: "mcp:basic", want: Deny, ruleID: "invalid:resource", reason: "percent-encoded dot"},
		{name: "resource encoded slash", req: Request{Method: "resources/read", URI: "docs://public/a%2fb"}, granted: "mcp:basic", want: Deny, ruleID: "invalid:resource"},
		{name: "resource backslash", req: Request{Method: "resources/read", URI: `docs://public\secret`}, granted: "mcp:basic", want: Deny, ruleID: "invalid:resource", reason: "backslash"},
		{name: "resource whitespace", req: Request{Method: "resources/read", URI: "docs://public/a b"}, granted: "mcp:basic", want: Deny, ruleID: "invalid:resource"},
		{name: "resource control char", req: Request{Method: "resources/read", URI: "docs://public/a\x00"}, granted: "mcp:basic", want: Deny, ruleID: "invalid:resource", reason: `resource "docs://public/a\x00" is refused`},
		{name: "resource dot segment", req: Request{Method: "resources/read", URI: "docs://public/./a"}, granted: "mcp:basic", want: Deny, ruleID: "invalid:resource"},
		{name: "resource empty segment", req: Request{Method: "resources/read", URI: "docs://public//a"}, granted: "mcp:basic", want: Deny, ruleID: "invalid:resource"},
		{name: "resource relative", req: Request{Method: "resources/read", URI: "readme"}, granted: "mcp:basic", want: Deny, ruleID: "invalid:resource"},
		{name: "resource missing URI", req: Request{Method: "resources/read"}, granted: "mcp:basic", want: Deny, ruleID: "invalid:resource", reason: "resource URI is missing"},
		{name: "resource unlisted", req: Request{Method: "resources/read", URI: "mail://inbox"}, granted: "mcp:basic docs:admin", want: Deny, ruleID: "default:resource"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Grant = grant(t, tt.granted)
			d := r.Decide(tt.req)
			if d.Outcome != tt.want {
				t.Errorf("Outcome = %v, want %v (reason %q)", d.Outcome, tt.want, d.Reason)
			}
			if d.RuleID != tt.ruleID {
				t.Errorf("RuleID = %q, want %q", d.RuleID, tt.ruleID)
			}
			if diff := cmp.Diff(tt.required, d.Required, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Required (-want +got):\n%s", diff)
			}
			if tt.reason == "" && d.Outcome == Allow && d.Reason != "" {
				t.Errorf("Reason = %q for Allow", d.Reason)
			}
			if tt.reason != "" && !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("Reason = %q, want containing %q", d.Reason, tt.reason)
			}
			if d.Outcome != Allow && d.Reason == "" {
				t.Error("refusal without a Reason")
			}
			for _, s := range d.Required {
				if !validScope(s) {
					t.Errorf("Required scope %q is not a scope-token", s)
				}
			}
		})
	}
}

// TestChallengeScopes checks what the gateway puts in an insufficient_scope
// challenge: Required (all scopes the operation needs) ∪ Granted.
func TestChallengeScopes(t *testing.T) {
	r := testRoute(t)
	g := grant(t, "mcp:basic docs:write")
	d := r.Decide(Request{Method: "tools/call", Name: "get_document", Arguments: args("project", `"roadmap"`), Grant: g})
	if d.Outcome != InsufficientScope {
		t.Fatalf("Outcome = %v", d.Outcome)
	}
	challenge := append(append([]string(nil), d.Required...), g.Granted()...)
	want := []string{"docs:read", "document:read:roadmap", "mcp:basic", "docs:write", "mcp:basic"}
	if diff := cmp.Diff(want, challenge); diff != "" {
		t.Errorf("challenge (-want +got):\n%s", diff)
	}
	// Appending to a shared Required never writes into the route.
	d1 := r.Decide(Request{Method: "tools/call", Name: "search", Grant: Grant{}})
	_ = append(d1.Required, "injected")
	d2 := r.Decide(Request{Method: "tools/call", Name: "search", Grant: Grant{}})
	if diff := cmp.Diff([]string{"docs:read", "mcp:basic"}, d2.Required); diff != "" {
		t.Errorf("Required changed by a caller's append (-want +got):\n%s", diff)
	}
}

func TestDecisionErr(t *testing.T) {
	if err := (Decision{Outcome: Allow}).Err(); err != nil {
		t.Errorf("Allow.Err() = %v", err)
	}
	for _, tt := range []struct {
		d    Decision
		want error
	}{
		{Decision{Outcome: Deny, Reason: "no"}, ErrDenied},
		{Decision{}, ErrDenied}, // the zero Decision fails closed
		{Decision{Outcome: InsufficientScope, Reason: "more"}, ErrInsufficientScope},
		{Decision{Outcome: Outcome(42)}, ErrDenied},
	} {
		err := tt.d.Err()
		if !errors.Is(err, tt.want) {
			t.Errorf("%v.Err() = %v, want %v", tt.d.Outcome, err, tt.want)
		}
		var de *DecisionError
		if !errors.As(err, &de) || de.Decision.Reason != tt.d.Reason {
			t.Errorf("%v.Err() does not carry the decision", tt.d.Outcome)
		}
		if !strings.HasSuffix(err.Error(), ": "+tt.d.Reason) {
			t.Errorf("Error() = %q", err)
		}
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Allow: "allow", Deny: "deny", InsufficientScope: "insufficient_scope", 9: "outcome(9)"} {
		if got := o.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", o, got, want)
		}
	}
	var d Decision
	if d.Outcome != Deny {
		t.Error("zero Outcome is not Deny")
	}
}

// TestDecideZeroRoute checks the zero configuration: everything named is
// denied, everything else allowed.
func TestDecideZeroRoute(t *testing.T) {
	r, err := Compile(nil, RouteConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []Request{
		{Method: "tools/call", Name: "x"},
		{Method: "prompts/get", Name: "x"},
		{Method: "resources/read", URI: "docs://x"},
	} {
		if d := r.Decide(req); d.Outcome != Deny || !strings.HasPrefix(d.RuleID, "default:") {
			t.Errorf("Decide(%s) = %v by %s", req.Method, d.Outcome, d.RuleID)
		}
	}
	if d := r.Decide(Request{Method: "ping"}); d.Outcome != Allow {
		t.Errorf("ping = %v", d.Outcome)
	}
}

// TestDecideNoAllocs guards the allocation-free paths: a simple tool and a
// resource prefix rule.
func TestDecideNoAllocs(t *testing.T) {
	r := testRoute(t)
	req := Request{Method: "tools/call", Name: "search", Grant: grant(t, "mcp:basic docs:read")}
	if n := testing.AllocsPerRun(100, func() { r.Decide(req) }); n > 0 {
		t.Errorf("Decide(simple tool) allocates %v times", n)
	}
	req = Request{Method: "resources/read", URI: "docs://public/a/b.md", Grant: grant(t, "mcp:basic")}
	if n := testing.AllocsPerRun(100, func() { r.Decide(req) }); n > 0 {
		t.Errorf("Decide(resource prefix) allocates %v times", n)
	}
}
