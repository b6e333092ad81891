package config

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultStoreKeyPrefix starts every Redis key mcpgate writes.
const DefaultStoreKeyPrefix = "mcpgate:"

// DefaultStoreTimeout bounds one operation on a shared store.
const DefaultStoreTimeout = time.Second

// Store says where the state that every replica must share lives:
// sequence histories and taint, budgets (docs/scaling.md).
type Store struct {
	// URL selects the store. "" or "memory": in this process (one
	// replica). redis://host:port[/db] or rediss://host:port[/db] (TLS):
	// a Redis or Valkey server (6 or later) shared by every replica. A
	// username may be given in the URL; a password never is (PasswordFile).
	URL string `yaml:"url"`
	// Username is the Redis ACL user; it overrides the URL's.
	Username string `yaml:"username"`
	// PasswordFile holds the Redis password (a secret mount). Read at
	// start and again before every reconnection.
	PasswordFile string `yaml:"password_file"`
	// TLS configures rediss:// (a CA bundle instead of the system roots, a
	// client certificate, the server name to verify).
	TLS *UpstreamTLS `yaml:"tls"`
	// KeyPrefix starts every key mcpgate writes, so that deployments can
	// share a server. Default "mcpgate:".
	KeyPrefix string `yaml:"key_prefix"`
	// Timeout bounds each store operation; a call whose state cannot be
	// read or written within it is refused (503). Default 1s.
	Timeout Duration `yaml:"timeout"`
	// TokenCacheKeysFile holds the keys that encrypt exchanged upstream
	// tokens cached in Redis (one "<id> <base64 of 32 bytes>" per line;
	// the first encrypts, all decrypt). Without it, exchanged tokens are
	// cached per replica only.
	TokenCacheKeysFile string `yaml:"token_cache_keys_file"`
}

// Redis reports whether the store is a Redis server.
func (s Store) Redis() bool { return s.URL != "" && s.URL != "memory" }

func (s *Store) applyDefaults() {
	if !s.Redis() {
		return
	}
	setString(&s.KeyPrefix, DefaultStoreKeyPrefix)
	setDuration(&s.Timeout, DefaultStoreTimeout)
}

func (s *Store) validate(p *problems) {
	if !s.Redis() {
		if s.Username != "" || s.PasswordFile != "" || s.TLS != nil || s.KeyPrefix != "" || s.Timeout != 0 || s.TokenCacheKeysFile != "" {
			p.add("store", "username, password_file, tls, key_prefix, timeout and token_cache_keys_file apply to a Redis store only (store.url: redis://… or rediss://…)")
		}
		return
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		p.add("store.url", "is not a URL (redis://host:port/db): %v", err)
		return
	}
	switch u.Scheme {
	case "redis", "rediss":
	default:
		p.add("store.url", "must be memory, redis://host:port[/db] or rediss://host:port[/db], not scheme %q", u.Scheme)
		return
	}
	if _, set := u.User.Password(); set {
		p.add("store.url", "holds a password: put it in store.password_file instead (configuration files are not secret)")
	}
	if (s.Username != "" || u.User.Username() != "") && s.PasswordFile == "" {
		p.add("store.password_file", "required with a username (an ACL user authenticates with a password)")
	}
	if u.Hostname() == "" {
		p.add("store.url", "needs a host")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			p.add("store.url", "port %q is not 1-65535", port)
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			p.add("store.url", "the path must be a database number, not %q", u.Path)
		}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		p.add("store.url", "takes no query or fragment: use the store settings (tls, username, timeout)")
	}
	if s.TLS != nil {
		if u.Scheme != "rediss" {
			p.add("store.tls", "needs a rediss:// URL")
		}
		if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
			p.add("store.tls", "cert_file and key_file must be set together")
		}
	}
	if len(s.KeyPrefix) > 64 || strings.ContainsAny(s.KeyPrefix, " \t\r\n{}") {
		p.add("store.key_prefix", "must be at most 64 bytes without spaces or braces")
	}
	if d := s.Timeout.D(); d < 10*time.Millisecond || d > time.Minute {
		p.add("store.timeout", "must be between 10ms and 1m, not %v", d)
	}
}
