package gateway

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/testissuer"
)

// TestProofAuthentication: every way a bearer token can fail is refused
// with the RFC 6750 / RFC 9728 challenge, before the body is even parsed,
// and nothing reaches the upstream.
func TestProofAuthentication(t *testing.T) {
	h := newHarness(t, harnessOptions{stateless: true})
	claims := func(mut func(*testissuer.Claims)) testissuer.Claims {
		c := testissuer.Claims{Subject: "alice", ClientID: "agent-1", Audience: []string{h.resource("docs")}, Scope: "docs:read"}
		if mut != nil {
			mut(&c)
		}
		return c
	}
	mint := func(mut func(*testissuer.Claims), opts ...testissuer.MintOption) string {
		return h.iss.Mint(claims(mut), opts...)
	}
	valid := h.token("docs", "docs:read")
	basicCreds := base64.StdEncoding.EncodeToString([]byte("alice:" + randomToken("pw-", 8)))
	bad := func(reason string) rejectWant {
		return rejectWant{status: 401, code: codeUnauthorized, challenge: chBadToken, decision: audit.Reject, reason: reason}
	}
	for _, tc := range []struct {
		name   string
		rr     rawReq
		want   rejectWant
		secret string // looked for in upstream requests, logs and audit besides rr.token
	}{
		{name: "no token", rr: rawReq{},
			want: rejectWant{status: 401, code: codeUnauthorized, challenge: chNoToken, decision: audit.Reject, reason: "missing"}},
		{name: "no token, mail route", rr: rawReq{route: "mail"},
			want: rejectWant{status: 401, code: codeUnauthorized, challenge: chNoToken, decision: audit.Reject, reason: "missing"}},
		{name: "garbage", rr: rawReq{token: randomToken("garbage-", 12)}, want: bad("malformed")},
		{name: "garbage with dots", rr: rawReq{token: randomToken("a", 6) + "." + randomToken("b", 6) + "." + randomToken("c", 6)}, want: bad("malformed")},
		{name: "expired", rr: rawReq{token: mint(func(c *testissuer.Claims) {
			c.IssuedAt, c.Expiry = time.Now().Add(-time.Hour), time.Now().Add(-5*time.Minute)
		})}, want: bad("expired")},
		{name: "not yet valid", rr: rawReq{token: mint(func(c *testissuer.Claims) { c.NotBefore = time.Now().Add(10 * time.Minute) })}, want: bad("not_yet_valid")},
		{name: "no exp", rr: rawReq{token: mint(func(c *testissuer.Claims) { c.NoExpiry = true })}, want: bad("no_exp")},
		{name: "no sub", rr: rawReq{token: mint(func(c *testissuer.Claims) { c.Subject = "" })}, want: bad("no_sub")},
		{name: "wrong issuer", rr: rawReq{token: mint(func(c *testissuer.Claims) { c.Issuer = "https://evil.example.com" })}, want: bad("unknown_issuer")},
		{name: "issuer differs by a trailing slash", rr: rawReq{token: mint(func(c *testissuer.Claims) { c.Issuer = h.iss.URL() + "/" })}, want: bad("unknown_issuer")},
		{name: "wrong audience", rr: rawReq{token: mint(func(c *testissuer.Claims) { c.Audience = []string{"https://elsewhere.example/mcp"} })}, want: bad("wrong_audience")},
		{name: "audience is the gateway origin", rr: rawReq{token: mint(func(c *testissuer.Claims) { c.Audience = []string{h.srv.URL} })}, want: bad("wrong_audience")},
		{name: "missing aud", rr: rawReq{token: mint(func(c *testissuer.Claims) { c.Audience = nil })}, want: bad("wrong_audience")},
		{name: "mail token at docs", rr: rawReq{token: h.token("mail", "mail:read docs:read")}, want: bad("wrong_audience")},
		{name: "docs token at mail", rr: rawReq{route: "mail", token: h.token("docs", "docs:read mail:read")},
			want: rejectWant{status: 401, code: codeUnauthorized, challenge: chBadToken, decision: audit.Reject, reason: "wrong_audience"}},
		{name: "alg none", rr: rawReq{token: mint(nil, testissuer.WithForgery(testissuer.ForgeNone))}, want: bad("bad_alg")},
		{name: "HS256 keyed with the public key", rr: rawReq{token: mint(nil, testissuer.WithForgery(testissuer.ForgeHS256PublicKeyPEM))}, want: bad("bad_alg")},
		{name: "alg not pinned (PS256)", rr: rawReq{token: mint(nil, testissuer.WithAlg("PS256"))}, want: bad("bad_alg")},
		{name: "unknown key", rr: rawReq{token: mint(nil, testissuer.WithUnpublishedKey())}, want: bad("unknown_key")},
		{name: "typ JWT", rr: rawReq{token: mint(nil, testissuer.WithType("JWT"))}, want: bad("bad_type")},
		{name: "typ absent", rr: rawReq{token: mint(nil, testissuer.WithoutType())}, want: bad("bad_type")},
		{name: "crit header", rr: rawReq{token: mint(nil, testissuer.WithHeader("crit", []string{"exp"}))}, want: bad("crit")},
		{name: "jku names the attacker's keys", rr: rawReq{token: mint(nil, testissuer.WithUnpublishedKey(), testissuer.WithHeader("jku", "https://evil.example.com/jwks"))}, want: bad("unknown_key")},
		{name: "signature of another token", rr: rawReq{token: swapSignature(valid, mint(func(c *testissuer.Claims) { c.Scope = "docs:read docs:write" }))}, want: bad("bad_signature")},
		{name: "oversize token", rr: rawReq{token: strings.Repeat("A", 9<<10)}, want: bad("too_large")},
		{name: "token in query", rr: rawReq{path: "/servers/docs/mcp?access_token=" + valid},
			want: rejectWant{status: 400, code: codeUnauthorized, challenge: chBadRequest, decision: audit.Reject, reason: "query_token"}, secret: valid},
		{name: "token in query and header", rr: rawReq{path: "/servers/docs/mcp?x=1&access_token=" + valid, token: valid},
			want: rejectWant{status: 400, code: codeUnauthorized, challenge: chBadRequest, decision: audit.Reject, reason: "query_token"}},
		{name: "token in escaped query name", rr: rawReq{path: "/servers/docs/mcp?access%5Ftoken=" + valid},
			want: rejectWant{status: 400, code: codeUnauthorized, challenge: chBadRequest, decision: audit.Reject, reason: "query_token"}, secret: valid},
		{name: "two Authorization headers", rr: rawReq{header: http.Header{"Authorization": {"Bearer " + valid, "Bearer " + valid}}},
			want: rejectWant{status: 400, code: codeUnauthorized, challenge: chBadRequest, decision: audit.Reject, reason: "multiple_headers"}, secret: valid},
		{name: "Basic scheme", rr: rawReq{header: http.Header{"Authorization": {"Basic " + basicCreds}}},
			want: rejectWant{status: 401, code: codeUnauthorized, challenge: chNoToken, decision: audit.Reject, reason: "unsupported_scheme"}, secret: basicCreds},
		{name: "Bearer without token", rr: rawReq{header: http.Header{"Authorization": {"Bearer"}}},
			want: rejectWant{status: 400, code: codeUnauthorized, challenge: chBadRequest, decision: audit.Reject, reason: "malformed_header"}},
		{name: "Bearer with a non-b64token", rr: rawReq{header: http.Header{"Authorization": {"Bearer " + valid + ",x"}}},
			want: rejectWant{status: 400, code: codeUnauthorized, challenge: chBadRequest, decision: audit.Reject, reason: "malformed_header"}, secret: valid},
		{name: "auth failure beats a malformed body", rr: rawReq{token: randomToken("garbage-", 12), body: `{"jsonrpc":`}, want: bad("malformed")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.expectReject(t, tc.rr, tc.want, tc.secret)
		})
	}

	// The controls: the same request with a valid token is forwarded, and
	// the scheme is case-insensitive.
	for _, hdr := range []string{"Bearer " + valid, "bearer " + valid, "BEARER  " + valid} {
		before := h.up["docs"].count()
		resp := h.do(rawReq{header: http.Header{"Authorization": {hdr}}})
		if m := resp.rpc(t); resp.status != 200 || m.Error != nil || string(m.ID) != "7" {
			t.Errorf("valid token (%.8s…): status %d body %s", hdr, resp.status, resp.body)
		}
		if h.up["docs"].count() != before+1 {
			t.Errorf("valid token (%.8s…): not forwarded", hdr)
		}
	}
	h.assertNoTokenLeak(valid)
}

