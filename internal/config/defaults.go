package config

import (
	"strings"
	"time"
)

// ApplyDefaults fills every unset field with its documented default.
func (c *Config) ApplyDefaults() {
	s := &c.Server
	setString(&s.Listen, DefaultListen)
	s.PublicBaseURL = strings.TrimRight(s.PublicBaseURL, "/")
	setDuration(&s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDuration(&s.BodyReadTimeout, DefaultBodyReadTimeout)
	setDuration(&s.IdleTimeout, DefaultIdleTimeout)
	setSize(&s.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDuration(&s.ShutdownTimeout, DefaultShutdownTimeout)
	if s.TLS != nil {
		setString(&s.TLS.MinVersion, "1.2")
	}

	l := &c.Limits
	setSize(&l.MaxBodyBytes, DefaultMaxBodyBytes)
	setInt(&l.MaxJSONDepth, DefaultMaxJSONDepth)
	setSize(&l.MaxTokenBytes, DefaultMaxTokenBytes)
	setSize(&l.MaxResponseBytes, DefaultMaxResponseBytes)
	if l.RatePerIP.RequestsPerSecond == 0 {
		l.RatePerIP.RequestsPerSecond = DefaultRatePerIP
	}
	setInt(&l.RatePerIP.Burst, DefaultRateBurst)
	setInt(&l.MaxSessionsPerPrincipal, DefaultMaxSessionsPerPrincipal)
	setInt(&l.MaxStreamsPerPrincipal, DefaultMaxStreamsPerPrincipal)
	setInt(&l.MaxSessions, DefaultMaxSessions)
	setDuration(&l.SessionIdleTimeout, DefaultSessionIdleTimeout)

	for i := range c.AuthorizationServers {
		as := &c.AuthorizationServers[i]
		if len(as.Algorithms) == 0 {
			as.Algorithms = []string{"RS256"}
		}
		setDuration(&as.ClockSkew, DefaultClockSkew)
		setDuration(&as.JWKSRefreshInterval, DefaultJWKSRefreshInterval)
		setDuration(&as.JWKSMaxStale, DefaultJWKSMaxStale)
		setDuration(&as.UnknownKIDCooldown, DefaultUnknownKIDCooldown)
		setDuration(&as.HTTPTimeout, DefaultHTTPTimeout)
		if in := as.Introspection; in != nil {
			setString(&in.AuthMethod, "client_secret_basic")
			setDuration(&in.CacheTTL, DefaultIntrospectionCacheTTL)
		}
	}

	h := &c.Sequence.History
	setString(&h.Scope, "principal")
	setDuration(&h.IdleTimeout, time.Hour)
	setInt(&h.MaxEntries, 1000)
	setInt(&h.MaxHistories, 100000)
	for i := range c.Sequence.Rules {
		r := &c.Sequence.Rules[i]
		setString(&r.Phase, "call")
		setString(&r.Action, "deny")
		if r.Budget != nil {
			setString(&r.Budget.Per, "session")
		}
	}

	for i := range c.Routes {
		setString(&c.Routes[i].ToolPinning, "alert")
		u := &c.Routes[i].Upstream
		setDuration(&u.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
		setDuration(&u.DialTimeout, DefaultDialTimeout)
	}

	c.applyCredentialDefaults()
	c.applyOperationsDefaults()
	setString(&c.Audit.Sink, "stdout")
	c.Store.applyDefaults()
	setString(&c.Audit.Fsync, "always")
	setDuration(&c.Audit.FsyncInterval, time.Second)
	setInt(&c.Audit.QueueSize, 1024)
	setDuration(&c.Audit.QueueTimeout, time.Second)
	setDuration(&c.Audit.WriteTimeout, 5*time.Second)
	setDuration(&c.Audit.CheckpointInterval, time.Minute)
	setString(&c.Audit.OnFailure, "deny")
	setString(&c.Log.Level, "info")
	setString(&c.Log.Format, "json")
}

func setString(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setSize(p *ByteSize, v int64) {
	if *p == 0 {
		*p = ByteSize(v)
	}
}

func setDuration(p *Duration, v time.Duration) {
	if *p == 0 {
		*p = Duration(v)
	}
}
