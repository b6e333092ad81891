package devauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpgate/mcpgate/internal/authn"
	"github.com/mcpgate/mcpgate/internal/egress"
)

// grantTokens obtains one access token for docsRes from every grant.
func grantTokens(t *testing.T, e *env) map[string]string {
	t.Helper()
	out := map[string]string{}

	body := e.codeTokens(t, publicApp, publicRedir, alice, map[string]string{"scope": "docs:read offline_access"})
	out["authorization_code"] = str(body, "access_token")

	status, rb := e.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {str(body, "refresh_token")},
		"client_id": {publicApp}, "resource": {docsRes}}, publicApp, "")
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, rb)
	}
	out["refresh_token"] = str(rb, "access_token")

	status, cb := e.clientCredentials(t, gatewayApp, docsRes, "docs:read")
	if status != http.StatusOK {
		t.Fatalf("client credentials: %d %v", status, cb)
	}
	out["client_credentials"] = str(cb, "access_token")

	// Exchange a mail token for a docs token.
	mail := e.codeTokens(t, publicApp, publicRedir, alice, map[string]string{"resource": mailRes, "scope": "mail:send docs:read"})
	status, xb := e.token(t, url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {str(mail, "access_token")},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "resource": {docsRes}, "scope": {"docs:read"}},
		gatewayApp, e.secrets[gatewayApp])
	if status != http.StatusOK {
		t.Fatalf("token exchange: %d %v", status, xb)
	}
	out["token_exchange"] = str(xb, "access_token")
	return out
}

// TestAccessTokenTypeAtJWT checks the RFC 9068 header and claims of the
// access token of every grant.
func TestAccessTokenTypeAtJWT(t *testing.T) {
	e := newEnv(t, nil)
	for grant, tok := range grantTokens(t, e) {
		t.Run(grant, func(t *testing.T) {
			h, c := jwtParts(t, tok)
			if diff := cmp.Diff(map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": e.srv.key.id}, h); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			for _, k := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"} {
				if _, ok := c[k]; !ok {
					t.Errorf("claim %s missing: %v", k, c)
				}
			}
			if c["iss"] != e.srv.Issuer() || c["aud"] != docsRes {
				t.Errorf("iss %v aud %v", c["iss"], c["aud"])
			}
		})
	}
}

// TestMcpgateAcceptsTokens proves that mcpgate's own validator, strict
// (ES256 pinned, at+jwt only), accepts an access token from each grant for
// the resource it was issued for, and refuses it for another.
func TestMcpgateAcceptsTokens(t *testing.T) {
	for _, path := range []string{"", "/idp/dev"} {
		t.Run("issuer path "+path, func(t *testing.T) { testMcpgateAcceptsTokens(t, path) })
	}
}

func testMcpgateAcceptsTokens(t *testing.T, issuerPath string) {
	e := newEnv(t, func(c *Config) { c.Issuer += issuerPath })
	hc, err := egress.New(egress.Config{AllowHTTPLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	a, err := authn.New(authn.Config{Issuers: []authn.IssuerConfig{{
		Issuer: e.srv.Issuer(), Algorithms: []string{"ES256"}, AllowLegacyJWTType: false, HTTP: hc,
	}}}, authn.Deps{Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	wantSub := map[string]string{"authorization_code": aliceSubject, "refresh_token": aliceSubject,
		"client_credentials": gatewayApp, "token_exchange": aliceSubject}
	wantScopes := map[string][]string{"authorization_code": {"docs:read", "offline_access"},
		"refresh_token": {"docs:read", "offline_access"}, "client_credentials": {"docs:read"}, "token_exchange": {"docs:read"}}
	for grant, tok := range grantTokens(t, e) {
		t.Run(grant, func(t *testing.T) {
			h := http.Header{"Authorization": {"Bearer " + tok}}
			id, err := a.Authenticate(context.Background(), authn.Request{Header: h, Resource: docsRes})
			if err != nil {
				t.Fatalf("docs: %v", err)
			}
			if id.Subject != wantSub[grant] || !cmp.Equal(id.Scopes, wantScopes[grant]) {
				t.Errorf("identity: sub %q scopes %v", id.Subject, id.Scopes)
			}
			if grant == "token_exchange" && !cmp.Equal(id.Actor, []string{gatewayApp}) {
				t.Errorf("actor chain %v, want [%s]", id.Actor, gatewayApp)
			}
			_, err = a.Authenticate(context.Background(), authn.Request{Header: h, Resource: mailRes})
			if !errors.Is(err, authn.ErrInvalidToken) {
				t.Fatalf("mail: %v, want invalid token (audience)", err)
			}
		})
	}
}
