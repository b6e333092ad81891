package authn

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestChallengeString(t *testing.T) {
	const md = "https://gw.example.com/.well-known/oauth-protected-resource/servers/docs/mcp"
	for _, tt := range []struct {
		name string
		c    Challenge
		want string
	}{
		{"bare", Challenge{}, "Bearer"},
		{"no token", Challenge{ResourceMetadata: md, Scopes: []string{"docs:read", "docs:write"}},
			`Bearer resource_metadata="` + md + `", scope="docs:read docs:write"`},
		{"invalid token", Challenge{ResourceMetadata: md, Scopes: []string{"docs:read"}, Error: CodeInvalidToken, Description: "token expired"},
			`Bearer resource_metadata="` + md + `", scope="docs:read", error="invalid_token", error_description="token expired"`},
		{"description sanitized", Challenge{Error: CodeInvalidToken, Description: "bad \"x\" \\ é\r\nInjected: 1"},
			`Bearer error="invalid_token", error_description="bad 'x' / ????Injected: 1"`},
		{"bad scopes dropped", Challenge{Scopes: []string{"ok", `a"b`, "c d", "", "é"}}, `Bearer scope="ok"`},
		{"bad error code dropped", Challenge{Error: "x\"y"}, `Bearer`},
		{"metadata url escaped", Challenge{ResourceMetadata: "https://x/\"a\\b\r\n"}, `Bearer resource_metadata="https://x/\"a\\b"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.String(); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	long := Challenge{Description: strings.Repeat("a", 1000)}.String()
	if len(long) > 300 {
		t.Fatalf("description not capped: %d bytes", len(long))
	}
}

func TestChallengeFor(t *testing.T) {
	md := "https://gw/.well-known/oauth-protected-resource/mcp"
	if got := ChallengeFor(reject(ReasonMissing, nil), md, []string{"a"}).String(); got != `Bearer resource_metadata="`+md+`", scope="a"` {
		t.Fatalf("no token: %s", got)
	}
	got := ChallengeFor(reject(ReasonExpired, nil), md, nil).String()
	if want := `Bearer resource_metadata="` + md + `", error="invalid_token", error_description="token expired"`; got != want {
		t.Fatalf("got %s", got)
	}
}

func TestMetadataURL(t *testing.T) {
	for _, tt := range []struct{ resource, want string }{
		{"https://gw.example.com/servers/docs/mcp", "https://gw.example.com/.well-known/oauth-protected-resource/servers/docs/mcp"},
		{"https://gw.example.com", "https://gw.example.com/.well-known/oauth-protected-resource"},
		{"https://gw.example.com/", "https://gw.example.com/.well-known/oauth-protected-resource"},
		{"https://gw.example.com:8443/mcp/", "https://gw.example.com:8443/.well-known/oauth-protected-resource/mcp/"},
		{"https://gw.example.com/a%20b?x=1", "https://gw.example.com/.well-known/oauth-protected-resource/a%20b?x=1"},
		{"http://localhost:8080/mcp", "http://localhost:8080/.well-known/oauth-protected-resource/mcp"},
	} {
		got, err := MetadataURL(tt.resource)
		if err != nil || got != tt.want {
			t.Errorf("MetadataURL(%q) = %q, %v; want %q", tt.resource, got, err, tt.want)
		}
	}
	for _, bad := range []string{"gw.example.com/mcp", "/mcp", "ftp://gw/mcp", "https://gw/mcp#frag", "https://u:p@gw/mcp", "https:///mcp", "::"} {
		if got, err := MetadataURL(bad); err == nil {
			t.Errorf("MetadataURL(%q) = %q, want error", bad, got)
		}
	}
}

func TestMetadataHandler(t *testing.T) {
	h := MetadataHandler(ResourceMetadata{
		Resource:             "https://gw.example.com/servers/docs/mcp?a=1&b=2",
		AuthorizationServers: []string{"https://as.example.com"},
		ResourceName:         "Docs",
		ScopesSupported:      []string{}, // empty: must be omitted
	})
	get := func(method string) *http.Response {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, "/.well-known/oauth-protected-resource/servers/docs/mcp", nil)
		req.Header.Set("Origin", "https://app.example.com")
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	resp := get(http.MethodGet)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("GET: %d %v", resp.StatusCode, resp.Header)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"resource":                 "https://gw.example.com/servers/docs/mcp?a=1&b=2",
		"authorization_servers":    []any{"https://as.example.com"},
		"resource_name":            "Docs",
		"bearer_methods_supported": []any{"header"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("document (-want +got):\n%s", diff)
	}
	if strings.Contains(string(body), `\u0026`) {
		t.Fatal("HTML-escaped resource")
	}
	if resp := get(http.MethodHead); resp.StatusCode != 200 || resp.Header.Get("Content-Length") != "" && resp.ContentLength != int64(len(body)) {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
	if resp := get(http.MethodOptions); resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Methods") == "" {
		t.Fatalf("OPTIONS: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := get(http.MethodPost); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}
