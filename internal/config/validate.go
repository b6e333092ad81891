package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// problems collects every validation error with the key it is about.
type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

// Validate reports every problem in c at once. It expects ApplyDefaults to
// have run. It is pure: no file is read and no connection is made.
func (c *Config) Validate() error {
	var p problems
	c.validateServer(&p)
	c.validateLimits(&p)
	issuers := c.validateIssuers(&p)
	for k, vs := range c.Scopes.Implies {
		if !ValidScope(k) {
			p.add("scopes.implies", "%q is not a valid scope token", k)
		}
		for _, v := range vs {
			if !ValidScope(v) {
				p.add("scopes.implies."+k, "%q is not a valid scope token", v)
			}
		}
	}
	c.validateRoutes(&p, issuers)
	c.validateSequence(&p)
	c.validateCredentials(&p, issuers)
	switch c.Audit.Sink {
	case "stdout":
	case "file":
		if c.Audit.File == "" {
			p.add("audit.file", "required when audit.sink is \"file\"")
		}
	default:
		p.add("audit.sink", "must be \"stdout\" or \"file\", not %q", c.Audit.Sink)
	}
	c.validateAudit(&p)
	c.validateOperations(&p)
	c.Store.validate(&p)
	if c.Store.Redis() && c.Revocation.File != "" {
		p.add("revocation.file", "not with a Redis store: revocations are shared through Redis (remove revocation.file)")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.add("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		p.add("log.format", "must be json or text, not %q", c.Log.Format)
	}
	return errors.Join(p...)
}

func (c *Config) validateServer(p *problems) {
	s := &c.Server
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		p.add("server.listen", "must be host:port, such as \":8080\": %v", err)
	}
	if s.PublicBaseURL == "" {
		p.add("server.public_base_url", "required: the externally visible URL of mcpgate, such as https://mcp.example.com")
	} else if u, err := url.Parse(s.PublicBaseURL); err != nil || u.Host == "" || u.Opaque != "" {
		p.add("server.public_base_url", "must be an absolute URL such as https://mcp.example.com")
	} else {
		switch {
		case u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname())):
			p.add("server.public_base_url", "must use https (plain http only for a loopback host)")
		case u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(s.PublicBaseURL, "#"):
			p.add("server.public_base_url", "must not contain user info, a query or a fragment")
		case u.Path != "":
			p.add("server.public_base_url", "must be an origin without a path (route paths are appended to it)")
		case u.Host != strings.ToLower(u.Host) || u.Scheme != strings.ToLower(u.Scheme):
			p.add("server.public_base_url", "scheme and host must be lowercase (the canonical form clients will use)")
		}
	}
	if t := s.TLS; t != nil {
		if t.CertFile == "" || t.KeyFile == "" {
			p.add("server.tls", "cert_file and key_file are both required")
		}
		if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
			p.add("server.tls.min_version", "must be \"1.2\" or \"1.3\"")
		}
	}
	for i, o := range s.AllowedOrigins {
		if _, err := ParseOrigin(o); err != nil {
			p.add(fmt.Sprintf("server.allowed_origins[%d]", i), "%v", err)
		}
	}
	for i, cidr := range s.TrustedProxies {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			p.add(fmt.Sprintf("server.trusted_proxies[%d]", i), "must be a CIDR such as 10.0.0.0/8")
		}
	}
	for key, d := range map[string]Duration{
		"server.read_header_timeout": s.ReadHeaderTimeout,
		"server.body_read_timeout":   s.BodyReadTimeout,
		"server.idle_timeout":        s.IdleTimeout,
		"server.shutdown_timeout":    s.ShutdownTimeout,
	} {
		if d <= 0 {
			p.add(key, "must be positive")
		}
	}
	if s.MaxHeaderBytes < 4<<10 || s.MaxHeaderBytes > 1<<20 {
		p.add("server.max_header_bytes", "must be between 4KiB and 1MiB")
	}
}

func (c *Config) validateLimits(p *problems) {
	l := &c.Limits
	if l.MaxBodyBytes < 1<<10 || l.MaxBodyBytes > 1<<30 {
		p.add("limits.max_body_bytes", "must be between 1KiB and 1GiB")
	}
	if l.MaxJSONDepth < 8 || l.MaxJSONDepth > 1000 {
		p.add("limits.max_json_depth", "must be between 8 and 1000")
	}
	if l.MaxTokenBytes < 512 || l.MaxTokenBytes > 1<<20 {
		p.add("limits.max_token_bytes", "must be between 512 and 1MiB")
	}
	if l.MaxResponseBytes < 64<<10 || l.MaxResponseBytes > 1<<30 {
		p.add("limits.max_response_bytes", "must be between 64KiB and 1GiB")
	}
	if l.RatePerIP.RequestsPerSecond > 0 && l.RatePerIP.Burst < 1 {
		p.add("limits.rate_per_ip.burst", "must be at least 1")
	}
	for key, v := range map[string]int{
		"limits.max_sessions_per_principal": l.MaxSessionsPerPrincipal,
		"limits.max_streams_per_principal":  l.MaxStreamsPerPrincipal,
		"limits.max_sessions":               l.MaxSessions,
	} {
		if v < 1 {
			p.add(key, "must be at least 1")
		}
	}
	if l.SessionIdleTimeout <= 0 {
		p.add("limits.session_idle_timeout", "must be positive")
	}
}

