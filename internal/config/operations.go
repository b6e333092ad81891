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
	// Profiling serves the Go runtime profiles (/debug/pprof/…) behind
	// the admin credential, to find where a deployment spends its CPU or
	// memory; off by default.
	Profiling bool `yaml:"profiling"`
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

// Anomaly configures behavioural anomaly detection (docs/operations.md).
// Zero values take the detector's defaults.
type Anomaly struct {
	// Off turns detection off. Default: on, flagging only (action none).
	Off bool `yaml:"off"`
	// Action on a principal's anomaly: none (default: audit record and
	// metric only), step_up (the principal must hold StepUpScope) or deny
	// (refused for CoolDown).
	Action string `yaml:"action"`
	// RouteAction on a route-wide anomaly: none (default), step_up or
	// deny.
	RouteAction string `yaml:"route_action"`
	// StepUpScope is required with action step_up.
	StepUpScope string `yaml:"step_up_scope"`
	// CoolDown is how long a deny or step-up lasts. Default 5m.
	CoolDown Duration `yaml:"cool_down"`
	// Window, HalfLife and WarmUp: the current window (1m), the
	// baseline's half-life (30m), and how much activity a baseline needs
	// before it can flag (10m).
	Window   Duration `yaml:"window"`
	HalfLife Duration `yaml:"half_life"`
	WarmUp   Duration `yaml:"warm_up"`
	// MinCalls, MinDenials, MinTools, MinChurn and MaxChurn are the
	// absolute floors (30, 10, 8, 4) and the churn ceiling (10).
	MinCalls   int `yaml:"min_calls"`
	MinDenials int `yaml:"min_denials"`
	MinTools   int `yaml:"min_tools"`
	MinChurn   int `yaml:"min_churn"`
	MaxChurn   int `yaml:"max_churn"`
	// MaxPrincipals bounds memory (100000; least recently seen evicted).
	MaxPrincipals int `yaml:"max_principals"`
	// RateFactor, DenialFactor, ToolsFactor and ChurnFactor: how far above
	// its baseline a value must be (5, 3, 3, 3).
	RateFactor   float64 `yaml:"rate_factor"`
	DenialFactor float64 `yaml:"denial_factor"`
	ToolsFactor  float64 `yaml:"tools_factor"`
	ChurnFactor  float64 `yaml:"churn_factor"`
	// Disabled lists kinds not to flag: call_rate, denial_rate,
	// distinct_tools, new_tool, token_churn.
	Disabled []string `yaml:"disabled"`
}
