package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ti "github.com/mcpgate/mcpgate/internal/testissuer"
)

// rawClaims renders claims JSON by hand, for duplicate and case tests.
func rawClaims(e *env, extra string) []byte {
	now := e.clk.Now().Unix()
	return fmt.Appendf(nil, `{"iss":%q,"sub":"alice","exp":%d,"iat":%d%s}`, e.iss.URL(), now+300, now, extra)
}

func TestRejects(t *testing.T) {
	type tc struct {
		name   string
		header func(e *env) http.Header // nil → Bearer tok
		tok    func(e *env) string
		query  string
		route  func(r *Request)
		status int
		code   string
		reason string
		// cheap: the rejection must come before any network call.
		cheap bool
	}
	inv := CodeInvalidToken
	s401, s400 := http.StatusUnauthorized, http.StatusBadRequest
	c := func(e *env) ti.Claims { return e.claims() }
	mint := func(mod func(*ti.Claims), opts ...ti.MintOption) func(e *env) string {
		return func(e *env) string {
			cl := c(e)
			if mod != nil {
				mod(&cl)
			}
			return e.iss.Mint(cl, opts...)
		}
	}
	raw := func(extra string) func(e *env) string {
		return func(e *env) string {
			return e.iss.Mint(ti.Claims{}, ti.WithRawClaims(rawClaims(e, extra)))
		}
	}
	for _, tt := range []tc{
		// The Authorization header and query (RFC 6750 §2).
		{name: "no header", header: func(*env) http.Header { return http.Header{} }, status: s401, reason: ReasonMissing, cheap: true},
		{name: "basic scheme", header: func(*env) http.Header { return http.Header{"Authorization": {"Basic YTpi"}} }, status: s401, reason: ReasonUnsupportedScheme, cheap: true},
		{name: "two headers", header: func(e *env) http.Header {
			return http.Header{"Authorization": {"Bearer " + e.mint(), "Bearer " + e.mint()}}
		}, status: s400, code: CodeInvalidRequest, reason: ReasonMultipleHeaders, cheap: true},
		{name: "query token", tok: func(e *env) string { return e.mint() }, query: "x=1&access_token=abc", status: s400, code: CodeInvalidRequest, reason: ReasonQueryToken, cheap: true},
		{name: "escaped query token", tok: func(e *env) string { return e.mint() }, query: "access%5Ftoken=abc", status: s400, code: CodeInvalidRequest, reason: ReasonQueryToken, cheap: true},
		{name: "empty bearer", header: func(*env) http.Header { return http.Header{"Authorization": {"Bearer"}} }, status: s400, code: CodeInvalidRequest, reason: ReasonMalformedHeader, cheap: true},
		{name: "bearer with space inside", header: func(*env) http.Header { return http.Header{"Authorization": {"Bearer abc def"}} }, status: s400, code: CodeInvalidRequest, reason: ReasonMalformedHeader, cheap: true},
		{name: "oversize", tok: func(*env) string { return strings.Repeat("a", 8193) }, status: s401, code: inv, reason: ReasonTooLarge, cheap: true},

		// JWS shape and base64url.
		{name: "two segments", tok: func(*env) string { return "eyJhbGciOiJSUzI1NiJ9.e30" }, status: s401, code: inv, reason: ReasonMalformed, cheap: true},
		{name: "header not json", tok: func(*env) string { return "bm90IGpzb24.e30.c2ln" }, status: s401, code: inv, reason: ReasonMalformed, cheap: true},
		{name: "padded header", tok: func(e *env) string {
			h, rest, _ := strings.Cut(e.mint(), ".")
			return h + "=." + rest // '=' inside a b64token
		}, status: s400, code: CodeInvalidRequest, reason: ReasonMalformedHeader, cheap: true},
		{name: "padded signature", tok: func(e *env) string { return e.mint() + "==" }, status: s401, code: inv, reason: ReasonMalformed, cheap: true},
		{name: "std base64 payload", tok: func(e *env) string {
			p := strings.Split(e.mint(), ".")
			p[1] = strings.ReplaceAll(strings.ReplaceAll(p[1], "-", "+"), "_", "/") + "+"
			return strings.Join(p, ".")
		}, status: s401, code: inv, reason: ReasonMalformed, cheap: true},
		{name: "empty signature", tok: func(e *env) string {
			p := strings.Split(e.mint(), ".")
			return p[0] + "." + p[1] + "."
		}, status: s401, code: inv, reason: ReasonMalformed, cheap: true},
		{name: "claims not an object", tok: func(e *env) string { return e.iss.Mint(ti.Claims{}, ti.WithRawClaims([]byte(`["a"]`))) }, status: s401, code: inv, reason: ReasonMalformed, cheap: true},
		{name: "nbf not a number", tok: raw(`,"aud":"` + resource + `","nbf":"soon"`), status: s401, code: inv, reason: ReasonMalformed, cheap: true},
		{name: "exp not a number", tok: func(e *env) string {
			b := fmt.Appendf(nil, `{"iss":%q,"sub":"a","aud":%q,"exp":"%d"}`, e.iss.URL(), resource, e.clk.Now().Unix()+60)
			return e.iss.Mint(ti.Claims{}, ti.WithRawClaims(b))
		}, status: s401, code: inv, reason: ReasonMalformed, cheap: true},
		{name: "exp negative", tok: raw(`,"aud":"` + resource + `","nbf":-1`), status: s401, code: inv, reason: ReasonMalformed, cheap: true},
		{name: "sub not a string", tok: raw(`,"aud":"` + resource + `","client_id":{}`), status: s401, code: inv, reason: ReasonMalformed, cheap: true},
		{name: "scope with a quote", tok: raw(`,"aud":"` + resource + `","scope":"a \"b"`), status: s401, code: inv, reason: ReasonMalformed, cheap: true},
		{name: "act without sub", tok: raw(`,"aud":"` + resource + `","act":{"iss":"x"}`), status: s401, code: inv, reason: ReasonMalformed, cheap: true},
		{name: "nesting too deep", tok: raw(`,"aud":"` + resource + `","x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40)), status: s401, code: inv, reason: ReasonMalformed, cheap: true},

		// Algorithms (RFC 8725 §3.1, §3.2).
		{name: "alg none", tok: mint(nil, ti.WithForgery(ti.ForgeNone)), status: s401, code: inv, reason: ReasonBadAlg, cheap: true},
		{name: "HS256 keyed with RSA public key PEM", tok: mint(nil, ti.WithForgery(ti.ForgeHS256PublicKeyPEM)), status: s401, code: inv, reason: ReasonBadAlg, cheap: true},
		{name: "HS256 keyed with JWKS JSON", tok: mint(nil, ti.WithForgery(ti.ForgeHS256JWKS)), status: s401, code: inv, reason: ReasonBadAlg, cheap: true},
		{name: "HS256 keyed with RSA modulus", tok: mint(nil, ti.WithForgery(ti.ForgeHS256Modulus)), status: s401, code: inv, reason: ReasonBadAlg, cheap: true},
		{name: "alg not pinned", tok: mint(nil, ti.WithAlg("PS256")), status: s401, code: inv, reason: ReasonBadAlg, cheap: true},
		{name: "no alg", tok: mint(nil, ti.WithHeader("alg", nil)), status: s401, code: inv, reason: ReasonBadAlg, cheap: true},

		// typ (RFC 9068 §4) and crit (RFC 7515 §4.1.11).
		{name: "typ JWT", tok: mint(nil, ti.WithType("JWT")), status: s401, code: inv, reason: ReasonBadType, cheap: true},
		{name: "typ absent", tok: mint(nil, ti.WithoutType()), status: s401, code: inv, reason: ReasonBadType, cheap: true},
		{name: "typ id token", tok: mint(nil, ti.WithType("id_token+jwt")), status: s401, code: inv, reason: ReasonBadType, cheap: true},
		{name: "crit", tok: mint(nil, ti.WithHeader("crit", []string{"exp"})), status: s401, code: inv, reason: ReasonCrit, cheap: true},

		// Exact, unambiguous member names.
		{name: "duplicate aud", tok: raw(`,"aud":"` + resource + `","aud":"https://other"`), status: s401, code: inv, reason: ReasonDuplicateName, cheap: true},
		{name: "aud and AUD", tok: raw(`,"aud":"` + resource + `","AUD":"https://other"`), status: s401, code: inv, reason: ReasonDuplicateName, cheap: true},
		{name: "escaped duplicate", tok: raw(`,"aud":"` + resource + `","\u0061ud":"https://other"`), status: s401, code: inv, reason: ReasonDuplicateName, cheap: true},
		{name: "only Aud", tok: raw(`,"Aud":"` + resource + `"`), status: s401, code: inv, reason: ReasonCaseVariantName, cheap: true},
		{name: "only EXP", tok: func(e *env) string {
			b := fmt.Appendf(nil, `{"iss":%q,"sub":"a","aud":%q,"EXP":%d}`, e.iss.URL(), resource, e.clk.Now().Unix()+60)
			return e.iss.Mint(ti.Claims{}, ti.WithRawClaims(b))
		}, status: s401, code: inv, reason: ReasonCaseVariantName, cheap: true},
		{name: "duplicate alg header", tok: func(e *env) string {
			return e.iss.Mint(c(e), ti.WithRawHeader([]byte(`{"alg":"RS256","typ":"at+jwt","alg":"none","kid":"`+e.iss.KID("RS256")+`"}`)))
		}, status: s401, code: inv, reason: ReasonDuplicateName, cheap: true},
		{name: "case-variant typ header", tok: func(e *env) string {
			return e.iss.Mint(c(e), ti.WithRawHeader([]byte(`{"alg":"RS256","typ":"at+jwt","Typ":"JWT","kid":"`+e.iss.KID("RS256")+`"}`)))
		}, status: s401, code: inv, reason: ReasonDuplicateName, cheap: true},

		// Issuer.
		{name: "unknown issuer", tok: mint(func(c *ti.Claims) { c.Issuer = "https://evil.example.com" }), status: s401, code: inv, reason: ReasonUnknownIssuer, cheap: true},
		{name: "issuer with trailing slash", tok: func(e *env) string {
			return e.iss.Mint(ti.Claims{Issuer: e.iss.URL() + "/", Subject: "a", Audience: []string{resource}})
		}, status: s401, code: inv, reason: ReasonUnknownIssuer, cheap: true},
		{name: "no iss", tok: mint(nil, ti.WithRawClaims([]byte(`{"sub":"a","aud":"`+resource+`","exp":9999999999}`))), status: s401, code: inv, reason: ReasonUnknownIssuer, cheap: true},
		{name: "issuer not on route", tok: mint(nil), route: func(r *Request) { r.Issuers = []string{"https://other.example.com"} }, status: s401, code: inv, reason: ReasonIssuerNotAllowed, cheap: true},

		// Time (clock skew 60s).
		{name: "expired", tok: mint(func(c *ti.Claims) { c.Expiry = time.Unix(1_800_000_000-61, 0) }), status: s401, code: inv, reason: ReasonExpired, cheap: true},
		{name: "no exp", tok: mint(func(c *ti.Claims) { c.NoExpiry = true }), status: s401, code: inv, reason: ReasonNoExp, cheap: true},
		{name: "nbf future", tok: mint(func(c *ti.Claims) { c.NotBefore = time.Unix(1_800_000_000+61, 0) }), status: s401, code: inv, reason: ReasonNotYetValid, cheap: true},
		{name: "iat future", tok: mint(func(c *ti.Claims) { c.IssuedAt = time.Unix(1_800_000_000+61, 0) }), status: s401, code: inv, reason: ReasonIATFuture, cheap: true},

		// Audience (RFC 8707, RFC 9068 §4).
		{name: "wrong aud", tok: mint(func(c *ti.Claims) { c.Audience = []string{"https://gw.example.com/servers/mail/mcp"} }), status: s401, code: inv, reason: ReasonWrongAudience, cheap: true},
		{name: "no aud", tok: mint(func(c *ti.Claims) { c.Audience = nil }), status: s401, code: inv, reason: ReasonWrongAudience, cheap: true},
		{name: "aud prefix", tok: mint(func(c *ti.Claims) { c.Audience = []string{"https://gw.example.com/servers/docs"} }), status: s401, code: inv, reason: ReasonWrongAudience, cheap: true},
		{name: "aud differs in host case", tok: mint(func(c *ti.Claims) { c.Audience = []string{"https://GW.example.com/servers/docs/mcp"} }), status: s401, code: inv, reason: ReasonWrongAudience, cheap: true},
		{name: "aud for another route", tok: mint(nil), route: func(r *Request) { r.Resource = "https://gw.example.com/servers/mail/mcp" }, status: s401, code: inv, reason: ReasonWrongAudience, cheap: true},
		{name: "aud array without resource", tok: mint(func(c *ti.Claims) { c.Audience = []string{"a", "b"} }), status: s401, code: inv, reason: ReasonWrongAudience, cheap: true},
		{name: "aud not strings", tok: raw(`,"aud":[1]`), status: s401, code: inv, reason: ReasonMalformed, cheap: true},
		{name: "no sub", tok: mint(func(c *ti.Claims) { c.Subject = "" }), status: s401, code: inv, reason: ReasonNoSubject, cheap: true},
		{name: "empty route resource", tok: mint(nil), route: func(r *Request) { r.Resource = "" }, status: s401, code: inv, reason: ReasonWrongAudience, cheap: true},

		// Keys and signatures: these need the JWKS.
		{name: "ES256 signature under the RSA kid", tok: func(e *env) string { return e.mint(ti.WithAlg("ES256"), ti.WithKID(e.iss.KID("RS256"))) }, status: s401, code: inv, reason: ReasonKeyMismatch},
		{name: "RS256 label on an ES256 key", tok: func(e *env) string { return e.mint(ti.WithAlg("RS256"), ti.WithKID(e.iss.KID("ES256"))) }, status: s401, code: inv, reason: ReasonKeyMismatch},
		{name: "key not in JWKS", tok: mint(nil, ti.WithUnpublishedKey()), status: s401, code: inv, reason: ReasonUnknownKey},
		{name: "key not in JWKS under a published kid", tok: func(e *env) string { return e.mint(ti.WithUnpublishedKey(), ti.WithKID(e.iss.KID("RS256"))) }, status: s401, code: inv, reason: ReasonBadSignature},
		{name: "key not in JWKS without kid", tok: mint(nil, ti.WithUnpublishedKey(), ti.WithoutKID()), status: s401, code: inv, reason: ReasonBadSignature},
		{name: "tampered claims", tok: func(e *env) string {
			p := strings.Split(e.mint(), ".")
			var m map[string]any
			b, _ := base64.RawURLEncoding.DecodeString(p[1])
			_ = json.Unmarshal(b, &m)
			m["scope"] = "docs:admin"
			b, _ = json.Marshal(m)
			return p[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + p[2]
		}, status: s401, code: inv, reason: ReasonBadSignature},
		{name: "signature of another token", tok: func(e *env) string {
			a, b := strings.Split(e.mint(), "."), strings.Split(e.mint(), ".")
			return a[0] + "." + a[1] + "." + b[2]
		}, status: s401, code: inv, reason: ReasonBadSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			var tok string
			if tt.tok != nil {
				tok = tt.tok(e)
			}
			r := Request{Header: bearer(tok), RawQuery: tt.query, Resource: resource}
			if tt.header != nil {
				r.Header = tt.header(e)
				tok = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			}
			if tt.route != nil {
				tt.route(&r)
			}
			id, err := e.a.Authenticate(context.Background(), r)
			if id != nil {
				t.Fatalf("accepted: %+v", id)
			}
			wantReject(t, err, tt.status, tt.code, tt.reason, tok)
			noTokenBytes(t, tok, e.logs.String())
			if tt.query != "" && strings.Contains(err.Error(), "abc") {
				t.Fatal("error holds the query token")
			}
			if tt.cheap {
				if n := e.iss.JWKSFetches(); n != 0 {
					t.Errorf("cheap reject made %d JWKS fetches", n)
				}
				if m := e.iss.MetadataRequests(); len(m) != 0 {
					t.Errorf("cheap reject made discovery requests %v", m)
				}
			}
			if e.a.cache.len() != 0 {
				t.Error("rejected token was cached")
			}
		})
	}
}

func TestSentinels(t *testing.T) {
	for _, tt := range []struct {
		reason string
		is     error
	}{
		{ReasonMissing, ErrNoToken},
		{ReasonUnsupportedScheme, ErrNoToken},
		{ReasonQueryToken, ErrInvalidRequest},
		{ReasonExpired, ErrInvalidToken},
		{ReasonKeysUnavailable, ErrUnavailable},
		{ReasonIntrospection, ErrUnavailable},
	} {
		err := error(reject(tt.reason, nil))
		if !errors.Is(err, tt.is) {
			t.Errorf("%s: errors.Is(%v) false", tt.reason, tt.is)
		}
		for _, other := range []error{ErrNoToken, ErrInvalidRequest, ErrInvalidToken, ErrUnavailable} {
			if other != tt.is && errors.Is(err, other) {
				t.Errorf("%s also matches %v", tt.reason, other)
			}
		}
	}
}

// TestUntrustedKeyHeaders: jku, x5u, jwk and x5c are never used to find a
// key, so a token signed by an attacker's key and pointing at it fails,
// and the attacker's URL is never fetched.
func TestUntrustedKeyHeaders(t *testing.T) {
	var hits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
	}))
	defer attacker.Close()
	for _, h := range []struct {
		name string
		v    any
	}{
		{"jku", attacker.URL + "/jwks"},
		{"x5u", attacker.URL + "/cert.pem"},
		{"jwk", map[string]any{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}},
		{"x5c", []string{"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"}},
	} {
		t.Run(h.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			tok := e.mint(ti.WithUnpublishedKey(), ti.WithHeader(h.name, h.v))
			_, err := e.auth(tok)
			wantReject(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonUnknownKey, tok)
			// A real token with the same header is fine: it is ignored.
			e.mustAuth(e.mint(ti.WithHeader(h.name, h.v)))
		})
	}
	if hits.Load() != 0 {
		t.Fatal("a key URL from a token header was fetched")
	}
}

// TestAlgorithmPinnedPerIssuer: an algorithm one issuer allows is refused
// for another.
func TestAlgorithmPinnedPerIssuer(t *testing.T) {
	clk := newClock()
	rsa := ti.New(t, ti.Options{Now: clk.Now})
	ec := ti.New(t, ti.Options{Now: clk.Now, Alg: "ES256"})
	hc := mustEgress(t, rsa.EgressConfig())
	a, err := New(Config{Issuers: []IssuerConfig{
		{Issuer: rsa.URL(), Algorithms: []string{"RS256"}, HTTP: hc},
		{Issuer: ec.URL(), Algorithms: []string{"ES256"}, HTTP: hc},
	}}, Deps{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	cl := ti.Claims{Subject: "a", Audience: []string{resource}}
	auth := func(tok string) error {
		_, err := a.Authenticate(context.Background(), Request{Header: bearer(tok), Resource: resource})
		return err
	}
	if err := auth(rsa.Mint(cl)); err != nil {
		t.Fatal(err)
	}
	if err := auth(ec.Mint(cl)); err != nil {
		t.Fatal(err)
	}
	tok := rsa.Mint(cl, ti.WithAlg("ES256"))
	wantReject(t, auth(tok), http.StatusUnauthorized, CodeInvalidToken, ReasonBadAlg, tok)
	tok = ec.Mint(cl, ti.WithAlg("RS256"))
	wantReject(t, auth(tok), http.StatusUnauthorized, CodeInvalidToken, ReasonBadAlg, tok)
}
