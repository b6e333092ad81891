package devauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// introspect reports whether tok is active, asking as the gateway client.
func (e *env) introspect(t testing.TB, tok string) map[string]any {
	t.Helper()
	status, body := e.post(t, "/oauth/introspect", url.Values{"token": {tok}}, gatewayApp, e.secrets[gatewayApp])
	if status != http.StatusOK {
		t.Fatalf("introspect: %d %v", status, body)
	}
	return body
}

func TestCodeFlow(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		name, client, redirect string
		post                   bool // client_secret_post instead of basic
	}{
		{name: "public client", client: publicApp, redirect: publicRedir},
		{name: "confidential client basic", client: webApp, redirect: webRedir},
		{name: "confidential client post", client: webApp, redirect: webRedir, post: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, c := pkce()
			state := "state with spaces & symbols <>"
			redirect, err := e.srv.Login(context.Background(),
				e.authURL(tt.client, tt.redirect, c, map[string]string{"state": state}), alice, e.pw[alice])
			if err != nil {
				t.Fatal(err)
			}
			if got := redirect.Scheme + "://" + redirect.Host + redirect.Path; got != tt.redirect {
				t.Errorf("redirected to %s, want %s", got, tt.redirect)
			}
			if redirect.Query().Get("state") != state {
				t.Errorf("state %q, want %q", redirect.Query().Get("state"), state)
			}
			form := url.Values{"grant_type": {"authorization_code"}, "code": {redirect.Query().Get("code")},
				"redirect_uri": {tt.redirect}, "code_verifier": {v}, "client_id": {tt.client}}
			secret := e.secrets[tt.client]
			if tt.post {
				form.Set("client_secret", secret)
				secret = ""
			}
			status, body := e.token(t, form, tt.client, secret)
			if status != http.StatusOK {
				t.Fatalf("token: %d %v", status, body)
			}
			if body["token_type"] != "Bearer" || body["refresh_token"] != nil || body["scope"] != "docs:read" {
				t.Errorf("token response %v", body)
			}
			_, claims := jwtParts(t, str(body, "access_token"))
			want := map[string]any{"sub": aliceSubject, "aud": docsRes, "client_id": tt.client, "scope": "docs:read"}
			for k, w := range want {
				if claims[k] != w {
					t.Errorf("claim %s = %v, want %v", k, claims[k], w)
				}
			}
		})
	}
}

func TestPKCERefusedAtAuthorization(t *testing.T) {
	e := newEnv(t, nil)
	_, c := pkce()
	for _, tt := range []struct {
		name   string
		params map[string]string
	}{
		{"missing code_challenge", map[string]string{"code_challenge": "", "code_challenge_method": ""}},
		{"method plain", map[string]string{"code_challenge_method": "plain"}},
		{"method missing (plain by default)", map[string]string{"code_challenge_method": ""}},
		{"method unknown", map[string]string{"code_challenge_method": "S512"}},
		{"challenge too short", map[string]string{"code_challenge": c[:42]}},
		{"challenge not base64url", map[string]string{"code_challenge": c[:42] + "="}},
	} {
		for _, client := range [][2]string{{publicApp, publicRedir}, {webApp, webRedir}} {
			t.Run(tt.name+" "+client[0], func(t *testing.T) {
				redirect, err := e.srv.Login(context.Background(), e.authURL(client[0], client[1], c, tt.params), alice, e.pw[alice])
				var ae *AuthorizationError
				if !errors.As(err, &ae) || ae.Code != "invalid_request" {
					t.Fatalf("err %v, want an invalid_request redirect", err)
				}
				if redirect.Query().Get("code") != "" || !strings.HasPrefix(redirect.String(), client[1]) {
					t.Errorf("redirect %v", redirect)
				}
			})
		}
	}
}

