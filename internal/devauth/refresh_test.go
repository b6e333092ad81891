package devauth

import (
	"crypto/rand"
	"net/http"
	"net/url"
	"testing"
	"time"
)

func refreshForm(tok string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}
}

func TestRefreshRotation(t *testing.T) {
	for _, tt := range []struct{ client, redirect string }{{publicApp, publicRedir}, {webApp, webRedir}} {
		t.Run(tt.client, func(t *testing.T) {
			e := newEnv(t, nil)
			first := e.codeTokens(t, tt.client, tt.redirect, alice, map[string]string{"scope": "docs:read docs:write offline_access"})
			form := refreshForm(str(first, "refresh_token"))
			form.Set("client_id", tt.client)
			status, second := e.token(t, form, tt.client, e.secrets[tt.client])
			if status != http.StatusOK {
				t.Fatalf("refresh: %d %v", status, second)
			}
			if str(second, "refresh_token") == "" || second["refresh_token"] == first["refresh_token"] {
				t.Fatalf("refresh token not rotated: %v", second)
			}
			if _, c := jwtParts(t, str(second, "access_token")); c["sub"] != aliceSubject || c["client_id"] != tt.client {
				t.Errorf("claims %v", c)
			}

			// The rotated-out token is refused, and presenting it revokes
			// the whole grant (OAuth 2.1 §4.3.1).
			status, body := e.token(t, form, tt.client, e.secrets[tt.client])
			if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Fatalf("old token: %d %v, want invalid_grant", status, body)
			}
			form.Set("refresh_token", str(second, "refresh_token"))
			if status, body = e.token(t, form, tt.client, e.secrets[tt.client]); status != http.StatusBadRequest {
				t.Errorf("new token after reuse: %d %v, want refused", status, body)
			}
			for _, at := range []string{str(first, "access_token"), str(second, "access_token")} {
				if e.introspect(t, at)["active"] != false {
					t.Error("access token of a revoked grant still active")
				}
			}
		})
	}
}

func TestRefreshNarrowsScope(t *testing.T) {
	e := newEnv(t, nil)
	first := e.codeTokens(t, webApp, webRedir, alice, map[string]string{"scope": "docs:read docs:write offline_access"})
	form := refreshForm(str(first, "refresh_token"))
	form.Set("scope", "docs:read")
	status, second := e.token(t, form, webApp, e.secrets[webApp])
	if _, c := jwtParts(t, str(second, "access_token")); status != http.StatusOK || c["scope"] != "docs:read" {
		t.Fatalf("narrowed refresh: %d %v", status, second)
	}
	// The new refresh token keeps the grant's scopes.
	form = refreshForm(str(second, "refresh_token"))
	status, third := e.token(t, form, webApp, e.secrets[webApp])
	if _, c := jwtParts(t, str(third, "access_token")); status != http.StatusOK || c["scope"] != "docs:read docs:write offline_access" {
		t.Fatalf("next refresh: %d %v", status, third)
	}
	form = refreshForm(str(third, "refresh_token"))
	form.Set("scope", "mail:send")
	if status, body := e.token(t, form, webApp, e.secrets[webApp]); status != http.StatusBadRequest || body["error"] != "invalid_scope" {
		t.Errorf("widened refresh: %d %v, want invalid_scope", status, body)
	}
}

func TestRefreshRefusals(t *testing.T) {
	secret2 := "s-" + rand.Text()
	e := newEnv(t, func(c *Config) {
		c.RefreshTokenTTL = time.Hour
		c.Clients = append(c.Clients, Client{ID: "web2", Secret: secret2, RedirectURIs: []string{webRedir}})
	})
	e.secrets["web2"] = secret2
	get := func() string {
		return str(e.codeTokens(t, webApp, webRedir, alice, map[string]string{"scope": "docs:read offline_access"}), "refresh_token")
	}
	for _, tt := range []struct {
		name           string
		token          func() string
		client, secret string
		before         func()
		wantStatus     int
		wantErr        string
	}{
		{name: "unknown token", token: func() string { return "rt_unknown" }, client: webApp, wantStatus: 400, wantErr: "invalid_grant"},
		{name: "another client's token", token: get, client: "web2", wantStatus: 400, wantErr: "invalid_grant"},
		{name: "client without the refresh grant", token: get, client: gatewayApp, wantStatus: 400, wantErr: "unauthorized_client"},
		{name: "wrong secret", token: get, client: webApp, secret: "wrong", wantStatus: 401, wantErr: "invalid_client"},
		{name: "expired", token: get, client: webApp, before: func() { e.clock.advance(time.Hour + time.Second) },
			wantStatus: 400, wantErr: "invalid_grant"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token()
			if tt.before != nil {
				tt.before()
			}
			secret := tt.secret
			if secret == "" {
				secret = e.secrets[tt.client]
			}
			status, body := e.token(t, refreshForm(tok), tt.client, secret)
			if status != tt.wantStatus || body["error"] != tt.wantErr {
				t.Errorf("got %d %v, want %d %s", status, body, tt.wantStatus, tt.wantErr)
			}
		})
	}
}
