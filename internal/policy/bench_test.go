package policy

import (
	"fmt"
	"testing"
)

func BenchmarkDecideSimpleTool(b *testing.B) {
	r := testRoute(b)
	req := Request{Method: "tools/call", Name: "search", Grant: grant(b, "mcp:basic docs:read")}
	b.ReportAllocs()
	for b.Loop() {
		if d := r.Decide(req); d.Outcome != Allow {
			b.Fatal(d.Reason)
		}
	}
}

func BenchmarkDecideTemplatedTool(b *testing.B) {
	r := testRoute(b)
	req := Request{
		Method:    "tools/call",
		Name:      "get_document",
		Arguments: args("project", `"q3-roadmap"`, "page", `3`),
		Grant:     grant(b, "mcp:basic docs:read document:read:q3-roadmap"),
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := r.Decide(req); d.Outcome != Allow {
			b.Fatal(d.Reason)
		}
	}
}

func BenchmarkDecideResourcePrefix(b *testing.B) {
	r := testRoute(b)
	req := Request{Method: "resources/read", URI: "docs://public/guides/getting-started.md", Grant: grant(b, "mcp:basic")}
	b.ReportAllocs()
	for b.Loop() {
		if d := r.Decide(req); d.Outcome != Allow || d.RuleID != "resource:3" {
			b.Fatal(d.Reason)
		}
	}
}

func BenchmarkExpand20(b *testing.B) {
	implies := map[string][]string{}
	var granted []string
	for i := range 20 {
		s := fmt.Sprintf("svc%02d:write", i)
		implies[s] = []string{fmt.Sprintf("svc%02d:read", i)}
		implies[fmt.Sprintf("svc%02d:read", i)] = []string{fmt.Sprintf("svc%02d:list", i)}
		granted = append(granted, s)
	}
	h, err := NewHierarchy(implies)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if g := h.Expand(granted); !g.Has("svc07:list") {
			b.Fatal("expansion lost a scope")
		}
	}
}

// BenchmarkFilter500 filters a 500-tool go-sdk-shaped tools/list result in
// which 100 tools are removed (unlisted under a default deny) and 50 are
// checked against a templated scope.
func BenchmarkFilter500(b *testing.B) {
	project := map[string]ArgRule{"project": projectRule}
	rc := RouteConfig{RequiredScopes: []string{"mcp:basic"}, Tools: map[string]Rule{}}
	items := make([]string, 500)
	for i := range items {
		name := fmt.Sprintf("tool_%03d", i)
		items[i] = sdkTool(name)
		switch {
		case i%5 == 4: // unlisted
		case i%10 == 0:
			rc.Tools[name] = Rule{Scopes: []string{"docs:read", "document:read:{project}"}, Arguments: project}
		default:
			rc.Tools[name] = Rule{Scopes: []string{"docs:read"}}
		}
	}
	r, err := Compile(testHierarchy(b), rc)
	if err != nil {
		b.Fatal(err)
	}
	in := []byte(sdkResult("tools", items...))
	g := grant(b, "mcp:basic docs:write document:read:roadmap")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		_, removed, err := r.Filter("tools/list", in, g)
		if err != nil || removed != 100 {
			b.Fatal(removed, err)
		}
	}
}
