package testissuer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpgate/mcpgate/internal/egress"
)

// keyfuncFor resolves kids against the issuer's published JWKS with plain
// golang-jwt, independently of mcpgate's authn.
func keyfuncFor(t *testing.T, i *Issuer) jwt.Keyfunc {
	t.Helper()
	return func(tok *jwt.Token) (any, error) {
		i.mu.Lock()
		defer i.mu.Unlock()
		for _, k := range append(i.retired, i.currentList()...) {
			if k.kid == tok.Header["kid"] {
				return k.priv.Public(), nil
			}
		}
		return nil, jwt.ErrTokenUnverifiable
	}
}

func (i *Issuer) currentList() []*signingKey {
	var out []*signingKey
	for _, f := range families {
		out = append(out, i.current[f])
	}
	return out
}

func TestMintVerifiesWithGolangJWT(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	i := New(t, Options{Now: func() time.Time { return now }})
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"} {
		tok := i.Mint(Claims{Subject: "alice", Audience: []string{"https://rs"}, Scope: "a b", Actor: []string{"gw", "agent"}}, WithAlg(alg))
		p := jwt.NewParser(jwt.WithValidMethods([]string{alg}), jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithAudience("https://rs"), jwt.WithIssuer(i.URL()))
		parsed, err := p.Parse(tok, keyfuncFor(t, i))
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if parsed.Header["typ"] != "at+jwt" || parsed.Header["kid"] != i.KID(alg) {
			t.Fatalf("%s: header %v", alg, parsed.Header)
		}
		c := parsed.Claims.(jwt.MapClaims)
		if c["sub"] != "alice" || c["scope"] != "a b" || c["act"].(map[string]any)["sub"] != "gw" || c["exp"].(float64) != float64(now.Add(5*time.Minute).Unix()) {
			t.Fatalf("%s: claims %v", alg, c)
		}
	}
}

func TestForgeriesAndOptions(t *testing.T) {
	i := New(t, Options{})
	header := func(tok string) map[string]any {
		b, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
		var h map[string]any
		_ = json.Unmarshal(b, &h)
		return h
	}
	if h := header(i.Mint(Claims{}, WithForgery(ForgeNone))); h["alg"] != "none" {
		t.Fatalf("none: %v", h)
	}
	if tok := i.Mint(Claims{}, WithForgery(ForgeNone)); !strings.HasSuffix(tok, ".") {
		t.Fatal("none token has a signature")
	}
	if h := header(i.Mint(Claims{}, WithForgery(ForgeHS256JWKS))); h["alg"] != "HS256" || h["kid"] != i.KID("RS256") {
		t.Fatalf("hs256: %v", h)
	}
	h := header(i.Mint(Claims{}, WithoutKID(), WithoutType(), WithHeader("crit", []string{"x"})))
	if _, ok := h["kid"]; ok || h["typ"] != nil || h["crit"] == nil {
		t.Fatalf("options: %v", h)
	}
	unpub := i.Mint(Claims{Audience: []string{"https://rs"}}, WithUnpublishedKey())
	if _, err := jwt.Parse(unpub, keyfuncFor(t, i)); err == nil {
		t.Fatal("unpublished key is published")
	}
	raw := i.Mint(Claims{}, WithRawClaims([]byte(`{"aud":"a","aud":"b"}`)))
	if b, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1]); string(b) != `{"aud":"a","aud":"b"}` {
		t.Fatalf("raw claims %s", b)
	}
}

func TestRotateAndJWKS(t *testing.T) {
	i := New(t, Options{})
	before := i.KID("RS256")
	i.Rotate()
	after := i.KID("RS256")
	if before == after {
		t.Fatal("rotate kept the kid")
	}
	if !strings.Contains(string(i.JWKS()), before) || !strings.Contains(string(i.JWKS()), after) {
		t.Fatal("rotation should keep the old key published")
	}
	i.DropRetiredKeys()
	if strings.Contains(string(i.JWKS()), before) {
		t.Fatal("retired key still published")
	}
}

func get(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestHTTPEndpoints(t *testing.T) {
	i := New(t, Options{Path: "/t1", Metadata: OIDCPathAppend})
	base := strings.TrimSuffix(i.URL(), "/t1")
	if code, _ := get(t, base+"/.well-known/oauth-authorization-server/t1"); code != 404 {
		t.Fatalf("RFC 8414 served: %d", code)
	}
	code, body := get(t, i.URL()+"/.well-known/openid-configuration")
	var md map[string]any
	if code != 200 || json.Unmarshal(body, &md) != nil || md["issuer"] != i.URL() || md["jwks_uri"] != i.JWKSURL() {
		t.Fatalf("metadata %d %s", code, body)
	}
	if got := i.MetadataRequests(); len(got) != 2 || got[1] != "/t1/.well-known/openid-configuration" {
		t.Fatalf("metadata requests %v", got)
	}
	if code, _ := get(t, i.JWKSURL()); code != 200 || i.JWKSFetches() != 1 {
		t.Fatal("jwks")
	}
	i.SetJWKSDown(true)
	if code, _ := get(t, i.JWKSURL()); code != 503 || i.JWKSFetches() != 2 {
		t.Fatal("jwks outage")
	}
	i.WaitJWKSFetches(2)
}

func TestIntrospectionEndpoint(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	i := New(t, Options{TLS: true, Now: clock, ClientID: "id:x", ClientSecret: "p@ss word"})
	hc, err := egress.New(i.EgressConfig())
	if err != nil {
		t.Fatal(err)
	}
	introspect := func(tok string, basic bool, secret string) (int, map[string]any) {
		form := url.Values{"token": {tok}}
		h := http.Header{}
		if basic {
			h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape("id:x")+":"+url.QueryEscape(secret))))
		} else {
			form.Set("client_id", "id:x")
			form.Set("client_secret", secret)
		}
		code, body, err := hc.PostForm(context.Background(), i.IntrospectionURL(), form, h)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		return code, m
	}
	tok := i.MintOpaque(Claims{Subject: "alice", Audience: []string{"https://rs"}, Scope: "a"})
	for _, basic := range []bool{true, false} {
		if code, m := introspect(tok, basic, "p@ss word"); code != 200 || m["active"] != true || m["sub"] != "alice" || m["iss"] != i.URL() {
			t.Fatalf("basic=%v: %d %v", basic, code, m)
		}
	}
	if code, _ := introspect(tok, true, "wrong"); code != 401 {
		t.Fatalf("wrong secret: %d", code)
	}
	if _, m := introspect("opq_unknown", true, "p@ss word"); m["active"] != false || len(m) != 1 {
		t.Fatalf("unknown: %v", m)
	}
	expired := i.MintOpaque(Claims{Subject: "a", Expiry: now.Add(-time.Second)})
	lax := i.MintOpaque(Claims{Subject: "a", Expiry: now.Add(-time.Second)}, ReportActiveAfterExpiry())
	if _, m := introspect(expired, true, "p@ss word"); m["active"] != false {
		t.Fatalf("expired: %v", m)
	}
	if _, m := introspect(lax, true, "p@ss word"); m["active"] != true {
		t.Fatalf("lax: %v", m)
	}
	i.Revoke(tok)
	if _, m := introspect(tok, true, "p@ss word"); m["active"] != false {
		t.Fatalf("revoked: %v", m)
	}
	i.SetIntrospectionMode(IntrospectionError)
	if code, _ := introspect(tok, true, "p@ss word"); code != 500 {
		t.Fatalf("error mode: %d", code)
	}
	if n := i.IntrospectionRequests(); n != 8 {
		t.Fatalf("%d introspection requests", n)
	}
}
