package devauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
)

const otherRes = "https://gw.example.test/servers/other/mcp"

// TestAuthorizationResource: the authorization request's resource binds
// the code's tokens; a bad or missing one is an invalid_target redirect.
func TestAuthorizationResource(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		name      string
		resources []string // nil → parameter absent
		wantAud   string   // "" → invalid_target expected
	}{
		{name: "configured", resources: []string{docsRes}, wantAud: docsRes},
		{name: "other configured", resources: []string{mailRes}, wantAud: mailRes},
		{name: "trailing slash tolerated", resources: []string{docsRes + "/"}, wantAud: docsRes},
		{name: "missing"},
		{name: "empty", resources: []string{""}},
		{name: "two resources", resources: []string{docsRes, mailRes}},
		{name: "same resource twice", resources: []string{docsRes, docsRes}},
		{name: "relative", resources: []string{"/servers/docs/mcp"}},
		{name: "fragment", resources: []string{docsRes + "#frag"}},
		{name: "empty fragment", resources: []string{docsRes + "#"}},
		{name: "query", resources: []string{docsRes + "?x=1"}},
		{name: "unknown", resources: []string{otherRes}},
		{name: "another host", resources: []string{"https://evil.example.test/servers/docs/mcp"}},
		{name: "case differs", resources: []string{"https://gw.example.test/servers/Docs/mcp"}},
		{name: "not a url", resources: []string{"urn:example:docs"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, c := pkce()
			u, _ := url.Parse(e.authURL(publicApp, publicRedir, c, map[string]string{"resource": ""}))
			q := u.Query()
			q["resource"] = tt.resources
			u.RawQuery = q.Encode()
			redirect, err := e.srv.Login(context.Background(), u.String(), alice, e.pw[alice])
			if tt.wantAud == "" {
				var ae *AuthorizationError
				if !errors.As(err, &ae) || ae.Code != "invalid_target" {
					t.Fatalf("err %v, want invalid_target", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			status, body := e.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {redirect.Query().Get("code")},
				"redirect_uri": {publicRedir}, "code_verifier": {v}, "client_id": {publicApp}}, publicApp, "")
			if status != http.StatusOK {
				t.Fatalf("token: %d %v", status, body)
			}
			if _, claims := jwtParts(t, str(body, "access_token")); claims["aud"] != tt.wantAud {
				t.Errorf("aud %v, want %s", claims["aud"], tt.wantAud)
			}
		})
	}
}

// tokenResourceCases are the resource parameters of a code or refresh
// token request for a grant authorized for docsRes.
var tokenResourceCases = []struct {
	name      string
	resources []string
	wantErr   bool
}{
	{name: "absent"},
	{name: "same", resources: []string{docsRes}},
	{name: "trailing slash", resources: []string{docsRes + "/"}},
	{name: "another configured resource", resources: []string{mailRes}, wantErr: true},
	{name: "unknown", resources: []string{otherRes}, wantErr: true},
	{name: "two", resources: []string{docsRes, mailRes}, wantErr: true},
	{name: "fragment", resources: []string{docsRes + "#x"}, wantErr: true},
	{name: "relative", resources: []string{"docs"}, wantErr: true},
}

func checkTarget(t *testing.T, status int, body map[string]any, wantErr bool, wantAud string) {
	t.Helper()
	if wantErr {
		if status != http.StatusBadRequest || body["error"] != "invalid_target" {
			t.Fatalf("got %d %v, want 400 invalid_target", status, body)
		}
		return
	}
	if status != http.StatusOK {
		t.Fatalf("got %d %v", status, body)
	}
	if _, claims := jwtParts(t, str(body, "access_token")); claims["aud"] != wantAud {
		t.Errorf("aud %v, want %s", claims["aud"], wantAud)
	}
}

func TestCodeTokenRequestResource(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range tokenResourceCases {
		t.Run(tt.name, func(t *testing.T) {
			v, c := pkce()
			code := e.code(t, e.authURL(publicApp, publicRedir, c, nil), alice)
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {publicRedir},
				"code_verifier": {v}, "client_id": {publicApp}, "resource": tt.resources}
			status, body := e.token(t, form, publicApp, "")
			checkTarget(t, status, body, tt.wantErr, docsRes)
		})
	}
}

func TestRefreshTokenRequestResource(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range tokenResourceCases {
		t.Run(tt.name, func(t *testing.T) {
			first := e.codeTokens(t, webApp, webRedir, alice, map[string]string{"scope": "docs:read offline_access"})
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {str(first, "refresh_token")},
				"resource": tt.resources}
			status, body := e.token(t, form, webApp, e.secrets[webApp])
			checkTarget(t, status, body, tt.wantErr, docsRes)
			if tt.wantErr { // the refused request did not consume the token
				form.Del("resource")
				status, body = e.token(t, form, webApp, e.secrets[webApp])
				checkTarget(t, status, body, false, docsRes)
			}
		})
	}
}

func TestClientCredentialsResource(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		name      string
		resources []string
		wantAud   string
	}{
		{name: "docs", resources: []string{docsRes}, wantAud: docsRes},
		{name: "mail", resources: []string{mailRes}, wantAud: mailRes},
		{name: "trailing slash", resources: []string{mailRes + "/"}, wantAud: mailRes},
		{name: "missing"},
		{name: "unknown", resources: []string{otherRes}},
		{name: "two", resources: []string{docsRes, mailRes}},
		{name: "fragment", resources: []string{docsRes + "#f"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"client_credentials"}, "scope": {"docs:read"}, "resource": tt.resources}
			status, body := e.token(t, form, gatewayApp, e.secrets[gatewayApp])
			checkTarget(t, status, body, tt.wantAud == "", tt.wantAud)
		})
	}
}

func TestTokenExchangeTarget(t *testing.T) {
	e := newEnv(t, nil)
	subject := str(e.codeTokens(t, publicApp, publicRedir, alice, map[string]string{"scope": "docs:read mail:send"}), "access_token")
	for _, tt := range []struct {
		name                string
		resources, audience []string
		wantAud             string
	}{
		{name: "resource", resources: []string{mailRes}, wantAud: mailRes},
		{name: "same resource as the subject token", resources: []string{docsRes}, wantAud: docsRes},
		{name: "audience", audience: []string{mailRes}, wantAud: mailRes},
		{name: "resource and audience agree", resources: []string{mailRes}, audience: []string{mailRes + "/"}, wantAud: mailRes},
		{name: "neither"},
		{name: "resource and audience differ", resources: []string{mailRes}, audience: []string{docsRes}},
		{name: "two resources", resources: []string{mailRes, docsRes}},
		{name: "unknown resource", resources: []string{otherRes}},
		{name: "unknown audience", audience: []string{"mail"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {subject},
				"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
				"resource":           tt.resources, "audience": tt.audience}
			status, body := e.token(t, form, gatewayApp, e.secrets[gatewayApp])
			checkTarget(t, status, body, tt.wantAud == "", tt.wantAud)
		})
	}
}
