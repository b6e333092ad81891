package devauth

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const accessTokenTypeURN = "urn:ietf:params:oauth:token-type:access_token"

func exchangeForm(subject string, extra url.Values) url.Values {
	f := url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {subject},
		"subject_token_type": {accessTokenTypeURN}, "resource": {mailRes}}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func TestTokenExchange(t *testing.T) {
	e := newEnv(t, nil)
	subject := str(e.codeTokens(t, publicApp, publicRedir, alice, map[string]string{"scope": "docs:read mail:send"}), "access_token")
	status, body := e.token(t, exchangeForm(subject, nil), gatewayApp, e.secrets[gatewayApp])
	if status != http.StatusOK {
		t.Fatalf("exchange: %d %v", status, body)
	}
	if body["issued_token_type"] != accessTokenTypeURN || body["token_type"] != "Bearer" || body["refresh_token"] != nil {
		t.Errorf("response %v", body)
	}
	h, c := jwtParts(t, str(body, "access_token"))
	want := map[string]any{"sub": aliceSubject, "aud": mailRes, "client_id": gatewayApp, "scope": "docs:read mail:send",
		"act": map[string]any{"sub": gatewayApp}}
	for k, w := range want {
		if !cmp.Equal(c[k], w) {
			t.Errorf("claim %s = %v, want %v", k, c[k], w)
		}
	}
	if h["typ"] != "at+jwt" {
		t.Errorf("typ %v", h["typ"])
	}

	// Exchanging the exchanged token nests the previous actor.
	secret2 := e.secrets[gatewayApp]
	status, body2 := e.token(t, exchangeForm(str(body, "access_token"), url.Values{"resource": {docsRes}}), gatewayApp, secret2)
	if status != http.StatusOK {
		t.Fatalf("second exchange: %d %v", status, body2)
	}
	_, c2 := jwtParts(t, str(body2, "access_token"))
	if want := map[string]any{"sub": gatewayApp, "act": map[string]any{"sub": gatewayApp}}; !cmp.Equal(c2["act"], want) {
		t.Errorf("nested act %v, want %v", c2["act"], want)
	}
	if got := e.introspect(t, str(body, "access_token")); !cmp.Equal(got["act"], map[string]any{"sub": gatewayApp}) {
		t.Errorf("introspected act %v", got["act"])
	}
}

func TestTokenExchangeRefusals(t *testing.T) {
	e := newEnv(t, nil)
	subject := str(e.codeTokens(t, publicApp, publicRedir, alice, map[string]string{"scope": "docs:read"}), "access_token")
	revoked := str(e.codeTokens(t, publicApp, publicRedir, alice, nil), "access_token")
	if status, _ := e.post(t, "/revoke", url.Values{"token": {revoked}, "client_id": {publicApp}}, publicApp, ""); status != http.StatusOK {
		t.Fatal("revoke failed")
	}
	cc := func() string {
		_, b := e.clientCredentials(t, gatewayApp, docsRes, "docs:read")
		return str(b, "access_token")
	}()
	for _, tt := range []struct {
		name           string
		form           url.Values
		client, secret string
		wantStatus     int
		wantErr        string
	}{
		{name: "client without the grant", form: exchangeForm(subject, nil), client: limitedApp, wantStatus: 400, wantErr: "unauthorized_client"},
		{name: "public client", form: exchangeForm(subject, url.Values{"client_id": {publicApp}}), client: publicApp, secret: "-", wantStatus: 401, wantErr: "invalid_client"},
		{name: "wrong secret", form: exchangeForm(subject, nil), client: gatewayApp, secret: "wrong", wantStatus: 401, wantErr: "invalid_client"},
		{name: "garbage subject token", form: exchangeForm("not-a-token", nil), client: gatewayApp, wantStatus: 400, wantErr: "invalid_request"},
		{name: "revoked subject token", form: exchangeForm(revoked, nil), client: gatewayApp, wantStatus: 400, wantErr: "invalid_request"},
		{name: "missing subject token", form: exchangeForm("", nil), client: gatewayApp, wantStatus: 400, wantErr: "invalid_request"},
		{name: "id token type", form: exchangeForm(subject, url.Values{"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}}),
			client: gatewayApp, wantStatus: 400, wantErr: "invalid_request"},
		{name: "actor token", form: exchangeForm(subject, url.Values{"actor_token": {cc}, "actor_token_type": {accessTokenTypeURN}}),
			client: gatewayApp, wantStatus: 400, wantErr: "invalid_request"},
		{name: "refresh token requested", form: exchangeForm(subject, url.Values{"requested_token_type": {"urn:ietf:params:oauth:token-type:refresh_token"}}),
			client: gatewayApp, wantStatus: 400, wantErr: "invalid_request"},
		{name: "wider scope", form: exchangeForm(subject, url.Values{"scope": {"docs:read mail:send"}}), client: gatewayApp, wantStatus: 400, wantErr: "invalid_scope"},
		{name: "unknown scope", form: exchangeForm(subject, url.Values{"scope": {"admin"}}), client: gatewayApp, wantStatus: 400, wantErr: "invalid_scope"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			secret := tt.secret
			switch secret {
			case "":
				secret = e.secrets[tt.client]
			case "-":
				secret = ""
			}
			status, body := e.token(t, tt.form, tt.client, secret)
			if status != tt.wantStatus || body["error"] != tt.wantErr {
				t.Errorf("got %d %v, want %d %s", status, body, tt.wantStatus, tt.wantErr)
			}
		})
	}
}