// allowedAlgorithms are the asymmetric JWS algorithms an issuer may be
// pinned to. "none" and HMAC algorithms are never accepted.
var allowedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func (c *Config) validateIssuers(p *problems) map[string]bool {
	issuers := map[string]bool{}
	if len(c.AuthorizationServers) == 0 {
		p.add("authorization_servers", "at least one authorization server is required")
	}
	for i, as := range c.AuthorizationServers {
		key := fmt.Sprintf("authorization_servers[%d]", i)
		if err := c.checkOutboundURL(as.Issuer); err != nil {
			p.add(key+".issuer", "%v", err)
		} else if u, _ := url.Parse(as.Issuer); u.RawQuery != "" || u.Fragment != "" {
			p.add(key+".issuer", "an issuer identifier has no query or fragment (RFC 8414)")
		}
		if issuers[as.Issuer] {
			p.add(key+".issuer", "%q is listed twice", as.Issuer)
		}
		issuers[as.Issuer] = true
		for _, alg := range as.Algorithms {
			if !slices.Contains(allowedAlgorithms, alg) {
				p.add(key+".algorithms", "%q is not allowed; use some of %s", alg, strings.Join(allowedAlgorithms, " "))
			}
		}
		for _, n := range as.ClientIDClaims {
			if !slices.Contains([]string{"client_id", "azp", "cid", "appid"}, n) {
				p.add(key+".client_id_claims", "%q is not supported; use client_id, azp, cid or appid", n)
			}
		}
		for _, n := range as.ScopeClaims {
			if !slices.Contains([]string{"scope", "scp", "roles"}, n) {
				p.add(key+".scope_claims", "%q is not supported; use scope, scp or roles", n)
			}
		}
		if as.ClockSkew.D() > MaxClockSkew {
			p.add(key+".clock_skew", "must be at most %s", MaxClockSkew)
		}
		if as.JWKSURI != "" {
			if err := c.checkOutboundURL(as.JWKSURI); err != nil {
				p.add(key+".jwks_uri", "%v", err)
			}
		}
		if as.JWKSMaxStale < as.JWKSRefreshInterval {
			p.add(key+".jwks_max_stale", "must be at least jwks_refresh_interval (%s)", as.JWKSRefreshInterval.D())
		}
		for k, d := range map[string]Duration{"jwks_refresh_interval": as.JWKSRefreshInterval, "unknown_kid_cooldown": as.UnknownKIDCooldown, "http_timeout": as.HTTPTimeout} {
			if d <= 0 {
				p.add(key+"."+k, "must be positive")
			}
		}
		if in := as.Introspection; in != nil {
			ik := key + ".introspection"
			if in.Endpoint != "" {
				if err := c.checkOutboundURL(in.Endpoint); err != nil {
					p.add(ik+".endpoint", "%v", err)
				}
			}
			if in.ClientID == "" {
				p.add(ik+".client_id", "required")
			}
			if in.ClientSecretFile == "" {
				p.add(ik+".client_secret_file", "required: a file holding the client secret")
			}
			if in.AuthMethod != "client_secret_basic" && in.AuthMethod != "client_secret_post" {
				p.add(ik+".auth_method", "must be client_secret_basic or client_secret_post")
			}
		}
	}
	return issuers
}

// checkOutboundURL checks a URL mcpgate will fetch from an authorization
// server: https, or http to loopback when development allows it.
func (c *Config) checkOutboundURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q must be an absolute https URL", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q must not contain user info", raw)
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()) && c.Development.InsecureAllowHTTPLoopback:
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return fmt.Errorf("%q uses plain http: allowed only with development.insecure_allow_http_loopback", raw)
	default:
		return fmt.Errorf("%q must use https", raw)
	}
}

var routeNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func (c *Config) validateRoutes(p *problems, issuers map[string]bool) {
	if len(c.Routes) == 0 {
		p.add("routes", "at least one route is required")
	}
	names, paths := map[string]bool{}, map[string]bool{}
	audiences := map[string]string{} // audience → route name
	for _, r := range c.Routes {
		audiences[c.Server.PublicBaseURL+r.Path] = r.Name
	}
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if !routeNameRE.MatchString(r.Name) {
			p.add(key+".name", "%q must be 1-63 characters of a-z, 0-9, _ and -", r.Name)
		} else if names[r.Name] {
			p.add(key+".name", "%q is used by another route", r.Name)
		}
		names[r.Name] = true
		if err := checkRoutePath(r.Path); err != nil {
			p.add(key+".path", "%v", err)
		} else if paths[r.Path] {
			p.add(key+".path", "%q is used by another route", r.Path)
		}
		paths[r.Path] = true
		u, err := url.Parse(r.Upstream.URL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			p.add(key+".upstream.url", "must be an absolute http or https URL")
		case u.User != nil || u.Fragment != "":
			p.add(key+".upstream.url", "must not contain user info or a fragment")
		}
		if t := r.Upstream.TLS; t != nil {
			if u != nil && u.Scheme != "https" {
				p.add(key+".upstream.tls", "set, but the upstream URL is not https")
			}
			if (t.CertFile == "") != (t.KeyFile == "") {
				p.add(key+".upstream.tls", "cert_file and key_file must be set together")
			}
		}
		if r.Upstream.ResponseHeaderTimeout <= 0 || r.Upstream.DialTimeout <= 0 {
			p.add(key+".upstream", "timeouts must be positive")
		}
		for _, h := range r.Upstream.ForwardHeaders {
			if err := checkForwardHeader(h); err != nil {
				p.add(key+".upstream.forward_headers", "%v", err)
			}
		}
		for _, iss := range r.AuthorizationServers {
			if !issuers[iss] {
				p.add(key+".authorization_servers", "%q is not one of the configured authorization_servers", iss)
			}
		}
		for _, a := range r.Audiences {
			switch owner, taken := audiences[a]; {
			case a == "" || strings.TrimSpace(a) != a:
				p.add(key+".audiences", "%q must be a non-empty value without surrounding space", a)
			case taken && owner != r.Name:
				p.add(key+".audiences", "%q is already the audience of route %q: a token for one route must be useless at another", a, owner)
			case taken:
				p.add(key+".audiences", "%q is listed twice or is the route's own resource URI", a)
			default:
				audiences[a] = r.Name
			}
		}
		switch r.ToolPinning {
		case "off", "alert":
		case "block":
			if c.ToolPinsFile == "" {
				p.add(key+".tool_pinning", "block needs tool_pins_file: approvals are made in that file, and without it a restart would trust a changed tool on first use")
			}
		default:
			p.add(key+".tool_pinning", "must be off, alert or block, not %q", r.ToolPinning)
		}
		for name, t := range r.Tools {
			if len(t.Labels) > 16 || len(t.ResultLabels) > 16 {
				p.add(key+".tools."+name, "at most 16 labels and 16 result_labels per tool")
			}
			for _, l := range append(slices.Clone(t.Labels), t.ResultLabels...) {
				if !labelRE.MatchString(l) {
					p.add(key+".tools."+name, "label %q must be 1-64 characters of a-z, 0-9, _ . : and -", l)
				}
			}
		}
		for name, pr := range r.Prompts {
			if len(pr.Labels) > 0 || len(pr.ResultLabels) > 0 {
				p.add(key+".prompts."+name, "labels apply to tools only")
			}
		}
		if n := c.introspectingIssuers(r); n > 1 {
			p.add(key+".authorization_servers", "the route trusts %d issuers that introspect opaque tokens; "+
				"an opaque token carries no issuer, so it would be sent to each of them: restrict the route to one", n)
		}
		for _, s := range r.RequiredScopes {
			if !ValidScope(s) {
				p.add(key+".required_scopes", "%q is not a valid scope token", s)
			}
		}
	}
}

// introspectingIssuers counts the issuers trusted on r that introspect.
func (c *Config) introspectingIssuers(r Route) int {
	n := 0
	for _, as := range c.AuthorizationServers {
		if as.Introspection != nil && (len(r.AuthorizationServers) == 0 || slices.Contains(r.AuthorizationServers, as.Issuer)) {
			n++
		}
	}
	return n
}