func TestPKCERefusedAtToken(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		name     string
		verifier func(v, c string) string // "" → parameter absent
		wantErr  string
	}{
		{"missing verifier", func(string, string) string { return "" }, "invalid_request"},
		{"wrong verifier", func(string, string) string { v, _ := pkce(); return v }, "invalid_grant"},
		{"challenge as verifier (plain)", func(_, c string) string { return c }, "invalid_grant"},
		{"verifier with a changed character", func(v, _ string) string { return string(v[0]^1) + v[1:] }, "invalid_grant"},
		{"verifier with an extra character", func(v, _ string) string { return v + "A" }, "invalid_grant"},
	} {
		for _, client := range [][2]string{{publicApp, publicRedir}, {webApp, webRedir}} {
			t.Run(tt.name+" "+client[0], func(t *testing.T) {
				v, c := pkce()
				code := e.code(t, e.authURL(client[0], client[1], c, nil), alice)
				form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {client[1]},
					"client_id": {client[0]}}
				if bad := tt.verifier(v, c); bad != "" {
					form.Set("code_verifier", bad)
				}
				status, body := e.token(t, form, client[0], e.secrets[client[0]])
				if status != http.StatusBadRequest || body["error"] != tt.wantErr {
					t.Errorf("got %d %v, want 400 %s", status, body, tt.wantErr)
				}
			})
		}
	}
}

func TestRedirectURIExactMatch(t *testing.T) {
	e := newEnv(t, nil)
	_, c := pkce()
	for _, ru := range []string{
		"http://127.0.0.1:9998/callback", // another port
		"http://127.0.0.1:9999/callback/",
		"http://127.0.0.1:9999/callback?x=1",
		"http://localhost:9999/callback",
		"https://127.0.0.1:9999/callback",
		"http://127.0.0.1:9999/Callback",
		"https://evil.example.test/callback",
	} {
		t.Run(ru, func(t *testing.T) {
			redirect, err := e.srv.Login(context.Background(), e.authURL(publicApp, ru, c, nil), alice, e.pw[alice])
			if err == nil || redirect != nil || !strings.Contains(err.Error(), "400") {
				t.Fatalf("got %v, %v; want a 400 without redirect", redirect, err)
			}
		})
	}
	t.Run("token request with another redirect_uri", func(t *testing.T) {
		v, c := pkce()
		code := e.code(t, e.authURL(publicApp, publicRedir, c, nil), alice)
		status, body := e.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {publicRedir + "/"}, "code_verifier": {v}, "client_id": {publicApp}}, publicApp, "")
		if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("got %d %v", status, body)
		}
	})
}

func TestCodeSingleUse(t *testing.T) {
	e := newEnv(t, nil)
	v, c := pkce()
	code := e.code(t, e.authURL(publicApp, publicRedir, c, nil), alice)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {publicRedir},
		"code_verifier": {v}, "client_id": {publicApp}}
	status, first := e.token(t, form, publicApp, "")
	if status != http.StatusOK {
		t.Fatalf("first use: %d %v", status, first)
	}
	if e.introspect(t, str(first, "access_token"))["active"] != true {
		t.Fatal("token not active after first use")
	}
	status, second := e.token(t, form, publicApp, "")
	if status != http.StatusBadRequest || second["error"] != "invalid_grant" {
		t.Errorf("second use: %d %v, want invalid_grant", status, second)
	}
	if e.introspect(t, str(first, "access_token"))["active"] != false {
		t.Error("token issued from a replayed code is still active")
	}
}

func TestCodeExpires(t *testing.T) {
	e := newEnv(t, nil)
	v, c := pkce()
	code := e.code(t, e.authURL(publicApp, publicRedir, c, nil), alice)
	e.clock.advance(CodeTTL + time.Second)
	status, body := e.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {publicRedir}, "code_verifier": {v}, "client_id": {publicApp}}, publicApp, "")
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("got %d %v, want invalid_grant", status, body)
	}
}

func TestCodeOfAnotherClient(t *testing.T) {
	e := newEnv(t, nil)
	v, c := pkce()
	code := e.code(t, e.authURL(publicApp, publicRedir, c, nil), alice)
	status, body := e.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {publicRedir}, "code_verifier": {v}, "client_id": {webApp}}, webApp, e.secrets[webApp])
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("got %d %v, want invalid_grant", status, body)
	}
}

