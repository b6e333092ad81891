package config

import (
	"strings"
	"testing"
	"time"
)

// withCredentials puts a credentials block (YAML flow mapping) on the
// minimal config's route.
func withCredentials(creds string) string {
	return strings.Replace(minimal, "    upstream:", "    credentials: "+creds+"\n    upstream:", 1)
}

func TestCredentialDefaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		creds string
		check func(t *testing.T, c *Config)
	}{
		{"none by default", "", func(t *testing.T, c *Config) {
			if m := c.Routes[0].Credentials.Mode; m != "none" {
				t.Errorf("mode = %q", m)
			}
		}},
		{"mint", "{mode: mint}", func(t *testing.T, c *Config) {
			rc := c.Routes[0].Credentials
			if rc.Audience != "http://docs:7001/mcp" || rc.Lifetime.D() != DefaultMintLifetime {
				t.Errorf("audience %q lifetime %v", rc.Audience, rc.Lifetime.D())
			}
			if c.Credentials.Mint.Issuer != "https://mcp.example.com" || c.Credentials.Mint.Algorithm != "ES256" {
				t.Errorf("mint = %+v", c.Credentials.Mint)
			}
		}},
		{"exchange", "{mode: exchange, client_id: gw, client_secret_file: /run/secrets/gw}", func(t *testing.T, c *Config) {
			rc := c.Routes[0].Credentials
			if rc.Resource != "http://docs:7001/mcp" || rc.AuthorizationServer != "https://auth.example.com" || rc.AuthMethod != "client_secret_basic" {
				t.Errorf("%+v", rc)
			}
		}},
		{"static", "{mode: static, value_file: /run/secrets/v}", func(t *testing.T, c *Config) {
			if h := c.Routes[0].Credentials.Header; h != "Authorization" {
				t.Errorf("header = %q", h)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := minimal
			if tc.creds != "" {
				y = withCredentials(tc.creds)
			}
			c, err := Parse([]byte(y))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Redaction.MaxScanBytes != DefaultMaxScanBytes || c.Credentials.Mint.RotateEvery.D() != 24*time.Hour {
		t.Errorf("redaction %v rotate %v", c.Redaction.MaxScanBytes, c.Credentials.Mint.RotateEvery)
	}
}

func TestCredentialRejects(t *testing.T) {
	twoIssuers := strings.Replace(minimal, "  - issuer: https://auth.example.com", "  - issuer: https://auth.example.com\n  - issuer: https://idp2.example.com", 1)
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown mode", withCredentials("{mode: passthrough}"), []string{"must be none, mint, exchange, client_credentials or static"}},
		{"literal secret without the flag", withCredentials("{mode: exchange, client_id: gw, client_secret: hunter2}"),
			[]string{"a literal needs development.allow_secret_literals"}},
		{"literal value without the flag", withCredentials("{mode: static, value: abc}"), []string{"a literal needs development.allow_secret_literals"}},
		{"both file and literal", withCredentials("{mode: static, value: abc, value_file: /s}") + "development: {allow_secret_literals: true}\n",
			[]string{"either value_file or value"}},
		{"exchange without client", withCredentials("{mode: exchange}"), []string{"client_id: required", "client_secret_file: required"}},
		{"exchange needs one issuer", strings.Replace(withCredentials("{mode: exchange, client_id: gw, client_secret_file: /s}"), "  - issuer: https://auth.example.com", "  - issuer: https://auth.example.com\n  - issuer: https://idp2.example.com", 1),
			[]string{"authorization_server: required"}},
		{"exchange with a foreign issuer", strings.Replace(twoIssuers, "    upstream:", "    authorization_servers: [https://auth.example.com]\n    credentials: {mode: exchange, client_id: gw, client_secret_file: /s, authorization_server: https://idp2.example.com}\n    upstream:", 1),
			[]string{"exchange needs the route to trust only"}},
		{"exchange on a route trusting every issuer", strings.Replace(twoIssuers, "    upstream:", "    credentials: {mode: exchange, client_id: gw, client_secret_file: /s, authorization_server: https://auth.example.com}\n    upstream:", 1),
			[]string{"exchange needs the route to trust only"}},
		{"mint on a route trusting two issuers", strings.Replace(twoIssuers, "    upstream:", "    credentials: {mode: mint}\n    upstream:", 1),
			[]string{"mint needs the route to trust exactly one issuer"}},
		{"bad auth method", withCredentials("{mode: client_credentials, client_id: gw, client_secret_file: /s, auth_method: private_key_jwt}"), []string{"must be client_secret_basic or client_secret_post"}},
		{"static into a transport header", withCredentials("{mode: static, header: Mcp-Session-Id, value_file: /s}"), []string{"MCP transport header"}},
		{"static into host", withCredentials("{mode: static, header: Host, value_file: /s}"), []string{"cannot carry a credential"}},
		{"mint lifetime too long", withCredentials("{mode: mint, lifetime: 2h}"), []string{"lifetime: must be between 1s and 1h0m0s"}},
		{"unused field", withCredentials("{mode: mint, client_id: gw, value_file: /s}"), []string{`client_id: is not used by mode "mint"`, `value_file: is not used by mode "mint"`}},
		{"none with scopes", withCredentials("{scopes: [a]}"), []string{`scopes: is not used by mode "none"`}},
		{"bad mint algorithm", minimal + "credentials: {mint: {algorithm: RS256}}\n", []string{"must be ES256 or EdDSA"}},
		{"key without file", minimal + "credentials: {mint: {signing_keys: [{id: a}]}}\n", []string{"signing_keys[0].file: required"}},
		{"duplicate key id", minimal + "credentials: {mint: {signing_keys: [{id: a, file: /a}, {id: a, file: /b}]}}\n", []string{`"a" is used by another key`}},
		{"bad detector action", minimal + "redaction: {detectors: {jwt: shout}}\n", []string{"must be redact, block, audit or off"}},
		{"bad pattern", minimal + "redaction: {patterns: [{name: Bad-Name, regex: '(', action: burn}, {name: empty, regex: 'x*'}]}\n",
			[]string{"1-64 characters", "does not compile", "must be redact, block or audit", "matches the empty string"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Error("the error repeats the literal secret")
			}
		})
	}
	// The development flag accepts literals.
	if _, err := Parse([]byte(withCredentials("{mode: static, value: abc}") + "development: {allow_secret_literals: true}\n")); err != nil {
		t.Errorf("literal with the flag: %v", err)
	}
}

func TestAuditRejects(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"bad fsync", minimal + "audit: {sink: file, file: /a, fsync: sometimes}\n", []string{"audit.fsync: must be always or interval"}},
		{"bad on_failure", minimal + "audit: {on_failure: shrug}\n", []string{"audit.on_failure: must be deny or allow"}},
		{"tiny rotation", minimal + "audit: {sink: file, file: /a, rotate_size: 1KiB}\n", []string{"audit.rotate_size: must be at least 1MiB"}},
		{"rotation on stdout", minimal + "audit: {rotate_interval: 1h}\n", []string{"apply to the file sink only"}},
		{"queue too large", minimal + "audit: {queue_size: 99999999}\n", []string{"audit.queue_size"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v does not mention %q", err, w)
				}
			}
		})
	}
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Audit; a.Fsync != "always" || a.OnFailure != "deny" || a.QueueSize != 1024 || a.CheckpointInterval.D() != time.Minute || a.CaptureArguments {
		t.Errorf("audit defaults %+v", a)
	}
}

func TestOperationsRejects(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       string
	}{
		{"admin on all interfaces without a credential", minimal + "admin: {listen: \":9090\"}\n", "is not a loopback address"},
		{"admin on the MCP address", strings.Replace(minimal, "server:\n", "server:\n  listen: 127.0.0.1:9090\n", 1), "must differ from server.listen"},
		{"admin tls without a key", minimal + "admin: {tls: {cert_file: /c}}\n", "cert_file and key_file are required"},
		{"bad admin address", minimal + "admin: {listen: nowhere}\n", "must be host:port or off"},
		{"tiny max token lifetime", minimal + "revocation: {max_token_lifetime: 1s}\n", "at least 1m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	for _, ok := range []string{
		minimal + "admin: {listen: off}\n",
		minimal + "admin: {listen: \"0.0.0.0:9090\", bearer_token_file: /run/secrets/admin}\n",
	} {
		if _, err := Parse([]byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}