func checkRoutePath(path string) error {
	switch {
	case path == "" || path[0] != '/':
		return fmt.Errorf("%q must start with /", path)
	case path == "/":
		return errors.New(`"/" cannot be a route path; use a path such as /mcp`)
	case strings.HasSuffix(path, "/"):
		return fmt.Errorf("%q must not end with / (the canonical resource URI has no trailing slash)", path)
	case strings.ContainsAny(path, "?#%\\ \t") || strings.Contains(path, "//"):
		return fmt.Errorf("%q must be a plain path without query, fragment, escapes, spaces or empty segments", path)
	case strings.Contains(path, "/.well-known"):
		return fmt.Errorf("%q must not be under /.well-known", path)
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%q must not contain dot segments", path)
		}
	}
	return nil
}

// forbiddenForwardHeaders can never be forwarded to an upstream: credentials,
// cookies, identity and hop-by-hop headers.
var forbiddenForwardHeaders = []string{
	"authorization", "proxy-authorization", "cookie", "set-cookie", "host",
	"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
	"proxy-connection", "content-length", "forwarded", "x-forwarded-for",
	"x-forwarded-host", "x-forwarded-proto", "x-real-ip",
}

func checkForwardHeader(h string) error {
	if h == "" || strings.IndexFunc(h, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
		return fmt.Errorf("%q is not a valid header name", h)
	}
	l := strings.ToLower(h)
	if slices.Contains(forbiddenForwardHeaders, l) || strings.HasPrefix(l, "x-forwarded-") {
		return fmt.Errorf("%q can never be forwarded (credential, cookie, identity or hop-by-hop header)", h)
	}
	return nil
}

func isTokenChar(r rune) bool {
	return r < 0x7f && r > 0x20 && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
}

// ValidScope reports whether s is an RFC 6749 scope-token:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func ValidScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}

// ParseOrigin parses a browser origin "scheme://host[:port]" and returns it
// in canonical lowercase form.
func ParseOrigin(o string) (string, error) {
	if o == "*" || o == "null" {
		return "", fmt.Errorf("%q is not allowed: list exact origins", o)
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q must be an origin such as https://app.example.com", o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

// labelRE is policy.ValidLabel's charset: lowercase, digits, _ . : -.
var labelRE = regexp.MustCompile(`^[a-z0-9_.:-]{1,64}$`)

// validateSequence checks what the config layer can; the rules themselves
// (matchers, CEL) are compiled by the policy stage (gateway.Check).
func (c *Config) validateSequence(p *problems) {
	h := c.Sequence.History
	switch h.Scope {
	case "principal", "subject", "session":
	default:
		p.add("sequence.history.scope", "must be principal, subject or session, not %q", h.Scope)
	}
	if h.RunIDHeader != "" {
		if err := checkForwardHeader(h.RunIDHeader); err != nil {
			p.add("sequence.history.run_id_header", "%v", err)
		}
	}
	if h.IdleTimeout <= 0 || h.MaxEntries < 1 || h.MaxHistories < 1 {
		p.add("sequence.history", "idle_timeout, max_entries and max_histories must be positive")
	}
	for i, r := range c.Sequence.Rules {
		if b := r.Budget; b != nil && b.Window > h.IdleTimeout {
			p.add(fmt.Sprintf("sequence.rules[%d].budget.window", i),
				"%s is longer than sequence.history.idle_timeout (%s), which would forget the budget early", b.Window.D(), h.IdleTimeout.D())
		}
	}
	for _, hd := range c.Sequence.RequestHeaders {
		if err := checkForwardHeader(hd); err != nil {
			p.add("sequence.request_headers", "%v", err)
		}
	}
}

func (c *Config) validateAudit(p *problems) {
	a := c.Audit
	if a.Fsync != "always" && a.Fsync != "interval" {
		p.add("audit.fsync", "must be always or interval, not %q", a.Fsync)
	}
	if a.FsyncInterval <= 0 || a.CheckpointInterval <= 0 || a.QueueTimeout <= 0 || a.WriteTimeout <= 0 {
		p.add("audit", "fsync_interval, checkpoint_interval, queue_timeout and write_timeout must be positive")
	}
	if a.RotateSize < 0 || a.RotateInterval < 0 {
		p.add("audit", "rotate_size and rotate_interval must not be negative (0 turns rotation off)")
	}
	if a.RotateSize > 0 && a.RotateSize < 1<<20 {
		p.add("audit.rotate_size", "must be at least 1MiB")
	}
	if a.QueueSize < 1 || a.QueueSize > 1<<20 {
		p.add("audit.queue_size", "must be between 1 and 1048576")
	}
	if a.OnFailure != "deny" && a.OnFailure != "allow" {
		p.add("audit.on_failure", "must be deny or allow, not %q", a.OnFailure)
	}
	if a.Sink != "file" && (a.RotateSize != 0 || a.RotateInterval != 0 || a.Fsync == "interval") {
		p.add("audit", "fsync and rotation apply to the file sink only")
	}
}
