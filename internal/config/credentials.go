package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Credentials holds settings shared by every route's upstream credential.
type Credentials struct {
	// Mint configures the JWTs mcpgate signs for routes in mint mode.
	Mint Mint `yaml:"mint"`
}

// Mint configures mcpgate's own token signing.
type Mint struct {
	// Issuer is the iss of minted tokens. Default: server.public_base_url.
	Issuer string `yaml:"issuer"`
	// Algorithm is ES256 (default) or EdDSA.
	Algorithm string `yaml:"algorithm"`
	// SigningKeys are PEM private keys read from files (re-read when they
	// change). The first signs; all are published in the JWKS, so a key is
	// rotated in by listing it second, then first, and out by removing it
	// once the tokens it signed have expired. Empty → keys are generated in
	// memory and rotated every rotate_every (one replica only: several
	// replicas must share files).
	SigningKeys []SigningKey `yaml:"signing_keys"`
	// RotateEvery is the rotation period of generated keys. Default 24h.
	RotateEvery Duration `yaml:"rotate_every"`
}

// SigningKey is one signing key file.
type SigningKey struct {
	// ID is the key id (kid). Default: the key's RFC 7638 thumbprint.
	ID string `yaml:"id"`
	// File is a PEM private key (PKCS#8, or SEC1 for P-256), not readable
	// by other users.
	File string `yaml:"file"`
}

// RouteCredentials configures what a route's upstream receives in place of
// the client's token, which is never forwarded (docs/credentials.md).
type RouteCredentials struct {
	// Mode is none (default), mint, exchange, client_credentials or static.
	Mode string `yaml:"mode"`
	// Audience is the aud of a minted token, and the audience parameter of
	// a token exchange. Default for mint: the upstream URL.
	Audience string `yaml:"audience"`
	// Resource is the RFC 8707 resource requested by exchange and
	// client_credentials. Default: the upstream URL.
	Resource string `yaml:"resource"`
	// Scopes are the scopes this upstream needs. mint and exchange request
	// those the caller holds; client_credentials requests all of them.
	Scopes []string `yaml:"scopes"`
	// Lifetime bounds a minted token's life (never beyond the client
	// token's). Default 5m, at most 1h.
	Lifetime Duration `yaml:"lifetime"`
	// AuthorizationServer is the issuer whose token endpoint exchange and
	// client_credentials use. Default: the route's only issuer.
	AuthorizationServer string `yaml:"authorization_server"`
	// TokenEndpoint overrides the token_endpoint found by discovery.
	TokenEndpoint string `yaml:"token_endpoint"`
	// ClientID is mcpgate's client at the authorization server.
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds that client's secret.
	ClientSecretFile string `yaml:"client_secret_file"`
	// ClientSecret is a literal secret: refused unless
	// development.allow_secret_literals is on.
	ClientSecret string `yaml:"client_secret"`
	// AuthMethod is client_secret_basic (default) or client_secret_post.
	AuthMethod string `yaml:"auth_method"`
	// Header is the header static mode sets. Default Authorization.
	Header string `yaml:"header"`
	// ValueFile holds the header value static mode sends, verbatim
	// ("Bearer …", an API key).
	ValueFile string `yaml:"value_file"`
	// Value is a literal header value: refused unless
	// development.allow_secret_literals is on.
	Value string `yaml:"value"`
}

// Redaction configures the credential detectors applied to tool arguments
// (from the model) and to everything returned to the client.
type Redaction struct {
	// Detectors sets a built-in detector's action: redact (default), block,
	// audit or off.
	Detectors map[string]string `yaml:"detectors"`
	// Patterns are user-defined detectors.
	Patterns []RedactionPattern `yaml:"patterns"`
	// MaxScanBytes bounds what is scanned at once; larger content is
	// blocked, never passed unscanned. Default 16MiB.
	MaxScanBytes ByteSize `yaml:"max_scan_bytes"`
}

// RedactionPattern is a user-defined detector.
type RedactionPattern struct {
	// Name identifies it in audit records. [a-z0-9_], unique.
	Name string `yaml:"name"`
	// Regex is an RE2 expression (linear time) that must not match "".
	Regex string `yaml:"regex"`
	// Action is redact (default), block or audit.
	Action string `yaml:"action"`
}

// Credential defaults.
const (
	DefaultMintLifetime    = 5 * time.Minute
	MaxMintLifetime        = time.Hour
	DefaultKeyRotateEvery  = 24 * time.Hour
	DefaultMaxScanBytes    = 16 << 20
	DefaultCredentialsMode = "none"
)

