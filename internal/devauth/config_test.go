package devauth

import (
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		Issuer:    "http://127.0.0.1:9400",
		Users:     []User{{Username: "u", Password: "p"}},
		Clients:   []Client{{ID: "c", RedirectURIs: []string{"http://127.0.0.1/cb"}}},
		Resources: []string{docsRes},
		Scopes:    []string{"docs:read"},
	}
}

func TestNewValid(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*Config)
	}{
		{"minimal", func(*Config) {}},
		{"https issuer with a path", func(c *Config) { c.Issuer = "https://idp.example.test/tenant-1/oauth" }},
		{"no users, confidential client only", func(c *Config) {
			c.Users = nil
			c.Clients = []Client{{ID: "svc", Secret: "s", GrantTypes: []string{GrantClientCredentials}}}
		}},
		{"no scopes", func(c *Config) { c.Scopes = nil }},
		{"ipv6 loopback redirect", func(c *Config) { c.Clients[0].RedirectURIs = []string{"http://[::1]:8080/cb"} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.mod(&cfg)
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if s.Issuer() != cfg.Issuer || s.cfg.AccessTokenTTL != DefaultAccessTokenTTL || s.cfg.RefreshTokenTTL != DefaultRefreshTokenTTL {
				t.Errorf("defaults not applied: %+v", s.cfg)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	s, err := New(validConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.cfg.Users[0].Subject; got != "u" {
		t.Errorf("subject default %q", got)
	}
	c := s.cfg.Clients[0]
	if c.Name != "c" || strings.Join(c.GrantTypes, " ") != "authorization_code refresh_token" {
		t.Errorf("public client defaults: %+v", c)
	}
	cfg := validConfig()
	cfg.Clients = []Client{{ID: "conf", Secret: "s", RedirectURIs: []string{"https://a.example.test/cb"}}}
	s, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.cfg.Clients[0].GrantTypes, " "); got != "authorization_code refresh_token client_credentials" {
		t.Errorf("confidential grant default %q", got)
	}
}

// TestNewRejects checks every problem New reports, all at once.
func TestNewRejects(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no issuer", func(c *Config) { c.Issuer = "" }, "issuer: required"},
		{"relative issuer", func(c *Config) { c.Issuer = "/idp" }, "scheme must be https or http"},
		{"ftp issuer", func(c *Config) { c.Issuer = "ftp://x" }, "scheme must be https or http"},
		{"issuer with a query", func(c *Config) { c.Issuer = "http://127.0.0.1:9400?x=1" }, "query"},
		{"issuer with a fragment", func(c *Config) { c.Issuer = "http://127.0.0.1:9400#x" }, "fragment"},
		{"issuer with user info", func(c *Config) { c.Issuer = "http://u:p@127.0.0.1:9400" }, "user information"},
		{"issuer with a trailing slash", func(c *Config) { c.Issuer = "http://127.0.0.1:9400/" }, "slash"},
		{"issuer path with odd characters", func(c *Config) { c.Issuer = "http://127.0.0.1:9400/{x}" }, "path may contain"},
		{"issuer path not clean", func(c *Config) { c.Issuer = "http://127.0.0.1:9400/a/../b" }, "clean"},
		{"no resources", func(c *Config) { c.Resources = nil }, "at least one resource"},
		{"relative resource", func(c *Config) { c.Resources = []string{"/mcp"} }, "scheme"},
		{"resource with a fragment", func(c *Config) { c.Resources = []string{docsRes + "#x"} }, "fragment"},
		{"resource with a query", func(c *Config) { c.Resources = []string{docsRes + "?x"} }, "query"},
		{"duplicate resource", func(c *Config) { c.Resources = []string{docsRes, docsRes + "/"} }, "configured twice"},
		{"bad scope", func(c *Config) { c.Scopes = []string{"two words"} }, "not a valid scope token"},
		{"empty scope", func(c *Config) { c.Scopes = []string{""} }, "not a valid scope token"},
		{"negative access ttl", func(c *Config) { c.AccessTokenTTL = -time.Second }, "access token ttl"},
		{"negative refresh ttl", func(c *Config) { c.RefreshTokenTTL = -time.Second }, "refresh token ttl"},
		{"user without name", func(c *Config) { c.Users = []User{{Password: "p"}} }, "username is required"},
		{"user without password", func(c *Config) { c.Users = []User{{Username: "u"}} }, "password is required"},
		{"duplicate user", func(c *Config) { c.Users = append(c.Users, User{Username: "u", Password: "q", Subject: "other"}) }, "configured twice"},
		{"duplicate subject", func(c *Config) { c.Users = append(c.Users, User{Username: "v", Password: "q", Subject: "u"}) }, "another user's"},
		{"user scope unknown", func(c *Config) { c.Users[0].Scopes = []string{"admin"} }, `scope "admin" is not in Scopes`},
		{"client without id", func(c *Config) { c.Clients[0].ID = "" }, "id is required"},
		{"client id with a control character", func(c *Config) { c.Clients[0].ID = "a\nb" }, "printable"},
		{"duplicate client", func(c *Config) { c.Clients = append(c.Clients, c.Clients[0]) }, "configured twice"},
		{"code client without redirect", func(c *Config) { c.Clients[0].RedirectURIs = nil }, "needs at least one redirect uri"},
		{"public client credentials", func(c *Config) { c.Clients[0].GrantTypes = []string{GrantClientCredentials} }, "needs a client secret"},
		{"public token exchange", func(c *Config) { c.Clients[0].GrantTypes = []string{GrantTokenExchange} }, "needs a client secret"},
		{"unknown grant", func(c *Config) { c.Clients[0].GrantTypes = []string{"password"} }, "not supported"},
		{"no grant", func(c *Config) { c.Clients[0].GrantTypes = []string{} }, "at least one grant type"},
		{"http redirect on a public host", func(c *Config) { c.Clients[0].RedirectURIs = []string{"http://app.example.test/cb"} }, "http is allowed only"},
		{"redirect with a fragment", func(c *Config) { c.Clients[0].RedirectURIs = []string{"https://a.example.test/cb#f"} }, "fragment"},
		{"custom scheme redirect", func(c *Config) { c.Clients[0].RedirectURIs = []string{"myapp://cb"} }, "scheme must be https"},
		{"client scope unknown", func(c *Config) { c.Clients[0].Scopes = []string{"admin"} }, `scope "admin" is not in Scopes`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.mod(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "devauth: invalid config") {
				t.Fatalf("err %v, want one containing %q", err, tt.want)
			}
		})
	}
	t.Run("every problem at once", func(t *testing.T) {
		_, err := New(Config{Scopes: []string{"a b"}, Users: []User{{}}})
		for _, want := range []string{"issuer: required", "at least one resource", "not a valid scope token", "username is required"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err %v lacks %q", err, want)
			}
		}
	})
}

func TestBanner(t *testing.T) {
	s, err := New(validConfig())
	if err != nil {
		t.Fatal(err)
	}
	b := s.Banner()
	for _, want := range []string{"DEVELOPMENT ONLY", s.Issuer(), "production"} {
		if !strings.Contains(b, want) {
			t.Errorf("banner lacks %q:\n%s", want, b)
		}
	}
	if strings.Count(b, "\n") < 5 {
		t.Errorf("banner is not loud enough:\n%s", b)
	}
}
