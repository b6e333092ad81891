package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/config"
)

// TestAdminAPIAuth: probes need no credential; the admin API needs the
// bearer secret (compared exactly) and refuses everything when no
// credential is configured.
func TestAdminAPIAuth(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "admin")
	secretValue := "admin-" + randomAlnum(24)
	if err := os.WriteFile(secretFile, []byte(secretValue+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withSecret := newHarness(t, harnessOptions{configure: func(c *config.Config) { c.Admin.BearerTokenFile = secretFile }})
	without := newHarness(t, harnessOptions{})
	profiling := newHarness(t, harnessOptions{configure: func(c *config.Config) {
		c.Admin.BearerTokenFile = secretFile
		c.Admin.Profiling = true
	}})
	for _, tc := range []struct {
		name   string
		h      *harness
		path   string
		bearer string
		want   int
	}{
		{"healthz without credential", withSecret, "/healthz", "", 200},
		{"status with the secret", withSecret, "/admin/status", secretValue, 200},
		{"status without credential", withSecret, "/admin/status", "", 401},
		{"status with a wrong secret", withSecret, "/admin/status", secretValue + "x", 401},
		{"status with a prefix of the secret", withSecret, "/admin/status", secretValue[:10], 401},
		{"no credential configured", without, "/admin/status", "anything-at-all-here", 403},
		{"MCP endpoints are not on the admin listener", withSecret, "/servers/docs/mcp", secretValue, 404},
		{"profiles are off by default", withSecret, "/debug/pprof/heap", secretValue, 404},
		{"profiles with the secret", profiling, "/debug/pprof/heap", secretValue, 200},
		{"profile index with the secret", profiling, "/debug/pprof/", secretValue, 200},
		{"profiles without credential", profiling, "/debug/pprof/heap", "", 401},
		{"goroutine dump without credential", profiling, "/debug/pprof/goroutine?debug=2", "", 401},
		{"profiles with a wrong secret", profiling, "/debug/pprof/cmdline", secretValue + "x", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.h.gw.AdminHandler())
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			if tc.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tc.bearer)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if strings.Contains(withSecret.logs.String(), secretValue) {
		t.Error("the admin secret appears in the logs")
	}
}

// TestAdminReadiness: /readyz is 503 until the issuers' keys are loaded.
func TestAdminReadiness(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: func(c *config.Config) {
		c.AuthorizationServers[0].Issuer = "http://127.0.0.1:1" // nothing listens there
		c.Routes[0].AuthorizationServers, c.Routes[1].AuthorizationServers = nil, nil
	}})
	srv := httptest.NewServer(h.gw.AdminHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with no keys loaded: %d, want 503", resp.StatusCode)
	}
}

// TestAdminMetrics: /metrics on the admin listener counts requests by
// route, method and decision, token failures by reason, redactions and
// audit records, and carries no subject, client or token.
func TestAdminMetrics(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tok := h.token("docs", "docs:read")
	h.do(rawReq{token: tok})                                                                   // allowed
	h.do(rawReq{})                                                                             // no token
	h.do(rawReq{token: tok, body: toolsCall(8, "delete_everything", `{}`)})                    // denied
	h.do(rawReq{token: tok, body: toolsCall(9, "search", `{"text":"`+fakeGitHubToken()+`"}`)}) // redacted
	srv := httptest.NewServer(h.gw.AdminHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	for _, want := range []string{
		`mcpgate_requests_total{decision="allow",method="tools/call",route="docs"} 2`,
		`mcpgate_requests_total{decision="deny",method="tools/call",route="docs"} 1`,
		`mcpgate_token_validation_failures_total{reason="missing"} 1`,
		`mcpgate_policy_denials_total{route="docs",rule="tool:delete_everything"} 1`,
		`mcpgate_redactions_total{action="redact",detector="github",route="docs",where="request"} 1`,
		`mcpgate_audit_records_total`,
		`mcpgate_upstream_request_duration_seconds_count{route="docs"} 2`,
		`mcpgate_authorization_server_request_duration_seconds_count{call="jwks",issuer="` + h.iss.URL() + `"} 1`,
		`mcpgate_jwks_key_age_seconds{issuer="` + h.iss.URL() + `"}`,
		`mcpgate_circuit_breaker_state{kind="authorization_server",name="` + h.iss.URL() + `"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, never := range []string{"alice", "agent-1", tok} {
		if strings.Contains(body, never) {
			t.Errorf("/metrics carries %q", never)
		}
	}
}
