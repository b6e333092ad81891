package authn

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mcpgate/mcpgate/internal/egress"
	ti "github.com/mcpgate/mcpgate/internal/testissuer"
)

func mustEgress(t testing.TB, cfg egress.Config) *egress.Client {
	t.Helper()
	hc, err := egress.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return hc
}

func TestAcceptsEveryAlgorithm(t *testing.T) {
	algs := []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	e := newEnv(t, envOpts{cfg: func(c *IssuerConfig) { c.Algorithms = algs }})
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			e.mustAuth(e.mint(ti.WithAlg(alg)))
			e.mustAuth(e.mint(ti.WithAlg(alg), ti.WithoutKID())) // bounded no-kid search
		})
	}
	if n := e.iss.JWKSFetches(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1", n)
	}
}

func TestIdentity(t *testing.T) {
	e := newEnv(t, envOpts{})
	now := e.clk.Now()
	c := ti.Claims{
		Subject: "alice", ClientID: "client-1", JTI: "j-1",
		Audience: []string{"https://other", resource + "/"}, // trailing slash tolerated
		Scope:    "docs:write docs:read  docs:read",
		IssuedAt: now.Add(-time.Minute), Expiry: now.Add(10 * time.Minute),
		Actor: []string{"gateway", "agent"},
	}
	tok := e.iss.Mint(c)
	got := e.mustAuth(tok)
	want := &Identity{
		Issuer: e.iss.URL(), Subject: "alice", ClientID: "client-1", TokenID: "j-1",
		Scopes:   []string{"docs:read", "docs:write"},
		Audience: c.Audience, IssuedAt: c.IssuedAt, Expiry: c.Expiry,
		Actor: []string{"gateway", "agent"},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Identity{}, "Fingerprint")); diff != "" {
		t.Fatalf("identity (-want +got):\n%s", diff)
	}
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(got.Fingerprint) {
		t.Fatalf("fingerprint %q", got.Fingerprint)
	}
	noTokenBytes(t, tok, got.Fingerprint)
}

func TestScopeForms(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, tt := range []struct {
		name  string
		extra map[string]any
		want  []string
	}{
		{"scp array", map[string]any{"scp": []string{"b", "a", "b"}}, []string{"a", "b"}},
		{"scp string", map[string]any{"scp": "b a"}, []string{"a", "b"}},
		{"scope wins over scp", map[string]any{"scope": "x", "scp": []string{"y"}}, []string{"x"}},
		{"none", nil, nil},
		{"azp fallback", map[string]any{"client_id": nil, "azp": "c-azp"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := e.claims()
			c.Scope = ""
			c.Extra = tt.extra
			id := e.mustAuth(e.iss.Mint(c))
			if diff := cmp.Diff(tt.want, id.Scopes); diff != "" {
				t.Fatalf("scopes (-want +got):\n%s", diff)
			}
			if tt.name == "azp fallback" && id.ClientID != "c-azp" {
				t.Fatalf("client id %q", id.ClientID)
			}
		})
	}
}

