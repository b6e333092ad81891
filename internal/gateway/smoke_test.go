package gateway

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestGoSDKClientEndToEnd(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts harnessOptions
	}{
		{"stateful SSE", harnessOptions{}},
		{"stateful JSON", harnessOptions{jsonResponse: true}},
		{"stateless", harnessOptions{stateless: true}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, mode.opts)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			tok := h.token("docs", "docs:read document:read:roadmap")
			cs, err := h.client(ctx, "docs", tok)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer cs.Close()

			tools, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatalf("list tools: %v", err)
			}
			var names []string
			for _, tl := range tools.Tools {
				names = append(names, tl.Name)
			}
			slices.Sort(names)
			if got, want := strings.Join(names, ","), "read_document,search,whoami"; got != want {
				t.Errorf("tools/list = %s, want %s (filtered to what the token may use)", got, want)
			}

			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "search", Arguments: map[string]any{"text": "q"}})
			if err != nil || res.IsError {
				t.Fatalf("search: %v %+v", err, res)
			}
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_document", Arguments: map[string]any{"project": "roadmap"}})
			if err != nil || res.IsError {
				t.Fatalf("read_document(roadmap): %v %+v", err, res)
			}
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{"text": ""}})
			if err != nil || res.IsError {
				t.Fatalf("whoami: %v", err)
			}
			if txt := res.Content[0].(*mcp.TextContent).Text; strings.Contains(strings.ToLower(txt), "authorization") {
				t.Errorf("upstream saw an Authorization header:\n%s", txt)
			}
			for _, tc := range []struct {
				tool string
				args map[string]any
				want string
			}{
				{"delete_everything", map[string]any{"text": "x"}, "denied by gateway policy"},
				{"unlisted", map[string]any{"text": "x"}, "denied by gateway policy"},
				{"read_document", map[string]any{"project": "../etc"}, "denied by gateway policy"},
			} {
				_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: err = %v, want %q", tc.tool, err, tc.want)
				}
			}
			h.assertNoTokenLeak(tok)
		})
	}
}