func TestAuthorizationRefusals(t *testing.T) {
	e := newEnv(t, nil)
	_, c := pkce()
	for _, tt := range []struct {
		name    string
		params  map[string]string
		wantErr string
	}{
		{"prompt none", map[string]string{"prompt": "none"}, "login_required"},
		{"fragment response mode", map[string]string{"response_mode": "fragment"}, "invalid_request"},
		{"form_post response mode", map[string]string{"response_mode": "form_post"}, "invalid_request"},
		{"unknown scope", map[string]string{"scope": "docs:read admin"}, "invalid_scope"},
		{"implicit", map[string]string{"response_type": "token"}, "unauthorized_client"},
		{"missing scope", map[string]string{"scope": ""}, "invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			redirect, err := e.srv.Login(context.Background(), e.authURL(publicApp, publicRedir, c, tt.params), alice, e.pw[alice])
			var ae *AuthorizationError
			if !errors.As(err, &ae) || ae.Code != tt.wantErr || redirect.Query().Get("state")+redirect.Fragment == "" {
				t.Fatalf("got %v %v, want an %s redirect with state", redirect, err, tt.wantErr)
			}
		})
	}
	t.Run("unknown client", func(t *testing.T) {
		_, err := e.srv.Login(context.Background(), e.authURL("nobody", publicRedir, c, nil), alice, e.pw[alice])
		var ae *AuthorizationError
		if err == nil || errors.As(err, &ae) {
			t.Fatalf("err %v, want a plain error (no redirect to an unverified uri)", err)
		}
	})
}

// TestGrantedScopes: granted = requested ∩ user's ∩ client's.
func TestGrantedScopes(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Clients = append(c.Clients,
			Client{ID: "writer", RedirectURIs: []string{publicRedir}, Scopes: []string{"docs:write"}},
			Client{ID: "norefresh", RedirectURIs: []string{publicRedir}, GrantTypes: []string{GrantAuthorizationCode}})
	})
	for _, tt := range []struct {
		name, client, user, scope, want string
		refresh                         bool
	}{
		{name: "all allowed", client: publicApp, user: alice, scope: "docs:read docs:write", want: "docs:read docs:write"},
		{name: "user narrows", client: publicApp, user: bob, scope: "docs:read docs:write", want: "docs:read"},
		{name: "client narrows", client: "writer", user: alice, scope: "docs:read docs:write", want: "docs:write"},
		{name: "both narrow to nothing", client: "writer", user: bob, scope: "docs:write", want: ""},
		{name: "protocol scopes kept", client: publicApp, user: bob, scope: "openid docs:read offline_access",
			want: "openid docs:read offline_access", refresh: true},
		{name: "offline_access needs the refresh grant", client: "norefresh", user: alice, scope: "offline_access docs:read",
			want: "docs:read"},
		{name: "duplicates collapse", client: publicApp, user: alice, scope: "docs:read docs:read", want: "docs:read"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := e.codeTokens(t, tt.client, publicRedir, tt.user, map[string]string{"scope": tt.scope})
			_, claims := jwtParts(t, str(body, "access_token"))
			if got := str(claims, "scope"); got != tt.want {
				t.Errorf("scope claim %q, want %q", got, tt.want)
			}
			if got := body["refresh_token"] != nil; got != tt.refresh {
				t.Errorf("refresh token issued: %v, want %v", got, tt.refresh)
			}
		})
	}
}

func TestIDTokenClaims(t *testing.T) {
	e := newEnv(t, nil)
	body := e.codeTokens(t, publicApp, publicRedir, alice, map[string]string{"scope": "openid profile email docs:read", "nonce": "n-1"})
	h, claims := jwtParts(t, str(body, "id_token"))
	if h["alg"] != "ES256" {
		t.Errorf("id token header %v", h)
	}
	want := map[string]any{"iss": e.srv.Issuer(), "sub": aliceSubject, "aud": []any{publicApp}, "nonce": "n-1"}
	for k, w := range want {
		if !cmp.Equal(claims[k], w) {
			t.Errorf("id token %s = %v, want %v", k, claims[k], w)
		}
	}
	// With an access token, profile and email claims come from userinfo
	// (OIDC Core §5.4).
	req, _ := http.NewRequest(http.MethodGet, e.srv.Issuer()+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+str(body, "access_token"))
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo: %d %v", resp.StatusCode, err)
	}
	wantInfo := map[string]any{"sub": aliceSubject, "name": "Alice <Example>", "email": "alice@example.test", "preferred_username": alice}
	if diff := cmp.Diff(wantInfo, info); diff != "" {
		t.Errorf("userinfo (-want +got):\n%s", diff)
	}
}
