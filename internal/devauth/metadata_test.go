package devauth

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func (e *env) getJSON(t testing.TB, u string) (int, map[string]any) {
	t.Helper()
	resp, err := e.ts.Client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestMetadata(t *testing.T) {
	for _, tt := range []struct {
		name, path string
		urls       []string // relative to the origin
	}{
		{name: "issuer at the root", urls: []string{
			"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"}},
		{name: "issuer with a path", path: "/tenants/t1", urls: []string{
			"/.well-known/oauth-authorization-server/tenants/t1", // RFC 8414 §3.1 insertion
			"/.well-known/openid-configuration/tenants/t1",
			"/tenants/t1/.well-known/openid-configuration", // OIDC Discovery §4
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var origin string
			e := newEnv(t, func(c *Config) { origin = c.Issuer; c.Issuer += tt.path })
			iss := e.srv.Issuer()
			for _, u := range tt.urls {
				status, md := e.getJSON(t, origin+u)
				if status != http.StatusOK {
					t.Fatalf("%s: %d", u, status)
				}
				want := map[string]any{
					"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/oauth/token",
					"jwks_uri": iss + "/keys", "registration_endpoint": iss + "/register",
					"introspection_endpoint": iss + "/oauth/introspect", "revocation_endpoint": iss + "/revoke",
					"userinfo_endpoint":                iss + "/userinfo",
					"code_challenge_methods_supported": []any{"S256"},
					"response_types_supported":         []any{"code"},
					"response_modes_supported":         []any{"query"},
					"grant_types_supported": []any{"authorization_code", "refresh_token", "client_credentials",
						"urn:ietf:params:oauth:grant-type:token-exchange"},
					"scopes_supported":                              []any{"openid", "offline_access", "profile", "email", "docs:read", "docs:write", "mail:send"},
					"token_endpoint_auth_methods_supported":         []any{"none", "client_secret_basic", "client_secret_post"},
					"introspection_endpoint_auth_methods_supported": []any{"client_secret_basic"},
					"revocation_endpoint_auth_methods_supported":    []any{"none", "client_secret_basic", "client_secret_post"},
					"subject_types_supported":                       []any{"public"},
					"id_token_signing_alg_values_supported":         []any{"ES256"},
				}
				for k, w := range want {
					if !cmp.Equal(md[k], w) {
						t.Errorf("%s: %s = %v, want %v", u, k, md[k], w)
					}
				}
			}
			// The endpoints answer under the issuer's path.
			body := e.codeTokens(t, publicApp, publicRedir, alice, nil)
			if _, c := jwtParts(t, str(body, "access_token")); c["iss"] != iss {
				t.Errorf("iss %v", c["iss"])
			}
			status, keys := e.getJSON(t, iss+"/keys")
			ks, _ := keys["keys"].([]any)
			if status != http.StatusOK || len(ks) != 1 {
				t.Fatalf("keys: %d %v", status, keys)
			}
			k := ks[0].(map[string]any)
			if k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["use"] != "sig" || k["d"] != nil {
				t.Errorf("jwk %v", k)
			}
		})
	}
}

func TestMetadataWithoutRegistration(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DisableRegistration = true })
	_, md := e.getJSON(t, e.srv.Issuer()+"/.well-known/oauth-authorization-server")
	if _, ok := md["registration_endpoint"]; ok {
		t.Errorf("registration_endpoint advertised: %v", md["registration_endpoint"])
	}
	if !slices.Contains(md["grant_types_supported"].([]any), any("authorization_code")) {
		t.Errorf("metadata %v", md)
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t, nil)
	req, _ := http.NewRequest(http.MethodOptions, e.srv.Issuer()+"/oauth/token", nil)
	req.Header.Set("Origin", "http://localhost:6274")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	req, _ = http.NewRequest(http.MethodGet, e.srv.Issuer()+"/login?id=x", nil)
	req.Header.Set("Origin", "http://localhost:6274")
	resp, err = e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("the login page allows cross-origin reads")
	}
}
