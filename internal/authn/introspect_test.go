package authn

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/egress"
	ti "github.com/mcpgate/mcpgate/internal/testissuer"
)

// introEnv is an env whose issuer also introspects opaque tokens, with the
// endpoint found through discovery.
func introEnv(t *testing.T, mod func(*IntrospectionConfig)) *env {
	t.Helper()
	return newEnv(t, envOpts{
		issuer: ti.Options{ClientID: "gw client", ClientSecret: "s3cr:et+/"}, // needs form-encoding in Basic
		egress: func(c *egress.Config) { c.Timeout = 200 * time.Millisecond },
		cfg: func(c *IssuerConfig) {
			c.Introspection = &IntrospectionConfig{ClientID: "gw client", ClientSecret: []byte("s3cr:et+/")}
			if mod != nil {
				mod(c.Introspection)
			}
		},
	})
}

func TestIntrospection(t *testing.T) {
	e := introEnv(t, nil)
	now := e.clk.Now()
	c := e.claims()
	c.Actor = []string{"svc"}
	tok := e.iss.MintOpaque(c)
	id := e.mustAuth(tok)
	if !id.Introspected || id.Subject != "alice" || id.ClientID != "client-1" || id.Issuer != e.iss.URL() ||
		len(id.Scopes) != 1 || id.Scopes[0] != "docs:read" || len(id.Actor) != 1 || id.Expiry.Before(now) {
		t.Fatalf("identity %+v", id)
	}
	noTokenBytes(t, tok, id.Fingerprint)
	// Cached: no second introspection call.
	e.mustAuth(tok)
	if n := e.iss.IntrospectionRequests(); n != 1 {
		t.Fatalf("%d introspection requests, want 1", n)
	}
	// JWTs still work for the same issuer.
	e.mustAuth(e.mint())
}

func TestIntrospectionRejects(t *testing.T) {
	s401, s503 := http.StatusUnauthorized, http.StatusServiceUnavailable
	inv := CodeInvalidToken
	for _, tt := range []struct {
		name   string
		mod    func(*IntrospectionConfig)
		tok    func(e *env) string
		setup  func(e *env)
		route  func(r *Request)
		status int
		code   string
		reason string
	}{
		{name: "unknown token", tok: func(*env) string { return "opq_unknown" }, status: s401, code: inv, reason: ReasonInactive},
		{name: "revoked", tok: func(e *env) string {
			tok := e.iss.MintOpaque(e.claims())
			e.iss.Revoke(tok)
			return tok
		}, status: s401, code: inv, reason: ReasonInactive},
		{name: "expired, AS says inactive", tok: func(e *env) string {
			c := e.claims()
			c.Expiry = e.clk.Now().Add(-time.Second)
			return e.iss.MintOpaque(c)
		}, status: s401, code: inv, reason: ReasonInactive},
		{name: "expired, lax AS says active", tok: func(e *env) string {
			c := e.claims()
			c.Expiry = e.clk.Now().Add(-2 * time.Minute)
			return e.iss.MintOpaque(c, ti.ReportActiveAfterExpiry())
		}, status: s401, code: inv, reason: ReasonExpired},
		{name: "no exp", tok: func(e *env) string {
			c := e.claims()
			c.NoExpiry = true
			return e.iss.MintOpaque(c)
		}, status: s401, code: inv, reason: ReasonNoExp},
		{name: "wrong aud", tok: func(e *env) string {
			c := e.claims()
			c.Audience = []string{"https://gw.example.com/servers/mail/mcp"}
			return e.iss.MintOpaque(c)
		}, status: s401, code: inv, reason: ReasonWrongAudience},
		{name: "no aud", tok: func(e *env) string {
			c := e.claims()
			c.Audience = nil
			return e.iss.MintOpaque(c)
		}, status: s401, code: inv, reason: ReasonWrongAudience},
		{name: "other issuer in answer", tok: func(e *env) string {
			c := e.claims()
			c.Issuer = "https://evil.example.com"
			return e.iss.MintOpaque(c)
		}, status: s401, code: inv, reason: ReasonUnknownIssuer},
		{name: "duplicate member in answer", tok: func(e *env) string {
			c := e.claims()
			c.Extra = map[string]any{"Active": false}
			return e.iss.MintOpaque(c)
		}, status: s503, reason: ReasonIntrospection},
		{name: "refresh token reported active", tok: func(e *env) string {
			c := e.claims()
			c.Extra = map[string]any{"token_type": "refresh_token"}
			return e.iss.MintOpaque(c)
		}, status: s401, code: inv, reason: ReasonBadType},
		{name: "DPoP-bound token", tok: func(e *env) string {
			c := e.claims()
			c.Extra = map[string]any{"token_type": "DPoP"}
			return e.iss.MintOpaque(c)
		}, status: s401, code: inv, reason: ReasonBadType},
		{name: "AS error", setup: func(e *env) { e.iss.SetIntrospectionMode(ti.IntrospectionError) },
			tok: func(e *env) string { return e.iss.MintOpaque(e.claims()) }, status: s503, reason: ReasonIntrospection},
		{name: "AS timeout", setup: func(e *env) { e.iss.SetIntrospectionMode(ti.IntrospectionHang) },
			tok: func(e *env) string { return e.iss.MintOpaque(e.claims()) }, status: s503, reason: ReasonIntrospection},
		{name: "wrong client secret", mod: func(c *IntrospectionConfig) { c.ClientSecret = []byte("nope") },
			tok: func(e *env) string { return e.iss.MintOpaque(e.claims()) }, status: s503, reason: ReasonIntrospection},
		{name: "issuer not on route", route: func(r *Request) { r.Issuers = []string{} },
			tok: func(e *env) string { return e.iss.MintOpaque(e.claims()) }, status: s401, code: inv, reason: ReasonMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := introEnv(t, tt.mod)
			if tt.setup != nil {
				tt.setup(e)
			}
			tok := tt.tok(e)
			r := Request{Header: bearer(tok), Resource: resource}
			if tt.route != nil {
				tt.route(&r)
			}
			_, err := e.a.Authenticate(context.Background(), r)
			wantReject(t, err, tt.status, tt.code, tt.reason, tok)
			noTokenBytes(t, tok, e.logs.String())
			if e.a.cache.len() != 0 {
				t.Fatal("rejected answer cached")
			}
		})
	}
}