func (c *Config) applyCredentialDefaults() {
	m := &c.Credentials.Mint
	setString(&m.Issuer, c.Server.PublicBaseURL)
	setString(&m.Algorithm, "ES256")
	setDuration(&m.RotateEvery, DefaultKeyRotateEvery)
	for i := range c.Routes {
		r := &c.Routes[i]
		rc := &r.Credentials
		setString(&rc.Mode, DefaultCredentialsMode)
		switch rc.Mode {
		case "mint":
			setString(&rc.Audience, r.Upstream.URL)
			setDuration(&rc.Lifetime, DefaultMintLifetime)
		case "exchange", "client_credentials":
			setString(&rc.Resource, r.Upstream.URL)
			setString(&rc.AuthMethod, "client_secret_basic")
			if rc.AuthorizationServer == "" {
				if len(r.AuthorizationServers) == 1 {
					rc.AuthorizationServer = r.AuthorizationServers[0]
				} else if len(r.AuthorizationServers) == 0 && len(c.AuthorizationServers) == 1 {
					rc.AuthorizationServer = c.AuthorizationServers[0].Issuer
				}
			}
		case "static":
			setString(&rc.Header, "Authorization")
		}
	}
	setSize(&c.Redaction.MaxScanBytes, DefaultMaxScanBytes)
	for i := range c.Redaction.Patterns {
		setString(&c.Redaction.Patterns[i].Action, "redact")
	}
}

var patternNameRE = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

func (c *Config) validateCredentials(p *problems, issuers map[string]bool) {
	m := c.Credentials.Mint
	minting := slices.ContainsFunc(c.Routes, func(r Route) bool { return r.Credentials.Mode == "mint" })
	if minting {
		if u, err := url.Parse(m.Issuer); err != nil || u.Host == "" ||
			!(u.Scheme == "https" || (u.Scheme == "http" && isLoopbackHost(u.Hostname()))) {
			p.add("credentials.mint.issuer", "must be an absolute https URL (plain http only for a loopback host)")
		}
	}
	if m.Algorithm != "ES256" && m.Algorithm != "EdDSA" {
		p.add("credentials.mint.algorithm", "must be ES256 or EdDSA, not %q", m.Algorithm)
	}
	if m.RotateEvery < Duration(time.Hour) {
		p.add("credentials.mint.rotate_every", "must be at least 1h")
	}
	ids := map[string]bool{}
	for i, k := range m.SigningKeys {
		if k.File == "" {
			p.add(fmt.Sprintf("credentials.mint.signing_keys[%d].file", i), "required")
		}
		if k.ID != "" && ids[k.ID] {
			p.add(fmt.Sprintf("credentials.mint.signing_keys[%d].id", i), "%q is used by another key", k.ID)
		}
		ids[k.ID] = true
	}
	for i, r := range c.Routes {
		c.validateRouteCredentials(p, fmt.Sprintf("routes[%d].credentials", i), r, issuers)
	}

	rd := c.Redaction
	for name, a := range rd.Detectors {
		if !slices.Contains([]string{"redact", "block", "audit", "off"}, a) {
			p.add("redaction.detectors."+name, "must be redact, block, audit or off, not %q", a)
		}
	}
	names := map[string]bool{}
	for i, pt := range rd.Patterns {
		key := fmt.Sprintf("redaction.patterns[%d]", i)
		if !patternNameRE.MatchString(pt.Name) {
			p.add(key+".name", "%q must be 1-64 characters of a-z, 0-9 and _", pt.Name)
		} else if names[pt.Name] || rd.Detectors[pt.Name] != "" {
			p.add(key+".name", "%q is used by another detector", pt.Name)
		}
		names[pt.Name] = true
		if re, err := regexp.Compile(pt.Regex); err != nil {
			p.add(key+".regex", "does not compile: %v", err)
		} else if re.MatchString("") {
			p.add(key+".regex", "matches the empty string")
		}
		if !slices.Contains([]string{"redact", "block", "audit"}, pt.Action) {
			p.add(key+".action", "must be redact, block or audit, not %q", pt.Action)
		}
	}
	if rd.MaxScanBytes <= 0 {
		p.add("redaction.max_scan_bytes", "must be positive")
	}
}