// swapSignature returns tok's header and claims with other's signature.
func swapSignature(tok, other string) string {
	a := strings.Split(tok, ".")
	b := strings.Split(other, ".")
	return b[0] + "." + b[1] + "." + a[2]
}

// TestProofIntrospection: an opaque token is validated by RFC 7662
// introspection at an issuer configured with a client secret file.
func TestProofIntrospection(t *testing.T) {
	h := newHarness(t, harnessOptions{stateless: true, setup: func(h *harness, cfg *config.Config) {
		path := filepath.Join(t.TempDir(), "introspection-secret")
		if err := os.WriteFile(path, h.iss.ClientSecret(), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.AuthorizationServers[0].Introspection = &config.Introspection{
			Endpoint: h.iss.IntrospectionURL(), ClientID: h.iss.ClientID(), ClientSecretFile: path,
		}
	}})
	opaque := func(mut func(*testissuer.Claims)) string {
		c := testissuer.Claims{Subject: "alice", ClientID: "agent-1", Audience: []string{h.resource("docs")}, Scope: "docs:read"}
		if mut != nil {
			mut(&c)
		}
		return h.iss.MintOpaque(c)
	}

	active := opaque(nil)
	for i := range 2 { // the second is served from the cache
		before := h.up["docs"].count()
		resp := h.do(rawReq{token: active})
		if m := resp.rpc(t); resp.status != 200 || m.Error != nil {
			t.Fatalf("active opaque token (try %d): status %d body %s", i, resp.status, resp.body)
		}
		if h.up["docs"].count() != before+1 {
			t.Errorf("active opaque token (try %d) not forwarded", i)
		}
		evs := h.recordsOf(t, resp.requestID(), 2)
		if len(evs) != 2 || evs[0].Decision != audit.Allow || evs[0].Token != tokenFingerprint(active) || evs[0].Subject != "alice" {
			t.Errorf("audit for an introspected token = %+v", evs)
		}
	}
	if n := h.iss.IntrospectionRequests(); n != 1 {
		t.Errorf("introspection requests = %d, want 1 (the answer is cached)", n)
	}

	revoked := opaque(nil)
	h.iss.Revoke(revoked)
	bad := func(reason string) rejectWant {
		return rejectWant{status: 401, code: codeUnauthorized, challenge: chBadToken, decision: audit.Reject, reason: reason}
	}
	for _, tc := range []struct {
		name string
		rr   rawReq
		want rejectWant
	}{
		{"inactive (revoked)", rawReq{token: revoked}, bad("inactive")},
		{"unknown to the AS", rawReq{token: randomToken("opq_", 24)}, bad("inactive")},
		{"expired", rawReq{token: opaque(func(c *testissuer.Claims) { c.Expiry = time.Now().Add(-5 * time.Minute) })}, bad("inactive")},
		{"another route's opaque token", rawReq{route: "mail", token: opaque(func(c *testissuer.Claims) { c.Scope = "docs:read mail:read" })}, bad("wrong_audience")},
	} {
		t.Run(tc.name, func(t *testing.T) { h.expectReject(t, tc.rr, tc.want) })
	}
	h.assertNoTokenLeak(active)
	h.assertNoTokenLeak(string(h.iss.ClientSecret()))
}
