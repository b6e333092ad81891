package devauth

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func (e *env) register(t testing.TB, contentType, body string) (int, map[string]any) {
	t.Helper()
	resp, err := e.ts.Client().Post(e.srv.Issuer()+"/register", contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("register: %d, not JSON: %q", resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

func TestRegistrationAccepted(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		name, body string
		want       map[string]any // members of the response besides the generated ones
		secret     bool
	}{
		{
			name: "MCP public client",
			body: `{"redirect_uris":["http://127.0.0.1:33418/callback"],"token_endpoint_auth_method":"none",` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"client_name":"Agent","x-unknown":1}`,
			want: map[string]any{"redirect_uris": []any{"http://127.0.0.1:33418/callback"}, "token_endpoint_auth_method": "none",
				"grant_types": []any{"authorization_code", "refresh_token"}, "response_types": []any{"code"}, "client_name": "Agent"},
		},
		{
			name: "defaults: client_secret_basic, authorization_code, code",
			body: `{"redirect_uris":["https://app.example.test/cb"]}`,
			want: map[string]any{"redirect_uris": []any{"https://app.example.test/cb"}, "token_endpoint_auth_method": "client_secret_basic",
				"grant_types": []any{"authorization_code"}, "response_types": []any{"code"}},
			secret: true,
		},
		{
			name: "client credentials only",
			body: `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_post","scope":" docs:read  mail:send "}`,
			want: map[string]any{"redirect_uris": []any{}, "token_endpoint_auth_method": "client_secret_post",
				"grant_types": []any{"client_credentials"}, "response_types": []any{}, "scope": "docs:read mail:send"},
			secret: true,
		},
		{
			name: "loopback hosts",
			body: `{"redirect_uris":["http://localhost/cb","http://[::1]:8080/cb","http://127.0.0.1/cb?x=1"],"token_endpoint_auth_method":"none"}`,
			want: map[string]any{"redirect_uris": []any{"http://localhost/cb", "http://[::1]:8080/cb", "http://127.0.0.1/cb?x=1"},
				"token_endpoint_auth_method": "none", "grant_types": []any{"authorization_code"}, "response_types": []any{"code"}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, got := e.register(t, "application/json; charset=utf-8", tt.body)
			if status != http.StatusCreated {
				t.Fatalf("got %d %v", status, got)
			}
			id := str(got, "client_id")
			if !strings.HasPrefix(id, "dcr_") || got["client_id_issued_at"] == nil {
				t.Errorf("client_id %q issued_at %v", id, got["client_id_issued_at"])
			}
			if secret := str(got, "client_secret"); (secret != "") != tt.secret || (tt.secret && got["client_secret_expires_at"] != 0.0) {
				t.Errorf("secret %q expires %v, want secret %v", secret, got["client_secret_expires_at"], tt.secret)
			}
			for _, k := range []string{"client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at"} {
				delete(got, k)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRegisteredClientsWork runs the code flow with a registered public
// client and client credentials with a registered confidential one.
func TestRegisteredClientsWork(t *testing.T) {
	e := newEnv(t, nil)
	_, pub := e.register(t, "application/json",
		`{"redirect_uris":["http://127.0.0.1:4000/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`)
	body := e.codeTokens(t, str(pub, "client_id"), "http://127.0.0.1:4000/cb", alice, map[string]string{"scope": "docs:read offline_access"})
	if body["refresh_token"] == nil {
		t.Errorf("no refresh token: %v", body)
	}
	_, conf := e.register(t, "application/json", `{"grant_types":["client_credentials"],"scope":"docs:read"}`)
	e.secrets[str(conf, "client_id")] = str(conf, "client_secret")
	status, cc := e.clientCredentials(t, str(conf, "client_id"), mailRes, "docs:read mail:send")
	if _, c := jwtParts(t, str(cc, "access_token")); status != http.StatusOK || c["scope"] != "docs:read" || c["aud"] != mailRes {
		t.Errorf("client credentials: %d %v", status, cc)
	}
}

func TestRegistrationRefused(t *testing.T) {
	e := newEnv(t, nil)
	const (
		redirect = `"redirect_uris":["https://app.example.test/cb"]`
		badURI   = "invalid_redirect_uri"
		badMeta  = "invalid_client_metadata"
	)
	for _, tt := range []struct {
		name, contentType, body, wantErr string
		wantStatus                       int
	}{
		{name: "http on a public host", body: `{"redirect_uris":["http://app.example.test/cb"]}`, wantErr: badURI},
		{name: "http on a private address", body: `{"redirect_uris":["http://10.0.0.1/cb"]}`, wantErr: badURI},
		{name: "http on 127.0.0.2", body: `{"redirect_uris":["http://127.0.0.2/cb"]}`, wantErr: badURI},
		{name: "fragment", body: `{"redirect_uris":["https://app.example.test/cb#x"]}`, wantErr: badURI},
		{name: "empty fragment", body: `{"redirect_uris":["https://app.example.test/cb#"]}`, wantErr: badURI},
		{name: "custom scheme", body: `{"redirect_uris":["com.example.app:/cb"]}`, wantErr: badURI},
		{name: "javascript", body: `{"redirect_uris":["javascript:alert(1)"]}`, wantErr: badURI},
		{name: "relative", body: `{"redirect_uris":["/cb"]}`, wantErr: badURI},
		{name: "user info", body: `{"redirect_uris":["https://user:pw@app.example.test/cb"]}`, wantErr: badURI},
		{name: "empty uri", body: `{"redirect_uris":[""]}`, wantErr: badURI},
		{name: "no redirect uris for the code grant", body: `{"token_endpoint_auth_method":"none"}`, wantErr: badURI},
		{name: "one bad among good", body: `{"redirect_uris":["https://app.example.test/cb","http://evil.example.test/cb"]}`, wantErr: badURI},
		{name: "unknown auth method", body: `{` + redirect + `,"token_endpoint_auth_method":"private_key_jwt"}`, wantErr: badMeta},
		{name: "implicit grant", body: `{` + redirect + `,"grant_types":["implicit"]}`, wantErr: badMeta},
		{name: "token exchange grant", body: `{` + redirect + `,"grant_types":["` + GrantTokenExchange + `"]}`, wantErr: badMeta},
		{name: "password grant", body: `{` + redirect + `,"grant_types":["password"]}`, wantErr: badMeta},
		{name: "token response type", body: `{` + redirect + `,"response_types":["token"]}`, wantErr: badMeta},
		{name: "code response type without the code grant", body: `{"grant_types":["client_credentials"],"response_types":["code"]}`, wantErr: badMeta},
		{name: "code grant without code response type", body: `{` + redirect + `,"response_types":[]}`, wantErr: badMeta},
		{name: "public client credentials", body: `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"none"}`, wantErr: badMeta},
		{name: "unknown scope", body: `{` + redirect + `,"scope":"docs:read admin"}`, wantErr: badMeta},
		{name: "control character in name", body: `{` + redirect + `,"client_name":"a\u0007b"}`, wantErr: badMeta},
		{name: "long name", body: `{` + redirect + `,"client_name":"` + strings.Repeat("n", 201) + `"}`, wantErr: badMeta},
		{name: "wrong member type", body: `{"redirect_uris":"https://app.example.test/cb"}`, wantErr: badMeta},
		{name: "not an object", body: `["https://app.example.test/cb"]`, wantErr: badMeta},
		{name: "null", body: `null`, wantErr: badMeta},
		{name: "empty body", body: ``, wantErr: badMeta},
		{name: "malformed", body: `{"redirect_uris":[`, wantErr: badMeta},
		{name: "trailing data", body: `{` + redirect + `} {}`, wantErr: badMeta},
		{name: "invalid utf-8", body: "{\"client_name\":\"\xff\"," + redirect + "}", wantErr: badMeta},
		{name: "form content type", contentType: "application/x-www-form-urlencoded", body: `{` + redirect + `}`, wantErr: badMeta},
		{name: "too large", body: `{"client_name":"` + strings.Repeat("x", maxRegistrationBytes) + `"}`, wantErr: badMeta,
			wantStatus: http.StatusRequestEntityTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			want := tt.wantStatus
			if want == 0 {
				want = http.StatusBadRequest
			}
			status, got := e.register(t, ct, tt.body)
			if status != want || got["error"] != tt.wantErr || str(got, "error_description") == "" {
				t.Errorf("got %d %v, want %d %s with a description", status, got, want, tt.wantErr)
			}
		})
	}
}

func TestRegistrationLimit(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.store.mu.Lock()
	e.srv.store.registered = MaxRegisteredClients - 1
	e.srv.store.mu.Unlock()
	body := `{"redirect_uris":["https://app.example.test/cb"]}`
	if status, got := e.register(t, "application/json", body); status != http.StatusCreated {
		t.Fatalf("last allowed: %d %v", status, got)
	}
	if status, got := e.register(t, "application/json", body); status != http.StatusServiceUnavailable {
		t.Errorf("over the limit: %d %v, want 503", status, got)
	}
}

func TestRegistrationDisabledAndMethods(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DisableRegistration = true })
	resp, err := e.ts.Client().Post(e.srv.Issuer()+"/register", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("disabled registration: %d, want 404", resp.StatusCode)
	}
	e2 := newEnv(t, nil)
	resp, err = e2.ts.Client().Get(e2.srv.Issuer() + "/register")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /register: %d, want 405", resp.StatusCode)
	}
}
