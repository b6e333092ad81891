package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
)

// TestExchangeFailuresFailClosed puts a fault-injecting token endpoint
// behind an exchange route: a refusal denies the call with the OAuth error
// code (never the server's description), a failure answers 503, and in
// neither case is the upstream called.
func TestExchangeFailuresFailClosed(t *testing.T) {
	var status atomic.Int32
	var calls atomic.Int32
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		switch s := int(status.Load()); s {
		case http.StatusOK:
			io.WriteString(w, `{"access_token":"exchanged-`+randomAlnum(24)+`","token_type":"Bearer","expires_in":300,"issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}`)
		case http.StatusCreated: // a broken server that hands the subject token back
			_ = r.ParseForm()
			io.WriteString(w, `{"access_token":"`+r.Form.Get("subject_token")+`","token_type":"Bearer","expires_in":300}`)
		case http.StatusBadRequest:
			w.WriteHeader(s)
			io.WriteString(w, `{"error":"invalid_target","error_description":"echo of your input: <script>"}`)
		default:
			w.WriteHeader(s)
			io.WriteString(w, `upstream trouble`)
		}
	}))
	defer as.Close()
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("gw-secret-"+randomAlnum(16)), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{configure: func(c *config.Config) {
		c.Routes[0].Credentials = config.RouteCredentials{Mode: "exchange", TokenEndpoint: as.URL + "/token",
			ClientID: "mcpgate", ClientSecretFile: secretFile}
	}})
	var tokens []string
	// Exchanged tokens are cached per user: each case is another user.
	fresh := func() string {
		tok := h.mint("docs", "user-"+randomAlnum(8), "agent-1", "docs:read")
		tokens = append(tokens, tok)
		return tok
	}
	for _, tc := range []struct {
		name       string
		asStatus   int
		wantStatus int
		wantCode   int
		wantMsg    string
		reason     string
	}{
		{"refused", http.StatusBadRequest, http.StatusOK, codeDenied, "invalid_target", "credential_denied"},
		{"server error", http.StatusInternalServerError, http.StatusServiceUnavailable, codeUnavailable, "try again later", "credential_unavailable"},
		{"subject token handed back", http.StatusCreated, http.StatusServiceUnavailable, codeUnavailable, "try again later", "credential_unavailable"},
		{"ok", http.StatusOK, http.StatusOK, 0, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status.Store(int32(tc.asStatus))
			before := h.up["docs"].count()
			resp := h.do(rawReq{token: fresh()})
			if resp.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.status, tc.wantStatus, resp.body)
			}
			if tc.wantCode == 0 {
				reqs := h.up["docs"].requests()[before:]
				if len(reqs) != 1 || !strings.HasPrefix(reqs[0].Header.Get("Authorization"), "Bearer exchanged-") {
					t.Fatalf("the upstream did not receive the exchanged token")
				}
				return
			}
			if h.up["docs"].count() != before {
				t.Fatal("the upstream was called although no credential could be obtained")
			}
			m := resp.rpc(t)
			if m.Error == nil || m.Error.Code != tc.wantCode || !strings.Contains(m.Error.Message, tc.wantMsg) {
				t.Fatalf("answer %s: want code %d mentioning %q", resp.body, tc.wantCode, tc.wantMsg)
			}
			if strings.Contains(string(resp.body), "<script>") || strings.Contains(string(resp.body), "upstream trouble") {
				t.Errorf("the authorization server's own text reached the client: %s", resp.body)
			}
			if tc.asStatus == http.StatusCreated && !strings.Contains(h.logs.String(), "is the client's own token") {
				t.Errorf("refused for another reason than the handed-back token")
			}
			ev := h.recordsOf(t, resp.requestID(), 1)[0]
			if ev.Reason != tc.reason || (tc.wantCode == codeDenied) != (ev.Decision == audit.Deny) {
				t.Errorf("audit %s/%s, want reason %s", ev.Decision, ev.Reason, tc.reason)
			}
		})
	}
	// The breaker: after repeated failures the endpoint is not called at
	// all until it half-opens.
	status.Store(http.StatusBadGateway)
	for range 6 {
		h.do(rawReq{token: fresh()})
	}
	n := calls.Load()
	resp := h.do(rawReq{token: fresh()})
	if calls.Load() != n {
		t.Errorf("the token endpoint was called with the circuit open")
	}
	if m := resp.rpc(t); resp.status != http.StatusServiceUnavailable || m.Error == nil || !strings.Contains(m.Error.Message, "circuit open") {
		t.Errorf("with the circuit open: %d %s", resp.status, resp.body)
	}
	// The calls are measured: the server errors counted, refusals not.
	srv := httptest.NewServer(h.gw.AdminHandler())
	defer srv.Close()
	mr, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	if !strings.Contains(string(mb), `mcpgate_authorization_server_errors_total{call="token_exchange",issuer="`+h.iss.URL()+`"}`) ||
		!strings.Contains(string(mb), `mcpgate_authorization_server_request_duration_seconds_count{call="token_exchange"`) {
		t.Error("token exchange calls are not in the metrics")
	}
	// The client's tokens went to the token endpoint (as subject_token)
	// and nowhere else.
	for _, tok := range tokens {
		for _, r := range h.up["docs"].requests() {
			if strings.Contains(r.Header.Get("Authorization"), tok) || strings.Contains(string(r.Body), tok) {
				t.Fatal("the upstream received the client's token")
			}
		}
		if strings.Contains(h.logs.String(), tok) {
			t.Fatal("the client's token is in the logs")
		}
	}
}
