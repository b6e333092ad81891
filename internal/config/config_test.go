package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimal = `
server:
  public_base_url: https://mcp.example.com
authorization_servers:
  - issuer: https://auth.example.com
routes:
  - name: docs
    path: /servers/docs/mcp
    upstream: {url: "http://docs:7001/mcp"}
`

func TestExampleIsValid(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "examples", "mcpgate.yaml"))
	if err != nil {
		t.Fatalf("examples/mcpgate.yaml: %v", err)
	}
	if len(cfg.Routes) != 2 || cfg.Routes[0].Tools["read_document"].Arguments["project"].Pattern == "" {
		t.Errorf("example decoded incompletely: %+v", cfg.Routes)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ got, want any }{
		"listen":        {cfg.Server.Listen, DefaultListen},
		"header":        {cfg.Server.ReadHeaderTimeout.D(), DefaultReadHeaderTimeout},
		"body":          {int64(cfg.Limits.MaxBodyBytes), int64(DefaultMaxBodyBytes)},
		"algorithms":    {strings.Join(cfg.AuthorizationServers[0].Algorithms, ","), "RS256"},
		"skew":          {cfg.AuthorizationServers[0].ClockSkew.D(), DefaultClockSkew},
		"max stale":     {cfg.AuthorizationServers[0].JWKSMaxStale.D(), DefaultJWKSMaxStale},
		"upstream wait": {cfg.Routes[0].Upstream.ResponseHeaderTimeout.D(), DefaultResponseHeaderTimeout},
		"audit":         {cfg.Audit.Sink, "stdout"},
		"default tool":  {cfg.Routes[0].DefaultTool.Allow, false},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", name, c.got, c.want)
		}
	}
}

func TestRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string // substrings, all of which must appear
	}{
		{"unknown key", minimal + "bogus: 1\n", []string{"field bogus not found"}},
		{"unknown nested key", strings.Replace(minimal, "upstream: {", "upstream: {timeout: 5s, ", 1), []string{"field timeout not found"}},
		{"duplicate key", minimal + "audit: {sink: stdout}\naudit: {sink: file}\n", []string{"already defined"}},
		{"duration without unit", strings.Replace(minimal, "public_base_url:", "read_header_timeout: 60\n  public_base_url:", 1), []string{"duration must be a string with a unit"}},
		{"two documents", minimal + "---\n" + minimal, []string{"more than one YAML document"}},
		{"empty", "", []string{"empty"}},
		{"http public url", strings.Replace(minimal, "https://mcp.example.com", "http://mcp.example.com", 1), []string{"public_base_url: must use https"}},
		{"public url with path", strings.Replace(minimal, "https://mcp.example.com", "https://mcp.example.com/prefix", 1), []string{"without a path"}},
		{"public url with query", strings.Replace(minimal, "https://mcp.example.com", "https://mcp.example.com/?a=b", 1), []string{"query"}},
		{"issuer over http", strings.Replace(minimal, "https://auth.example.com", "http://auth.example.com", 1), []string{"must use https"}},
		{"loopback issuer without dev flag", strings.Replace(minimal, "https://auth.example.com", "http://127.0.0.1:9000", 1), []string{"insecure_allow_http_loopback"}},
		{"hmac algorithm", strings.Replace(minimal, "- issuer: https://auth.example.com", "- issuer: https://auth.example.com\n    algorithms: [HS256, none]", 1), []string{`"HS256" is not allowed`, `"none" is not allowed`}},
		{"skew too large", strings.Replace(minimal, "- issuer: https://auth.example.com", "- issuer: https://auth.example.com\n    clock_skew: 10m", 1), []string{"clock_skew: must be at most 5m0s"}},
		{"route path trailing slash", strings.Replace(minimal, "/servers/docs/mcp", "/servers/docs/mcp/", 1), []string{"must not end with /"}},
		{"route path traversal", strings.Replace(minimal, "/servers/docs/mcp", "/servers/../mcp", 1), []string{"dot segments"}},
		{"route under well-known", strings.Replace(minimal, "/servers/docs/mcp", "/.well-known/mcp", 1), []string{".well-known"}},
		{"forward authorization", strings.Replace(minimal, `upstream: {url: "http://docs:7001/mcp"}`, `upstream: {url: "http://docs:7001/mcp", forward_headers: [Authorization, X-Forwarded-User]}`, 1), []string{`"Authorization" can never be forwarded`, `"X-Forwarded-User" can never be forwarded`}},
		{"unknown route issuer", strings.Replace(minimal, "    upstream:", "    authorization_servers: [https://other.example.com]\n    upstream:", 1), []string{"not one of the configured"}},
		{"wildcard origin", strings.Replace(minimal, "server:\n", "server:\n  allowed_origins: [\"*\"]\n", 1), []string{`"*" is not allowed`}},
		{"bad scope", strings.Replace(minimal, "    upstream:", "    required_scopes: [\"a b\"]\n    upstream:", 1), []string{"not a valid scope token"}},
		{"bad size", strings.Replace(minimal, "server:\n", "server:\n  max_header_bytes: lots\n", 1), []string{"invalid size"}},
		{"unsupported claim names", strings.Replace(minimal, "- issuer: https://auth.example.com", "- issuer: https://auth.example.com\n    client_id_claims: [email]\n    scope_claims: [groups]", 1),
			[]string{`client_id_claims: "email" is not supported`, `scope_claims: "groups" is not supported`}},
		{"audience shared by two routes", strings.Replace(minimal, "    upstream: {url: \"http://docs:7001/mcp\"}", `    upstream: {url: "http://docs:7001/mcp"}
    audiences: [api://shared]
  - name: mail
    path: /servers/mail/mcp
    upstream: {url: "http://mail:7001/mcp"}
    audiences: [api://shared, https://mcp.example.com/servers/docs/mcp]`, 1),
			[]string{`"api://shared" is already the audience of route "docs"`, `"https://mcp.example.com/servers/docs/mcp" is already the audience of route "docs"`}},
		{"budget window beyond the history timeout", minimal + "sequence:\n  history: {idle_timeout: 10m}\n  rules: [{id: b, budget: {match: {tools: [x]}, max: 1, window: 1h}}]\n",
			[]string{"longer than sequence.history.idle_timeout"}},
		{"bad history scope and label", strings.Replace(minimal, "    upstream:", "    tools: {t: {labels: [Private-Data]}}\n    tool_pinning: maybe\n    upstream:", 1) + "sequence: {history: {scope: everyone}}\n",
			[]string{"must be principal, subject or session", `label "Private-Data"`, "must be off, alert or block"}},
		{"block pinning without a pins file", strings.Replace(minimal, "    upstream:", "    tool_pinning: block\n    upstream:", 1), []string{"block needs tool_pins_file"}},
		{"two introspecting issuers on one route", strings.Replace(minimal, "  - issuer: https://auth.example.com", `  - issuer: https://auth.example.com
    introspection: {client_id: gw, client_secret_file: /s}
  - issuer: https://idp2.example.com
    introspection: {client_id: gw, client_secret_file: /s}`, 1), []string{"restrict the route to one"}},
		{"introspection without secret", strings.Replace(minimal, "- issuer: https://auth.example.com", "- issuer: https://auth.example.com\n    introspection: {client_id: gw}", 1), []string{"client_secret_file: required"}},
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
		})
	}
}

// TestEveryProblemAtOnce checks that validation does not stop at the first
// problem.
func TestEveryProblemAtOnce(t *testing.T) {
	bad := `
server:
  listen: nope
  public_base_url: ftp://x
authorization_servers:
  - issuer: http://a.example.com
    algorithms: [HS256]
routes:
  - name: Bad Name
    path: relative
    upstream: {url: "gopher://x"}
audit: {sink: syslog}
log: {level: loud, format: xml}
`
	_, err := Parse([]byte(bad))
	if err == nil {
		t.Fatal("accepted")
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("error is not a joined list: %v", err)
	}
	if n := len(joined.Unwrap()); n < 10 {
		t.Errorf("got %d problems, want every one of at least 10:\n%v", n, err)
	}
}

func TestByteSizeAndDuration(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "4MiB": 4 << 20, "512 KiB": 512 << 10, "1GB": 1 << 30, "7B": 7} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "1.5MiB", "MiB", "2TiB", "99999999999GiB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", in)
		}
	}
	cfg, err := Parse([]byte(strings.Replace(minimal, "server:\n", "server:\n  idle_timeout: 1m30s\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.IdleTimeout.D() != 90*time.Second {
		t.Errorf("idle_timeout = %v", cfg.Server.IdleTimeout.D())
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not-exist", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("routes: [{name: a}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Decode(data)
		if err != nil {
			return
		}
		cfg.ApplyDefaults()
		_ = cfg.Validate() // must not panic
	})
}
