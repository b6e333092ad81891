package policy_test

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mcpgate/mcpgate/internal/policy"
)

func Example() {
	h, err := policy.NewHierarchy(map[string][]string{"docs:write": {"docs:read"}})
	if err != nil {
		panic(err)
	}
	route, err := policy.Compile(h, policy.RouteConfig{
		RequiredScopes: []string{"mcp:basic"},
		Tools: map[string]policy.Rule{
			"search": {Scopes: []string{"docs:read"}},
			"get_document": {
				Scopes:    []string{"document:read:{project}"},
				Arguments: map[string]policy.ArgRule{"project": {Pattern: `^[a-z0-9-]{1,40}$`}},
			},
			"delete_repo": {Deny: true},
		},
	})
	if err != nil {
		panic(err)
	}
	g := h.Expand(strings.Fields("mcp:basic docs:write document:read:roadmap"))
	for _, req := range []policy.Request{
		{Method: "tools/call", Name: "search"},
		{Method: "tools/call", Name: "get_document", Arguments: map[string]json.RawMessage{"project": json.RawMessage(`"payroll"`)}},
		{Method: "tools/call", Name: "get_document", Arguments: map[string]json.RawMessage{"project": json.RawMessage(`"../etc"`)}},
		{Method: "tools/call", Name: "delete_repo"},
		{Method: "tools/call", Name: "unlisted"},
	} {
		req.Grant = g
		d := route.Decide(req)
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%s %s %v %s", d.Outcome, d.RuleID, d.Required, d.Reason)))
	}
	// Output:
	// allow tool:search [docs:read mcp:basic]
	// insufficient_scope tool:get_document [document:read:payroll mcp:basic] tool "get_document" requires scopes "document:read:payroll mcp:basic" (missing "document:read:payroll")
	// deny tool:get_document [] tool "get_document": argument "project" value "../etc" must match ^[a-z0-9-]{1,40}$
	// deny tool:delete_repo [] tool "delete_repo" is not available through this gateway
	// deny default:tool [] tool "unlisted" is not allowed by this gateway's policy
}
