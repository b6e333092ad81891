package authn

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestConfiguredClaimNames: an issuer's ClientIDClaims and ScopeClaims say
// where the client id and scopes are read from (Okta's cid, Entra ID's
// appid and roles); claims it does not name are ignored.
func TestConfiguredClaimNames(t *testing.T) {
	for _, tt := range []struct {
		name       string
		clientIDs  []string
		scopes     []string
		extra      map[string]any
		wantClient string
		wantScopes []string
	}{
		{"default reads client_id", nil, nil, map[string]any{"client_id": "c1", "cid": "c2"}, "c1", nil},
		{"cid configured", []string{"cid"}, nil, map[string]any{"client_id": nil, "cid": "okta-app"}, "okta-app", nil},
		{"first present wins", []string{"azp", "appid"}, nil, map[string]any{"client_id": nil, "appid": "guid-1", "azp": "guid-2"}, "guid-2", nil},
		{"roles configured", nil, []string{"scp", "roles"}, map[string]any{"roles": []string{"Mail.Send"}}, "agent", []string{"Mail.Send"}},
		{"scp preferred over roles", nil, []string{"scp", "roles"}, map[string]any{"scp": "a", "roles": []string{"b"}}, "agent", []string{"a"}},
		{"roles ignored by default", nil, nil, map[string]any{"roles": []string{"Mail.Send"}}, "agent", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOpts{cfg: func(ic *IssuerConfig) { ic.ClientIDClaims, ic.ScopeClaims = tt.clientIDs, tt.scopes }})
			c := e.claims()
			c.ClientID, c.Scope, c.Extra = "agent", "", tt.extra
			id := e.mustAuth(e.iss.Mint(c))
			if id.ClientID != tt.wantClient {
				t.Errorf("client id = %q, want %q", id.ClientID, tt.wantClient)
			}
			if diff := cmp.Diff(tt.wantScopes, id.Scopes); diff != "" {
				t.Errorf("scopes (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := New(Config{Issuers: []IssuerConfig{{Issuer: "https://as", HTTP: newEnv(t, envOpts{}).a.issuers[0].http,
		ClientIDClaims: []string{"email"}, ScopeClaims: []string{"groups"}}}}, Deps{}); err == nil {
		t.Error("unsupported claim names accepted")
	}
}

// TestRefusedClaimShapes: a token naming no client (RFC 9068 requires one;
// sessions are bound to it) and a token with the marks of an ID token are
// refused whatever their header says.
func TestRefusedClaimShapes(t *testing.T) {
	for _, tt := range []struct {
		name   string
		extra  map[string]any
		noCID  bool
		reason string
	}{
		{"no client id", nil, true, ReasonNoClientID},
		{"client id only in cid, not configured", map[string]any{"cid": "okta-app"}, true, ReasonNoClientID},
		{"at_hash", map[string]any{"at_hash": "x"}, false, ReasonIDToken},
		{"c_hash", map[string]any{"c_hash": "x"}, false, ReasonIDToken},
		{"Keycloak ID token typ claim", map[string]any{"typ": "ID"}, false, ReasonIDToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			c := e.claims()
			c.Extra, c.NoClientID = tt.extra, tt.noCID
			tok := e.iss.Mint(c)
			_, err := e.auth(tok)
			wantReject(t, err, http.StatusUnauthorized, CodeInvalidToken, tt.reason, tok)
		})
	}
	// Keycloak's access tokens carry typ "Bearer" in their claims: accepted.
	e := newEnv(t, envOpts{})
	c := e.claims()
	c.Extra = map[string]any{"typ": "Bearer"}
	e.mustAuth(e.iss.Mint(c))
}

// TestExtraAudiences: a route's extra audiences are accepted exactly, and
// only on the route that lists them.
func TestExtraAudiences(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.claims()
	c.Audience = []string{"00000000-1111-2222-3333-444444444444"}
	tok := e.iss.Mint(c)
	for _, tt := range []struct {
		name  string
		extra []string
		ok    bool
	}{
		{"listed", []string{"00000000-1111-2222-3333-444444444444"}, true},
		{"not listed", nil, false},
		{"case differs", []string{"00000000-1111-2222-3333-444444444444/"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.a.Authenticate(context.Background(), Request{Header: bearer(tok), Resource: resource, Audiences: tt.extra})
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestInsecureSkipAudienceCheck: the test-only switch really does turn the
// audience check off (and only that check).
func TestInsecureSkipAudienceCheck(t *testing.T) {
	e := newEnv(t, envOpts{})
	a, err := New(Config{Issuers: []IssuerConfig{{Issuer: e.iss.URL(), Algorithms: []string{"RS256"}, HTTP: e.a.issuers[0].http}}},
		Deps{Now: e.clk.Now, InsecureSkipAudienceCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	c := e.claims()
	c.Audience = []string{"https://elsewhere.example/mcp"}
	tok := e.iss.Mint(c)
	if _, err := a.Authenticate(context.Background(), Request{Header: bearer(tok), Resource: resource}); err != nil {
		t.Fatalf("with the check off: %v", err)
	}
	if _, err := e.a.Authenticate(context.Background(), Request{Header: bearer(tok), Resource: resource}); err == nil {
		t.Fatal("the default authenticator accepted a wrong audience")
	}
	c.Expiry = e.clk.Now().Add(-10 * time.Minute)
	if _, err := a.Authenticate(context.Background(), Request{Header: http.Header{"Authorization": {"Bearer " + e.iss.Mint(c)}}, Resource: resource}); err == nil {
		t.Fatal("the switch disabled more than the audience check")
	}
}
