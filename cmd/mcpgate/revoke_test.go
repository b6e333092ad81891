package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/mcpgate/mcpgate/internal/testissuer"
)

// TestRevokeCLI revokes a token with `mcpgate revoke` against a running
// gateway's admin API: the very next request with it is refused.
func TestRevokeCLI(t *testing.T) {
	iss := testissuer.New(t, testissuer.Options{})
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "admin")
	if err := os.WriteFile(tokFile, []byte("admin-secret-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`))
	}))
	defer up.Close()
	front := httptest.NewUnstartedServer(nil)
	base := "http://" + front.Listener.Addr().String()
	cfg := &config.Config{
		Server:               config.Server{PublicBaseURL: base, Listen: "127.0.0.1:0"},
		AuthorizationServers: []config.AuthorizationServer{{Issuer: iss.URL()}},
		Routes: []config.Route{{Name: "docs", Path: "/servers/docs/mcp", Upstream: config.Upstream{URL: up.URL},
			Tools: map[string]config.ItemRule{"search": {}}}},
		Admin:       config.Admin{BearerTokenFile: tokFile},
		Limits:      config.Limits{RatePerIP: config.Rate{RequestsPerSecond: -1}},
		Development: config.Development{InsecureAllowHTTPLoopback: true},
	}
	cfg.ApplyDefaults()
	g, err := gateway.New(cfg, gateway.Deps{Audit: audit.NewWriter(&bytes.Buffer{})})
	if err != nil {
		t.Fatal(err)
	}
	front.Config.Handler = g
	front.Start()
	defer front.Close()
	adm := httptest.NewServer(g.AdminHandler())
	defer adm.Close()

	c := testissuer.Claims{Subject: "alice", ClientID: "agent", Audience: []string{base + "/servers/docs/mcp"}, JTI: "jti-cli"}
	tok := iss.Mint(c)
	call := func() int {
		req, _ := http.NewRequest(http.MethodPost, base+"/servers/docs/mcp",
			strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := call(); s != http.StatusOK {
		t.Fatalf("before: %d", s)
	}
	runCLI := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"revoke"}, args...), &out, &errb)
		return code, out.String() + errb.String()
	}
	common := []string{"--admin", adm.URL, "--token-file", tokFile}
	if code, out := runCLI(append([]string{"jti", "jti-cli", "--issuer", iss.URL(), "--reason", "test"}, common...)...); code != 0 {
		t.Fatalf("revoke: %d %s", code, out)
	}
	if s := call(); s != http.StatusUnauthorized {
		t.Fatalf("after revoke: %d, want 401", s)
	}
	if code, out := runCLI(append([]string{"list"}, common...)...); code != 0 || !strings.Contains(out, "jti-cli") {
		t.Fatalf("list: %d %s", code, out)
	}
	if code, out := runCLI(append([]string{"remove", "jti", "jti-cli", "--issuer", iss.URL()}, common...)...); code != 0 {
		t.Fatalf("remove: %d %s", code, out)
	}
	if s := call(); s != http.StatusOK {
		t.Fatalf("after remove: %d", s)
	}
	for _, bad := range [][]string{
		{"jti", "x"}, // no --issuer
		{"everyone", "x", "--issuer", iss.URL()},
		{"jti", "x", "--issuer", iss.URL(), "--bogus", "1"},
	} {
		if code, _ := runCLI(append(bad, common...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	wrong := filepath.Join(dir, "wrong")
	os.WriteFile(wrong, []byte("not-the-admin-secret-000"), 0o600)
	if code, out := runCLI("list", "--admin", adm.URL, "--token-file", wrong); code != 1 || !strings.Contains(out, "401") {
		t.Errorf("wrong secret: %d %s", code, out)
	}
}
