package authn

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpgate/mcpgate/internal/egress"
	ti "github.com/mcpgate/mcpgate/internal/testissuer"
)

func TestMetadataURLs(t *testing.T) {
	for _, tt := range []struct {
		issuer string
		want   []string
	}{
		{"https://as.example.com", []string{
			"https://as.example.com/.well-known/oauth-authorization-server",
			"https://as.example.com/.well-known/openid-configuration",
		}},
		{"https://as.example.com/", []string{
			"https://as.example.com/.well-known/oauth-authorization-server",
			"https://as.example.com/.well-known/openid-configuration",
		}},
		{"https://as.example.com:8443/tenant1", []string{
			"https://as.example.com:8443/.well-known/oauth-authorization-server/tenant1",
			"https://as.example.com:8443/.well-known/openid-configuration/tenant1",
			"https://as.example.com:8443/tenant1/.well-known/openid-configuration",
		}},
		{"https://as.example.com/realms/a b/", []string{
			"https://as.example.com/.well-known/oauth-authorization-server/realms/a%20b",
			"https://as.example.com/.well-known/openid-configuration/realms/a%20b",
			"https://as.example.com/realms/a%20b/.well-known/openid-configuration",
		}},
	} {
		got, err := metadataURLs(tt.issuer)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("metadataURLs(%q) (-want +got):\n%s", tt.issuer, diff)
		}
	}
	if _, err := metadataURLs("as.example.com"); err == nil {
		t.Error("relative issuer accepted")
	}
}

// TestDiscoveryProbeOrder: the MCP 2025-11-25 order, stopping at the first
// location that serves matching metadata.
func TestDiscoveryProbeOrder(t *testing.T) {
	for _, tt := range []struct {
		name   string
		opts   ti.Options
		probes []string
	}{
		{"path, RFC 8414", ti.Options{Path: "/tenant1", Metadata: ti.RFC8414 | ti.OIDCPathAppend},
			[]string{"/.well-known/oauth-authorization-server/tenant1"}},
		{"path, OIDC path-insert", ti.Options{Path: "/tenant1", Metadata: ti.OIDCPathInsert | ti.OIDCPathAppend},
			[]string{"/.well-known/oauth-authorization-server/tenant1", "/.well-known/openid-configuration/tenant1"}},
		{"path, OIDC path-append", ti.Options{Path: "/tenant1", Metadata: ti.OIDCPathAppend},
			[]string{"/.well-known/oauth-authorization-server/tenant1", "/.well-known/openid-configuration/tenant1", "/tenant1/.well-known/openid-configuration"}},
		{"no path, RFC 8414", ti.Options{}, []string{"/.well-known/oauth-authorization-server"}},
		{"no path, OIDC", ti.Options{Metadata: ti.OIDCPathInsert},
			[]string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOpts{issuer: tt.opts})
			e.mustAuth(e.mint())
			if diff := cmp.Diff(tt.probes, e.iss.MetadataRequests()); diff != "" {
				t.Fatalf("probes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDiscoveryIssuerMismatch: metadata naming another issuer is never
// used; no JWKS is fetched and requests fail closed.
func TestDiscoveryIssuerMismatch(t *testing.T) {
	for _, bad := range []string{"https://evil.example.com", "", "trailing-slash"} {
		t.Run(bad, func(t *testing.T) {
			o := envOpts{issuer: ti.Options{Path: "/t", MetadataIssuer: bad}}
			switch bad {
			case "":
				o.issuer.MetadataExtra = map[string]any{"issuer": nil}
			case "trailing-slash": // configured with a slash the AS does not use
				o.issuer.MetadataIssuer = ""
				o.cfg = func(c *IssuerConfig) { c.Issuer += "/" }
			}
			e := newEnv(t, o)
			tok := e.iss.Mint(ti.Claims{Issuer: e.a.issuers[0].cfg.Issuer, Subject: "a", Audience: []string{resource}})
			_, err := e.auth(tok)
			wantReject(t, err, http.StatusServiceUnavailable, "", ReasonKeysUnavailable, tok)
			if bad != "trailing-slash" && !errors.Is(err, errIssuerMismatch) {
				t.Fatalf("err = %v", err)
			}
			if n := e.iss.JWKSFetches(); n != 0 {
				t.Fatalf("%d JWKS fetches from mismatched metadata", n)
			}
			if len(e.iss.MetadataRequests()) != 3 {
				t.Fatalf("probes %v", e.iss.MetadataRequests())
			}
		})
	}
}

// TestDiscoverySkipsMismatchedLocation: a location whose document names
// another issuer is skipped; a later one that matches is used.
func TestDiscoverySkipsMismatchedLocation(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iss := srv.URL + "/t"
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server/t":
			iss = srv.URL // the root AS, not ours
		case "/.well-known/openid-configuration/t":
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer":"` + iss + `","jwks_uri":"` + srv.URL + `/t/jwks"}`))
	}))
	defer srv.Close()
	hc := mustEgress(t, egress.Config{AllowHTTPLoopback: true})
	md, err := discover(context.Background(), hc, srv.URL+"/t")
	if err != nil {
		t.Fatal(err)
	}
	if md.jwksURI != srv.URL+"/t/jwks" {
		t.Fatalf("jwks uri %q", md.jwksURI)
	}
}

func TestDiscoveryBadDocuments(t *testing.T) {
	for _, tt := range []struct{ name, doc string }{
		{"duplicate issuer", `{"issuer":"ISS","issuer":"https://evil"}`},
		{"case-variant issuer", `{"Issuer":"https://evil","issuer":"ISS"}`},
		{"issuer not a string", `{"issuer":1}`},
		{"relative jwks_uri", `{"issuer":"ISS","jwks_uri":"/jwks"}`},
		{"no jwks_uri", `{"issuer":"ISS"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(strings.ReplaceAll(tt.doc, "ISS", srv.URL)))
			}))
			defer srv.Close()
			s := newIssuerState(IssuerConfig{Issuer: srv.URL, HTTP: mustEgress(t, egress.Config{AllowHTTPLoopback: true})}, discardLogger(), newClock().Now, hooks{})
			if err := s.fetch(context.Background(), false); err == nil {
				t.Fatal("bad metadata accepted")
			}
		})
	}
}

// TestJWKSURIOverride: with jwks_uri configured, no discovery happens.
func TestJWKSURIOverride(t *testing.T) {
	e := newEnv(t, envOpts{cfg: func(c *IssuerConfig) { c.JWKSURI = c.Issuer + "/jwks" }})
	e.mustAuth(e.mint())
	if len(e.iss.MetadataRequests()) != 0 {
		t.Fatalf("discovery happened: %v", e.iss.MetadataRequests())
	}
}

// TestSSRFGuardOnDiscoveredURL: a jwks_uri pointing at the cloud metadata
// service is refused by the egress guard.
func TestSSRFGuardOnDiscoveredURL(t *testing.T) {
	e := newEnv(t, envOpts{issuer: ti.Options{MetadataExtra: map[string]any{"jwks_uri": "https://169.254.169.254/latest/meta-data/"}}})
	tok := e.mint()
	_, err := e.auth(tok)
	wantReject(t, err, http.StatusServiceUnavailable, "", ReasonKeysUnavailable, tok)
	if !errors.Is(err, egress.ErrAddressNotAllowed) {
		t.Fatalf("err = %v", err)
	}
}