func TestTypAndSkew(t *testing.T) {
	for _, tt := range []struct {
		name   string
		legacy bool
		opts   []ti.MintOption
		ok     bool
	}{
		{"at+jwt", false, nil, true},
		{"application/at+jwt", false, []ti.MintOption{ti.WithType("application/at+jwt")}, true},
		{"AT+JWT", false, []ti.MintOption{ti.WithType("Application/AT+JWT")}, true},
		{"JWT strict", false, []ti.MintOption{ti.WithType("JWT")}, false},
		{"JWT legacy", true, []ti.MintOption{ti.WithType("JWT")}, true},
		{"absent strict", false, []ti.MintOption{ti.WithoutType()}, false},
		{"absent legacy", true, []ti.MintOption{ti.WithoutType()}, true},
		{"other legacy", true, []ti.MintOption{ti.WithType("dpop+jwt")}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOpts{cfg: func(c *IssuerConfig) { c.AllowLegacyJWTType = tt.legacy }})
			_, err := e.auth(e.mint(tt.opts...))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	e := newEnv(t, envOpts{})
	now := e.clk.Now()
	c := e.claims()
	c.Expiry, c.NotBefore, c.IssuedAt = now.Add(-59*time.Second), now.Add(59*time.Second), now.Add(59*time.Second)
	e.mustAuth(e.iss.Mint(c)) // all within the 60s skew
}

func TestCache(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.mint()
	first := e.mustAuth(tok)
	if got := e.a.verifications.Load(); got != 1 {
		t.Fatalf("%d verifications", got)
	}
	for range 3 {
		if id := e.mustAuth(tok); id != first {
			t.Fatal("cache hit returned another identity")
		}
	}
	if got := e.a.verifications.Load(); got != 1 {
		t.Fatalf("cache hits did signature work: %d verifications", got)
	}

	// A hit rechecks the route.
	ctx := context.Background()
	_, err := e.a.Authenticate(ctx, Request{Header: bearer(tok), Resource: "https://gw.example.com/servers/mail/mcp"})
	wantReject(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonWrongAudience, tok)
	_, err = e.a.Authenticate(ctx, Request{Header: bearer(tok), Resource: resource, Issuers: []string{}})
	wantReject(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonIssuerNotAllowed, tok)
	if _, err := e.a.Authenticate(ctx, Request{Header: bearer(tok), Resource: resource, Issuers: []string{e.iss.URL()}}); err != nil {
		t.Fatal(err)
	}
	// ... and expiry: valid up to exp+skew, not after.
	e.clk.Advance(5*time.Minute + 59*time.Second)
	e.mustAuth(tok)
	e.clk.Advance(time.Second)
	_, err = e.auth(tok)
	wantReject(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonExpired, tok)
	if got := e.a.verifications.Load(); got != 1 {
		t.Fatalf("%d verifications", got)
	}
}

func TestCacheBounded(t *testing.T) {
	e := newEnv(t, envOpts{top: func(c *Config) { c.CacheSize = 2 }})
	toks := []string{e.mint(), e.mint(), e.mint()}
	for _, tok := range toks {
		e.mustAuth(tok)
	}
	if n := e.a.cache.len(); n != 2 {
		t.Fatalf("cache holds %d entries, want 2", n)
	}
	e.mustAuth(toks[2]) // most recent: a hit
	e.mustAuth(toks[0]) // evicted: verified again
	if got := e.a.verifications.Load(); got != 4 {
		t.Fatalf("%d verifications, want 4", got)
	}
}

func TestConfigValidation(t *testing.T) {
	hc := mustEgress(t, egress.Config{})
	ok := IssuerConfig{Issuer: "https://as.example.com", HTTP: hc}
	for _, tt := range []struct {
		name string
		cfg  Config
		want []string // substrings of the joined error
	}{
		{"no issuers", Config{}, []string{"no issuers"}},
		{"everything wrong at once", Config{MaxTokenBytes: -1, CacheSize: -1, Issuers: []IssuerConfig{
			{Issuer: "as.example.com", Algorithms: []string{"HS256", "none"}, ClockSkew: 301 * time.Second, MaxStale: -1,
				BreakerFailures: -1, BreakerOpenTimeout: -time.Second},
			{Issuer: "https://as.example.com?x=1", HTTP: hc, JWKSURI: "/jwks",
				Introspection: &IntrospectionConfig{AuthMethod: "private_key_jwt"}},
		}}, []string{"max token bytes", "cache size", "absolute https", `"HS256" not allowed`, `"none" not allowed`,
			"clock skew", "max stale", "breaker failures", "breaker open timeout", "no http client", "jwks uri", "client id and secret", "private_key_jwt"}},
		{"duplicate issuer", Config{Issuers: []IssuerConfig{ok, ok}}, []string{"configured twice"}},
		{"too many breaker failures", Config{Issuers: []IssuerConfig{{Issuer: ok.Issuer, HTTP: hc, BreakerFailures: MaxBreakerFailures + 1}}},
			[]string{"breaker failures must be between"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, Deps{})
			if err == nil {
				t.Fatal("New accepted an invalid config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	a, err := New(Config{Issuers: []IssuerConfig{ok}}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	s := a.issuers[0].cfg
	if s.ClockSkew != DefaultClockSkew || s.MaxStale != DefaultMaxStale || s.RefreshInterval != DefaultRefreshInterval ||
		s.UnknownKIDCooldown != DefaultUnknownKIDCooldown || s.BreakerFailures != DefaultBreakerFailures ||
		s.BreakerOpenTimeout != DefaultBreakerOpenTimeout || !cmp.Equal(s.Algorithms, []string{"RS256"}) || a.maxTokenBytes != DefaultMaxTokenBytes {
		t.Fatalf("defaults not applied: %+v", s)
	}
}

func TestErrorsAsError(t *testing.T) {
	e := newEnv(t, envOpts{})
	_, err := e.auth("not-a-jwt")
	var ae *Error
	if !errors.As(err, &ae) || !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("err = %v", err)
	}
	if ae.Unwrap() == nil {
		t.Fatal("no cause")
	}
	id, err := e.a.Authenticate(context.Background(), Request{Header: http.Header{}, Resource: resource})
	if id != nil || !errors.Is(err, ErrNoToken) {
		t.Fatalf("no token: %v", err)
	}
}