func (c *Config) validateRouteCredentials(p *problems, key string, r Route, issuers map[string]bool) {
	rc := r.Credentials
	literals := c.Development.AllowSecretLiterals
	absURL := func(field, v string) {
		if u, err := url.Parse(v); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.Fragment != "" {
			p.add(key+"."+field, "must be an absolute http or https URL without a fragment")
		}
	}
	unused := func(fields map[string]bool) {
		for f, set := range fields {
			if set {
				p.add(key+"."+f, "is not used by mode %q", rc.Mode)
			}
		}
	}
	for _, s := range rc.Scopes {
		if !ValidScope(s) {
			p.add(key+".scopes", "%q is not a valid scope token", s)
		}
	}
	oauthFields := map[string]bool{
		"authorization_server": rc.AuthorizationServer != "", "token_endpoint": rc.TokenEndpoint != "",
		"client_id": rc.ClientID != "", "client_secret_file": rc.ClientSecretFile != "",
		"client_secret": rc.ClientSecret != "", "auth_method": rc.AuthMethod != "",
	}
	staticFields := map[string]bool{"header": rc.Header != "", "value_file": rc.ValueFile != "", "value": rc.Value != ""}
	trusted := r.AuthorizationServers // the issuers whose tokens the route accepts
	if len(trusted) == 0 {
		for _, as := range c.AuthorizationServers {
			trusted = append(trusted, as.Issuer)
		}
	}
	switch rc.Mode {
	case "none":
		unused(oauthFields)
		unused(staticFields)
		unused(map[string]bool{"audience": rc.Audience != "", "resource": rc.Resource != "", "scopes": len(rc.Scopes) > 0, "lifetime": rc.Lifetime != 0})
	case "mint":
		unused(oauthFields)
		unused(staticFields)
		unused(map[string]bool{"resource": rc.Resource != ""})
		if rc.Audience == "" || strings.TrimSpace(rc.Audience) != rc.Audience {
			p.add(key+".audience", "must be a non-empty value without surrounding space")
		}
		if rc.Lifetime < Duration(time.Second) || rc.Lifetime > Duration(MaxMintLifetime) {
			p.add(key+".lifetime", "must be between 1s and %s", MaxMintLifetime)
		}
		if len(trusted) > 1 {
			// A minted token names the user by sub alone: the same sub at
			// two issuers would be one user to the upstream.
			p.add(key+".mode", "mint needs the route to trust exactly one issuer (routes[].authorization_servers): "+
				"the same subject at two issuers would be one user to the upstream")
		}
	case "exchange", "client_credentials":
		unused(staticFields)
		unused(map[string]bool{"lifetime": rc.Lifetime != 0})
		if rc.Mode == "client_credentials" && rc.Audience != "" {
			p.add(key+".audience", "is not used by mode %q (the resource names the upstream)", rc.Mode)
		}
		absURL("resource", rc.Resource)
		if rc.TokenEndpoint != "" {
			absURL("token_endpoint", rc.TokenEndpoint)
			if err := c.checkOutboundURL(rc.TokenEndpoint); err != nil {
				p.add(key+".token_endpoint", "%v", err)
			}
		}
		switch {
		case rc.AuthorizationServer == "":
			p.add(key+".authorization_server", "required: the route trusts several issuers; name the one whose token endpoint to use")
		case !issuers[rc.AuthorizationServer]:
			p.add(key+".authorization_server", "%q is not one of the configured authorization_servers", rc.AuthorizationServer)
		case rc.Mode == "exchange" && (len(trusted) != 1 || trusted[0] != rc.AuthorizationServer):
			p.add(key+".authorization_server", "exchange needs the route to trust only %q (routes[].authorization_servers): "+
				"another issuer's tokens cannot be exchanged there, and must not be sent there", rc.AuthorizationServer)
		}
		if rc.ClientID == "" {
			p.add(key+".client_id", "required: mcpgate's client at the authorization server")
		}
		c.secretSource(p, key, "client_secret", rc.ClientSecretFile, rc.ClientSecret, literals)
		if rc.AuthMethod != "client_secret_basic" && rc.AuthMethod != "client_secret_post" {
			p.add(key+".auth_method", "must be client_secret_basic or client_secret_post, not %q", rc.AuthMethod)
		}
	case "static":
		unused(oauthFields)
		unused(map[string]bool{"audience": rc.Audience != "", "resource": rc.Resource != "", "scopes": len(rc.Scopes) > 0, "lifetime": rc.Lifetime != 0})
		if err := checkCredentialHeader(rc.Header); err != nil {
			p.add(key+".header", "%v", err)
		}
		c.secretSource(p, key, "value", rc.ValueFile, rc.Value, literals)
	default:
		p.add(key+".mode", "must be none, mint, exchange, client_credentials or static, not %q", rc.Mode)
	}
}

// secretSource checks that a secret comes from exactly one place: a file,
// or a literal when the development flag allows it.
func (c *Config) secretSource(p *problems, key, field, file, literal string, literals bool) {
	switch {
	case file != "" && literal != "":
		p.add(key+"."+field, "set either %s_file or %s, not both", field, field)
	case literal != "" && !literals:
		p.add(key+"."+field, "secrets are read from files (%s_file); a literal needs development.allow_secret_literals", field)
	case file == "" && literal == "":
		p.add(key+"."+field+"_file", "required")
	}
}

// checkCredentialHeader refuses headers a credential must not be put in.
func checkCredentialHeader(h string) error {
	if h == "" || strings.IndexFunc(h, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
		return fmt.Errorf("%q is not a valid header name", h)
	}
	switch lh := strings.ToLower(h); {
	case slices.Contains([]string{"host", "cookie", "set-cookie", "content-length", "content-type", "content-encoding", "expect",
		"transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization", "proxy-authenticate",
		"proxy-connection", "accept", "user-agent"}, lh):
		return fmt.Errorf("%q cannot carry a credential", h)
	case strings.HasPrefix(lh, "mcp-"):
		return fmt.Errorf("%q is an MCP transport header", h)
	}
	return nil
}
