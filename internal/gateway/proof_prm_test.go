package gateway

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mcpgate/mcpgate/internal/config"
)

type prmDoc struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

// TestProofProtectedResourceMetadata: RFC 9728 metadata per route at its
// path-inserted well-known URL, at the root only with exactly one route.
func TestProofProtectedResourceMetadata(t *testing.T) {
	h := newHarness(t, harnessOptions{stateless: true})
	get := func(h *harness, path string) *rawResp {
		return h.do(rawReq{method: http.MethodGet, version: "-", path: path})
	}
	for _, tc := range []struct {
		route, path string
		want        prmDoc
	}{
		{"docs", "/.well-known/oauth-protected-resource/servers/docs/mcp", prmDoc{Resource: h.url("docs"),
			AuthorizationServers: []string{h.iss.URL()}, ScopesSupported: []string{"docs:read"},
			BearerMethodsSupported: []string{"header"}, ResourceName: "Docs"}},
		{"mail", "/.well-known/oauth-protected-resource/servers/mail/mcp", prmDoc{Resource: h.url("mail"),
			AuthorizationServers: []string{h.iss.URL()}, ScopesSupported: []string{"mail:read"},
			BearerMethodsSupported: []string{"header"}}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp := get(h, tc.path)
			if resp.status != 200 {
				t.Fatalf("status %d", resp.status)
			}
			if ct := resp.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if got := resp.header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
			}
			var got prmDoc
			if err := json.Unmarshal(resp.body, &got); err != nil {
				t.Fatalf("body %s: %v", resp.body, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
			// The route's challenge points here.
			ch, _ := parseBearerChallenge(h.do(rawReq{route: tc.route}).header.Get("WWW-Authenticate"))
			if want := h.srv.URL + tc.path; ch["resource_metadata"] != want {
				t.Errorf("the route's challenge names %q, want %q", ch["resource_metadata"], want)
			}
		})
	}
	for _, path := range []string{
		"/.well-known/oauth-protected-resource", // two routes: no root document
		"/.well-known/oauth-protected-resource/servers/nope/mcp",
		"/.well-known/oauth-protected-resource/servers/docs/mcp/extra",
		"/servers/docs/mcp/",
		"/servers/nope/mcp",
		"/",
	} {
		t.Run("404 "+path, func(t *testing.T) {
			if resp := get(h, path); resp.status != http.StatusNotFound {
				t.Errorf("status %d, want 404", resp.status)
			}
		})
	}
	if n := h.upstreamCounts(); n["docs"]+n["mail"] != 0 {
		t.Errorf("metadata requests reached an upstream: %v", n)
	}

	// With exactly one route, the root well-known serves its document.
	one := newHarness(t, harnessOptions{stateless: true, configure: func(c *config.Config) { c.Routes = c.Routes[:1] }})
	resp := get(one, "/.well-known/oauth-protected-resource")
	var got prmDoc
	if resp.status != 200 || json.Unmarshal(resp.body, &got) != nil || got.Resource != one.url("docs") {
		t.Errorf("root metadata with one route: %d %s", resp.status, resp.body)
	}
}
