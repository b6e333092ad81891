package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.yaml", `
server:
  public_base_url: http://mcp.example.com
authorization_servers:
  - issuer: https://auth.example.com
    algorithms: [HS256]
routes:
  - name: docs
    path: /servers/docs/mcp
    upstream: {url: "http://docs:7001/mcp"}
    tools:
      read_document:
        scopes: ["document:read:{project}"]
`)
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderrIn []string
	}{
		{"valid example", []string{"check-config", "--config", filepath.Join("..", "..", "examples", "mcpgate.yaml")}, 0, "configuration is valid", nil},
		{"every problem at once, config and policy", []string{"check-config", "--config", bad}, 1, "",
			[]string{"public_base_url: must use https", `"HS256" is not allowed`, "document:read:{project}"}},
		{"unknown key", []string{"check-config", "--config", write("unknown.yaml", "serverr: {}\n")}, 1, "", []string{"field serverr not found"}},
		{"missing file", []string{"check-config", "--config", filepath.Join(dir, "absent.yaml")}, 1, "", []string{"no such file"}},
		{"stray argument", []string{"check-config", "extra"}, 2, "", []string{"unexpected argument"}},
		{"unknown command", []string{"frobnicate"}, 2, "", []string{`unknown command "frobnicate"`}},
		{"no command", nil, 2, "", []string{"Usage:"}},
		{"version", []string{"version"}, 0, "mcpgate", nil},
		{"dev-idp without a resource", []string{"dev-idp"}, 2, "", []string{"--resource is required"}},
		{"dev-idp with a malformed user", []string{"dev-idp", "--resource", "http://127.0.0.1:8080/mcp", "--user", "nopassword"}, 2, "", []string{"must be name:password"}},
		{"dev-idp with a malformed client", []string{"dev-idp", "--resource", "http://127.0.0.1:8080/mcp", "--client", "id-only"}, 2, "", []string{"must be id:secret"}},
		{"dev-idp with a bad resource", []string{"dev-idp", "--listen", "127.0.0.1:0", "--resource", "not a url"}, 1, "", []string{"resource"}},
		{"demo with a stray flag", []string{"demo", "--bogus"}, 2, "", []string{"flag provided but not defined"}},
		{"serve with an invalid config", []string{"serve", "--config", bad}, 1, "", []string{"must use https"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout %q does not contain %q", out.String(), tc.stdout)
			}
			for _, s := range tc.stderrIn {
				if !strings.Contains(errb.String(), s) {
					t.Errorf("stderr does not mention %q:\n%s", s, errb.String())
				}
			}
		})
	}
}
