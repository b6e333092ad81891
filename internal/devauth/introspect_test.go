package devauth

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestIntrospectionActive(t *testing.T) {
	e := newEnv(t, nil)
	tok := str(e.codeTokens(t, publicApp, publicRedir, alice, map[string]string{"scope": "docs:read docs:write"}), "access_token")
	_, claims := jwtParts(t, tok)
	got := e.introspect(t, tok)
	want := map[string]any{
		"active": true, "scope": "docs:read docs:write", "client_id": publicApp, "token_type": "Bearer",
		"exp": claims["exp"], "iat": claims["iat"], "sub": aliceSubject, "aud": []any{docsRes},
		"iss": e.srv.Issuer(), "jti": claims["jti"], "username": alice,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("introspection (-want +got):\n%s", diff)
	}
}

func TestIntrospectionRequiresClientAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	tok := str(e.codeTokens(t, publicApp, publicRedir, alice, nil), "access_token")
	for _, tt := range []struct {
		name           string
		form           url.Values
		client, secret string
	}{
		{name: "none", form: url.Values{"token": {tok}}},
		{name: "public client id", form: url.Values{"token": {tok}, "client_id": {publicApp}}},
		{name: "wrong secret", form: url.Values{"token": {tok}}, client: gatewayApp, secret: "wrong"},
		{name: "unknown client", form: url.Values{"token": {tok}}, client: "nobody", secret: "x"},
		{name: "public client with a secret", form: url.Values{"token": {tok}}, client: publicApp, secret: "x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if status, body := e.post(t, "/oauth/introspect", tt.form, tt.client, tt.secret); status != http.StatusUnauthorized {
				t.Errorf("got %d %v, want 401", status, body)
			}
		})
	}
}

func TestIntrospectionInactive(t *testing.T) {
	e := newEnv(t, nil)
	tokens := e.codeTokens(t, webApp, webRedir, alice, map[string]string{"scope": "openid docs:read offline_access"})
	expiring := str(e.codeTokens(t, publicApp, publicRedir, alice, nil), "access_token")
	other := newEnv(t, nil) // another server: another key and issuer
	foreign := str(other.codeTokens(t, publicApp, publicRedir, alice, nil), "access_token")
	for _, tt := range []struct {
		name   string
		token  string
		before func()
	}{
		{name: "garbage", token: "not-a-token"},
		{name: "empty", token: ""},
		{name: "id token", token: str(tokens, "id_token")},
		{name: "refresh token", token: str(tokens, "refresh_token")},
		{name: "another server's token", token: foreign},
		{name: "tampered", token: str(tokens, "access_token")[:len(str(tokens, "access_token"))-2] + "AA"},
		{name: "expired", token: expiring, before: func() { e.clock.advance(DefaultAccessTokenTTL + time.Second) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			if got := e.introspect(t, tt.token); !cmp.Equal(got, map[string]any{"active": false}) {
				t.Errorf("got %v, want inactive", got)
			}
		})
	}
}

func TestRevocation(t *testing.T) {
	e := newEnv(t, nil)
	revoke := func(tok, hint, client string) (int, map[string]any) {
		form := url.Values{"token": {tok}}
		if hint != "" {
			form.Set("token_type_hint", hint)
		}
		if e.secrets[client] == "" {
			form.Set("client_id", client)
		}
		return e.post(t, "/revoke", form, client, e.secrets[client])
	}
	for _, hint := range []string{"", "access_token", "refresh_token"} {
		t.Run("access token, hint "+hint, func(t *testing.T) {
			tok := str(e.codeTokens(t, publicApp, publicRedir, alice, nil), "access_token")
			if status, body := revoke(tok, hint, publicApp); status != http.StatusOK {
				t.Fatalf("revoke: %d %v", status, body)
			}
			if e.introspect(t, tok)["active"] != false {
				t.Error("revoked access token still active")
			}
		})
	}
	t.Run("refresh token revokes its grant", func(t *testing.T) {
		tokens := e.codeTokens(t, webApp, webRedir, alice, map[string]string{"scope": "docs:read offline_access"})
		if status, body := revoke(str(tokens, "refresh_token"), "refresh_token", webApp); status != http.StatusOK {
			t.Fatalf("revoke: %d %v", status, body)
		}
		if e.introspect(t, str(tokens, "access_token"))["active"] != false {
			t.Error("access token of the revoked grant still active")
		}
		if status, _ := e.token(t, refreshForm(str(tokens, "refresh_token")), webApp, e.secrets[webApp]); status != http.StatusBadRequest {
			t.Errorf("revoked refresh token: %d, want 400", status)
		}
	})
	t.Run("another client's token is refused", func(t *testing.T) {
		tok := str(e.codeTokens(t, publicApp, publicRedir, alice, nil), "access_token")
		if status, body := revoke(tok, "", webApp); status != http.StatusBadRequest || body["error"] != "unauthorized_client" {
			t.Errorf("got %d %v", status, body)
		}
		if e.introspect(t, tok)["active"] != true {
			t.Error("token revoked by another client")
		}
	})
	t.Run("unknown token is not an error", func(t *testing.T) {
		if status, body := revoke("unknown", "", publicApp); status != http.StatusOK {
			t.Errorf("got %d %v, want 200 (RFC 7009 §2.2)", status, body)
		}
	})
	t.Run("confidential client must authenticate", func(t *testing.T) {
		tok := str(e.codeTokens(t, webApp, webRedir, alice, nil), "access_token")
		status, _ := e.post(t, "/revoke", url.Values{"token": {tok}}, webApp, "wrong")
		status2, _ := e.post(t, "/revoke", url.Values{"token": {tok}, "client_id": {webApp}}, "", "")
		if status != http.StatusUnauthorized || status2 != http.StatusUnauthorized {
			t.Errorf("got %d and %d, want 401", status, status2)
		}
		if e.introspect(t, tok)["active"] != true {
			t.Error("token revoked without client authentication")
		}
	})
}
