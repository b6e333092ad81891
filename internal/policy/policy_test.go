package policy

import (
	"strings"
	"testing"
)

// project is the argument rule used throughout the tests.
var projectRule = ArgRule{Pattern: `^[a-z0-9-]{1,40}$`}

func testHierarchy(t testing.TB) *Hierarchy {
	t.Helper()
	h, err := NewHierarchy(map[string][]string{
		"docs:admin": {"docs:write"},
		"docs:write": {"docs:read"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func testConfig() RouteConfig {
	project := map[string]ArgRule{"project": projectRule}
	return RouteConfig{
		RequiredScopes: []string{"mcp:basic"},
		Tools: map[string]Rule{
			"search":         {Scopes: []string{"docs:read"}},
			"get_document":   {Scopes: []string{"docs:read", "document:read:{project}"}, Arguments: project},
			"write_document": {Scopes: []string{"docs:write", "document:write:{project}"}, Arguments: project},
			"delete_repo":    {Deny: true},
			"echo":           {},
		},
		Prompts: map[string]Rule{
			"summarize":     {Scopes: []string{"docs:read"}},
			"project_brief": {Scopes: []string{"document:read:{project}"}, Arguments: project},
			"forbidden":     {Deny: true},
		},
		Resources: []ResourceRule{
			{URI: "docs://secret/*", Deny: true},
			{URI: "docs://readme", Scopes: []string{"docs:read"}},
			{URI: "docs://projects/{project}/readme", Scopes: []string{"document:read:{project}"}, Arguments: project},
			{URI: "docs://public/*"},
		},
		DefaultPrompt: Default{Allow: true, Scopes: []string{"prompts:any"}},
	}
}

func testRoute(t testing.TB) *Route {
	t.Helper()
	r, err := Compile(testHierarchy(t), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func grant(t testing.TB, scopes string) Grant {
	t.Helper()
	return testHierarchy(t).Expand(strings.Fields(scopes))
}
