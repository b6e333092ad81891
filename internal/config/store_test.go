package config

import (
	"strings"
	"testing"
	"time"
)

func TestStore(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store string
		want  []string // problems; none → valid
	}{
		{"default memory", "", nil},
		{"memory", "store: {url: memory}\n", nil},
		{"redis", "store: {url: \"redis://redis:6379/0\", password_file: /run/secrets/redis}\n", nil},
		{"rediss with tls", "store: {url: \"rediss://redis.example:6380/2\", username: gw, password_file: /p, tls: {ca_file: /ca.pem, server_name: redis.example}}\n", nil},
		{"password in url", "store: {url: \"redis://u:hunter2@redis:6379/0\"}\n", []string{"store.url: holds a password"}},
		{"other scheme", "store: {url: \"http://redis:6379\"}\n", []string{"not scheme \"http\""}},
		{"no host", "store: {url: \"redis:///0\"}\n", []string{"needs a host"}},
		{"bad db", "store: {url: \"redis://redis:6379/x\"}\n", []string{"database number"}},
		{"query", "store: {url: \"redis://redis:6379/0?timeout=1\"}\n", []string{"no query"}},
		{"tls without rediss", "store: {url: \"redis://redis:6379\", tls: {ca_file: /ca.pem}}\n", []string{"needs a rediss:// URL"}},
		{"tls half pair", "store: {url: \"rediss://redis:6379\", tls: {cert_file: /c.pem}}\n", []string{"cert_file and key_file"}},
		{"prefix with brace", "store: {url: \"redis://redis\", key_prefix: \"{a}\"}\n", []string{"key_prefix"}},
		{"timeout too short", "store: {url: \"redis://redis\", timeout: 1ms}\n", []string{"store.timeout"}},
		{"redis settings on memory", "store: {password_file: /p}\n", []string{"apply to a Redis store only"}},
		{"username without password", "store: {url: \"redis://redis\", username: gw}\n", []string{"store.password_file: required with a username"}},
		{"url user without password", "store: {url: \"redis://gw@redis\"}\n", []string{"store.password_file: required with a username"}},
		{"revocation file with redis", "store: {url: \"redis://redis\"}\nrevocation: {file: /var/lib/mcpgate/rev.json}\n", []string{"revocation.file: not with a Redis store"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(minimal + tc.store))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", cfg.Store)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Error("the password is echoed in the error")
			}
		})
	}
	cfg, err := Parse([]byte(minimal + "store: {url: \"redis://redis:6379/0\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Store.Redis() || cfg.Store.KeyPrefix != DefaultStoreKeyPrefix || cfg.Store.Timeout.D() != time.Second {
		t.Errorf("defaults: %+v", cfg.Store)
	}
}
