package gateway

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/config"
)

// TestServeMountsNoAuthorizationServer proves that `mcpgate serve` cannot
// start the development authorization server, whatever the configuration
// says: the gateway does not link it, no configuration key names it, and
// none of its endpoints answer on the gateway's listener.
func TestServeMountsNoAuthorizationServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/mcpgate/mcpgate/internal/gateway").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range []string{"github.com/mcpgate/mcpgate/internal/devauth", "github.com/zitadel/oidc"} {
		if strings.Contains(string(out), pkg) {
			t.Errorf("the gateway depends on %s", pkg)
		}
	}

	for _, key := range []string{
		"development: {insecure_allow_http_loopback: true, dev_idp: true}",
		"development: {authorization_server: {enabled: true}}",
		"dev_idp: {listen: \":8081\"}",
		"devauth: {}",
	} {
		if _, err := config.Decode([]byte(key)); err == nil {
			t.Errorf("configuration key accepted: %s", key)
		}
	}

	h := newHarness(t, harnessOptions{})
	for _, path := range []string{
		"/authorize", "/oauth/token", "/oauth/introspect", "/revoke", "/keys", "/userinfo",
		"/login", "/register", "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
		"/.well-known/jwks.json",
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req, _ := http.NewRequest(method, h.srv.URL+path, strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s = %d, want 404", method, path, resp.StatusCode)
			}
		}
	}
}
