package devauth

import (
	"net/http"
	"net/url"
	"testing"
)

// TestSweepForgetsExpiredRecords: memory is bounded by the lifetimes.
func TestSweepForgetsExpiredRecords(t *testing.T) {
	e := newEnv(t, nil)
	tokens := e.codeTokens(t, webApp, webRedir, alice, map[string]string{"scope": "docs:read offline_access"})
	e.clientCredentials(t, gatewayApp, docsRes, "docs:read")
	e.post(t, "/revoke", url.Values{"token": {str(tokens, "refresh_token")}}, webApp, e.secrets[webApp])
	_, c := pkce()
	e.code(t, e.authURL(publicApp, publicRedir, c, nil), alice) // a code never redeemed

	e.clock.advance(DefaultRefreshTokenTTL + DefaultAccessTokenTTL + 2*AuthRequestTTL)
	if status, body := e.clientCredentials(t, gatewayApp, docsRes, "docs:read"); status != http.StatusOK {
		t.Fatalf("client credentials: %d %v", status, body)
	}
	st := e.srv.store
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.authReqs) != 0 || len(st.codes) != 0 || len(st.refresh) != 0 || len(st.revoked) != 0 || len(st.access) != 1 {
		t.Errorf("after sweep: %d auth requests, %d codes, %d refresh, %d revoked grants, %d access (want 0 0 0 0 1)",
			len(st.authReqs), len(st.codes), len(st.refresh), len(st.revoked), len(st.access))
	}
}
