package config

import (
	"net"
	"time"
)

// Admin configures the admin listener: metrics, health and the admin API
// (docs/operations.md). It is a separate address so that it is never
// exposed with the MCP endpoints.
type Admin struct {
	// Listen is the admin address. Default "127.0.0.1:9090" (loopback);
	// "off" turns the listener off.
	Listen string `yaml:"listen"`
	// BearerTokenFile holds the secret the admin API (/admin/…) requires
	// as a bearer token, compared in constant time. /metrics, /healthz and
	// /readyz need no credential.
	BearerTokenFile string `yaml:"bearer_token_file"`
	// TLS serves the admin listener over TLS; with ClientCAFile, clients
	// of the admin API must present a certificate it signed (mutual TLS),
	// which then suffices as the admin credential.
	TLS *AdminTLS `yaml:"tls"`
}

// AdminTLS configures TLS on the admin listener.
type AdminTLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// Revocation configures token revocation.
type Revocation struct {
	// File persists revocations across restarts (JSON, 0600). "" → kept in
	// memory only.
	File string `yaml:"file"`
	// MaxTokenLifetime is how long a subject or client revocation is kept
	// after its not-before time: no token issued before it can still be
	// valid after that. Default 24h.
	MaxTokenLifetime Duration `yaml:"max_token_lifetime"`
}

// Default admin settings.
const (
	DefaultAdminListen      = "127.0.0.1:9090"
	DefaultMaxTokenLifetime = 24 * time.Hour
)

func (c *Config) applyOperationsDefaults() {
	setString(&c.Admin.Listen, DefaultAdminListen)
	setDuration(&c.Revocation.MaxTokenLifetime, DefaultMaxTokenLifetime)
}

func (c *Config) validateOperations(p *problems) {
	a := c.Admin
	if a.Listen != "off" {
		host, _, err := net.SplitHostPort(a.Listen)
		switch {
		case err != nil:
			p.add("admin.listen", "must be host:port or off: %v", err)
		case a.Listen == c.Server.Listen:
			p.add("admin.listen", "must differ from server.listen: the admin API is never served with the MCP endpoints")
		case !isLoopbackHost(host) && a.BearerTokenFile == "" && (a.TLS == nil || a.TLS.ClientCAFile == ""):
			p.add("admin.listen", "%q is not a loopback address: set admin.bearer_token_file or admin.tls.client_ca_file so the admin API needs a credential", a.Listen)
		}
	}
	if t := a.TLS; t != nil && (t.CertFile == "" || t.KeyFile == "") {
		p.add("admin.tls", "cert_file and key_file are required")
	}
	if c.Revocation.MaxTokenLifetime < Duration(time.Minute) {
		p.add("revocation.max_token_lifetime", "must be at least 1m")
	}
}