func TestIntrospectionClientSecretPost(t *testing.T) {
	e := introEnv(t, func(c *IntrospectionConfig) { c.AuthMethod = "client_secret_post" })
	e.mustAuth(e.iss.MintOpaque(e.claims()))
}

func TestIntrospectionConfiguredEndpoint(t *testing.T) {
	e := newEnv(t, envOpts{cfg: func(c *IssuerConfig) {
		c.JWKSURI = c.Issuer + "/jwks"
		c.Introspection = &IntrospectionConfig{Endpoint: c.Issuer + "/introspect", ClientID: "mcpgate-test", ClientSecret: []byte("x")}
	}, issuer: ti.Options{ClientSecret: "x"}})
	e.mustAuth(e.iss.MintOpaque(e.claims()))
	if len(e.iss.MetadataRequests()) != 0 {
		t.Fatal("discovery with every endpoint configured")
	}
}

// TestIntrospectionCacheBoundedByExp: an answer is reused for at most
// min(CacheTTL, exp-now).
func TestIntrospectionCacheBoundedByExp(t *testing.T) {
	e := introEnv(t, func(c *IntrospectionConfig) { c.CacheTTL = time.Minute })
	short := e.claims()
	short.Expiry = e.clk.Now().Add(30 * time.Second)
	shortTok := e.iss.MintOpaque(short)
	long := e.claims()
	long.Expiry = e.clk.Now().Add(time.Hour)
	longTok := e.iss.MintOpaque(long)

	e.mustAuth(shortTok)
	e.mustAuth(longTok)
	e.clk.Advance(29 * time.Second)
	e.mustAuth(shortTok)
	e.mustAuth(longTok)
	if n := e.iss.IntrospectionRequests(); n != 2 {
		t.Fatalf("%d requests, want 2 (both cached)", n)
	}
	e.clk.Advance(time.Second) // short token's exp: its entry is gone
	_, err := e.auth(shortTok)
	wantReject(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonInactive, shortTok)
	if n := e.iss.IntrospectionRequests(); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
	e.clk.Advance(30 * time.Second) // past CacheTTL for the long token
	e.mustAuth(longTok)
	if n := e.iss.IntrospectionRequests(); n != 4 {
		t.Fatalf("%d requests, want 4", n)
	}
}

// TestOpaqueWithoutIntrospection: an opaque token where no issuer
// introspects is malformed, and nothing is fetched.
func TestOpaqueWithoutIntrospection(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.iss.MintOpaque(e.claims())
	_, err := e.auth(tok)
	wantReject(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonMalformed, tok)
	if e.iss.IntrospectionRequests() != 0 || len(e.iss.MetadataRequests()) != 0 {
		t.Fatal("network call for an opaque token without introspection")
	}
}

// TestIntrospectionInactiveNotAskedAgain: an opaque token reported inactive
// is refused for a short while without another call to the AS, so junk
// tokens cannot be turned into a stream of introspection requests.
func TestIntrospectionInactiveNotAskedAgain(t *testing.T) {
	e := introEnv(t, nil)
	r := Request{Header: bearer("opq_junk"), Resource: resource}
	for range 5 {
		_, err := e.a.Authenticate(context.Background(), r)
		wantReject(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonInactive, "opq_junk")
	}
	if n := e.iss.IntrospectionRequests(); n != 1 {
		t.Fatalf("%d introspection calls for one junk token, want 1", n)
	}
	e.clk.Advance(inactiveTTL + time.Second)
	_, _ = e.a.Authenticate(context.Background(), r)
	if n := e.iss.IntrospectionRequests(); n != 2 {
		t.Fatalf("%d introspection calls after the negative entry expired, want 2", n)
	}
}
