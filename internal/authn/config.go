package authn

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/mcpgate/mcpgate/internal/egress"
)

// Defaults applied by New to zero-valued fields.
const (
	DefaultMaxTokenBytes      = 8192
	DefaultCacheSize          = 10000
	DefaultClockSkew          = 60 * time.Second
	MaxClockSkew              = 300 * time.Second
	DefaultRefreshInterval    = 15 * time.Minute
	DefaultMaxStale           = time.Hour
	DefaultUnknownKIDCooldown = 30 * time.Second
	DefaultIntrospectionTTL   = 60 * time.Second
	DefaultBreakerFailures    = 5
	MaxBreakerFailures        = 1000
	DefaultBreakerOpenTimeout = 30 * time.Second
)

// Config configures an Authenticator.
type Config struct {
	// Issuers are the trusted authorization servers; at least one.
	Issuers []IssuerConfig
	// MaxTokenBytes caps the bearer token; a longer one is refused (401
	// invalid_token, reason too_large) without parsing. 0 → 8192.
	MaxTokenBytes int
	// CacheSize bounds the verified-token cache (LRU). 0 → 10000.
	CacheSize int
}

// IssuerConfig configures one trusted authorization server.
type IssuerConfig struct {
	// Issuer is the exact issuer identifier: tokens' iss and the discovered
	// metadata's issuer must equal it byte for byte. Required.
	Issuer string
	// Algorithms pins the accepted JWS algorithms. nil → ["RS256"]. Allowed:
	// RS256/384/512, PS256/384/512, ES256/384/512, EdDSA; never none or HS*.
	Algorithms []string
	// AllowLegacyJWTType also accepts typ "JWT" or no typ. Default false:
	// only at+jwt / application/at+jwt (RFC 9068 §4), case-insensitive.
	AllowLegacyJWTType bool
	// ClientIDClaims are the claims read, in order, for the client id.
	// nil → ["client_id", "azp"]; allowed: client_id, azp, cid (Okta),
	// appid (Entra ID v1).
	ClientIDClaims []string
	// ScopeClaims are the claims scopes are read from: the first present
	// wins. nil → ["scope", "scp"]; allowed: scope, scp, roles (Entra ID
	// app roles, for app-only tokens).
	ScopeClaims []string
	// ClockSkew is the leeway for exp, nbf and iat. 0 → 60s; at most 300s.
	ClockSkew time.Duration
	// JWKSURI overrides the metadata's jwks_uri. "" → discovered.
	JWKSURI string
	// RefreshInterval is the background JWKS refresh period. 0 → 15m.
	RefreshInterval time.Duration
	// MaxStale is how long after its last successful fetch the key set is
	// still used through an outage; then requests fail closed (503). 0 → 1h.
	MaxStale time.Duration
	// UnknownKIDCooldown is the minimum time between two request-triggered
	// JWKS fetches (unknown kid, keys missing or stale), shared by
	// concurrent misses. 0 → 30s.
	UnknownKIDCooldown time.Duration
	// Introspection enables RFC 7662 introspection of opaque tokens at this
	// issuer. nil → JWTs only.
	Introspection *IntrospectionConfig
	// HTTP is the guarded client for discovery, JWKS and introspection.
	// Required.
	HTTP *egress.Client
	// BreakerFailures is how many consecutive server failures (network
	// errors, timeouts, 5xx, unparseable bodies) open the issuer's circuit
	// breaker for that kind of call (discovery, JWKS, introspection);
	// while open, those calls fail at once without network I/O, and
	// requests fail exactly as in an outage. A well-formed refusal
	// (active false, another 4xx) is not a failure. 0 → 5; at most 1000.
	BreakerFailures int
	// BreakerOpenTimeout is how long the breaker stays open before letting
	// one probe call through (half-open). 0 → 30s.
	BreakerOpenTimeout time.Duration
}

// IntrospectionConfig configures RFC 7662 introspection for one issuer.
type IntrospectionConfig struct {
	// Endpoint is the introspection URL. "" → the metadata's
	// introspection_endpoint.
	Endpoint string
	// ClientID identifies mcpgate to the endpoint. Required.
	ClientID string
	// ClientSecret authenticates mcpgate; read by the caller from a file.
	// Required.
	ClientSecret []byte
	// AuthMethod is "client_secret_basic" or "client_secret_post".
	// "" → client_secret_basic.
	AuthMethod string
	// CacheTTL bounds how long an active answer is reused; an entry lives
	// min(CacheTTL, exp-now). 0 → 60s.
	CacheTTL time.Duration
}

// Deps are the Authenticator's injected dependencies.
type Deps struct {
	// Logger receives refresh failures. nil → discard.
	Logger *slog.Logger
	// Now is the clock for every time decision. nil → time.Now.
	Now func() time.Time
	// InsecureSkipAudienceCheck accepts tokens whatever their audience.
	// It exists ONLY so that tests can prove that a check they rely on is
	// the audience check; no configuration key can set it, and it MUST NOT
	// be set anywhere else: it makes any token from a trusted issuer valid
	// at every route.
	InsecureSkipAudienceCheck bool

	// Observability hooks; nil → not called. They are called synchronously
	// (keep them fast), from many goroutines at once, and never receive
	// token bytes.

	// OnCall is called after every attempted authorization-server call,
	// call being "discovery", "jwks" or "introspection" (CallDiscovery …),
	// with its wall-clock duration and error (nil on success). A call the
	// circuit breaker refused is reported too, its error matching
	// ErrCircuitOpen.
	OnCall func(issuer, call string, d time.Duration, err error)
	// OnStaleDenial is called when a request is refused with 503 because
	// the issuer's key set is older than MaxStale and could not be
	// refreshed.
	OnStaleDenial func(issuer string)
	// OnRefreshFailure is called when a background (Run) refresh of the
	// issuer's metadata and keys fails.
	OnRefreshFailure func(issuer string)
}

// normalize validates cfg and applies defaults, reporting every problem.
func (cfg *Config) normalize() error {
	var errs []error
	if len(cfg.Issuers) == 0 {
		errs = append(errs, errors.New("no issuers configured"))
	}
	if cfg.MaxTokenBytes < 0 || cfg.MaxTokenBytes > 64<<10 {
		errs = append(errs, errors.New("max token bytes must be between 0 and 65536"))
	}
	if cfg.CacheSize < 0 {
		errs = append(errs, errors.New("cache size must not be negative"))
	}
	if cfg.MaxTokenBytes == 0 {
		cfg.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	seen := map[string]bool{}
	issuers := make([]IssuerConfig, len(cfg.Issuers))
	for i, ic := range cfg.Issuers {
		if seen[ic.Issuer] {
			errs = append(errs, fmt.Errorf("issuer %q configured twice", ic.Issuer))
		}
		seen[ic.Issuer] = true
		if err := ic.normalize(); err != nil {
			errs = append(errs, fmt.Errorf("issuer %q: %w", ic.Issuer, err))
		}
		issuers[i] = ic
	}
	cfg.Issuers = issuers
	return errors.Join(errs...)
}

func (ic *IssuerConfig) normalize() error {
	var errs []error
	if u, err := url.Parse(ic.Issuer); err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
		(u.Scheme != "https" && u.Scheme != "http") {
		errs = append(errs, errors.New("issuer must be an absolute https url without query or fragment"))
	}
	if len(ic.Algorithms) == 0 {
		ic.Algorithms = []string{"RS256"}
	}
	if len(ic.ClientIDClaims) == 0 {
		ic.ClientIDClaims = defaultClientIDClaims
	}
	if len(ic.ScopeClaims) == 0 {
		ic.ScopeClaims = defaultScopeClaims
	}
	for _, n := range ic.ClientIDClaims {
		if !slices.Contains(ClientIDClaimNames, n) {
			errs = append(errs, fmt.Errorf("client id claim %q not supported", n))
		}
	}
	for _, n := range ic.ScopeClaims {
		if !slices.Contains(ScopeClaimNames, n) {
			errs = append(errs, fmt.Errorf("scope claim %q not supported", n))
		}
	}
	ic.Algorithms = slices.Clone(ic.Algorithms)
	for _, a := range ic.Algorithms {
		if !supportedAlgs[a] {
			errs = append(errs, fmt.Errorf("algorithm %q not allowed", a))
		}
	}
	if ic.ClockSkew < 0 || ic.ClockSkew > MaxClockSkew {
		errs = append(errs, fmt.Errorf("clock skew must be between 0 and %s", MaxClockSkew))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"refresh interval", ic.RefreshInterval}, {"max stale", ic.MaxStale}, {"unknown kid cooldown", ic.UnknownKIDCooldown},
		{"breaker open timeout", ic.BreakerOpenTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", d.name))
		}
	}
	if ic.BreakerFailures < 0 || ic.BreakerFailures > MaxBreakerFailures {
		errs = append(errs, fmt.Errorf("breaker failures must be between 0 and %d", MaxBreakerFailures))
	}
	if ic.JWKSURI != "" {
		if u, err := url.Parse(ic.JWKSURI); err != nil || !u.IsAbs() || u.Host == "" {
			errs = append(errs, errors.New("jwks uri must be an absolute url"))
		}
	}
	if ic.HTTP == nil {
		errs = append(errs, errors.New("no http client"))
	}
	ic.ClockSkew = orDefault(ic.ClockSkew, DefaultClockSkew)
	ic.RefreshInterval = orDefault(ic.RefreshInterval, DefaultRefreshInterval)
	ic.MaxStale = orDefault(ic.MaxStale, DefaultMaxStale)
	ic.UnknownKIDCooldown = orDefault(ic.UnknownKIDCooldown, DefaultUnknownKIDCooldown)
	ic.BreakerOpenTimeout = orDefault(ic.BreakerOpenTimeout, DefaultBreakerOpenTimeout)
	if ic.BreakerFailures == 0 {
		ic.BreakerFailures = DefaultBreakerFailures
	}
	if in := ic.Introspection; in != nil {
		c := *in // never modify the caller's struct
		c.ClientSecret = slices.Clone(c.ClientSecret)
		if c.ClientID == "" || len(c.ClientSecret) == 0 {
			errs = append(errs, errors.New("introspection needs a client id and secret"))
		}
		switch c.AuthMethod {
		case "":
			c.AuthMethod = "client_secret_basic"
		case "client_secret_basic", "client_secret_post":
		default:
			errs = append(errs, fmt.Errorf("introspection auth method %q not supported", c.AuthMethod))
		}
		if c.Endpoint != "" {
			if u, err := url.Parse(c.Endpoint); err != nil || !u.IsAbs() || u.Host == "" {
				errs = append(errs, errors.New("introspection endpoint must be an absolute url"))
			}
		}
		if c.CacheTTL < 0 {
			errs = append(errs, errors.New("introspection cache ttl must not be negative"))
		}
		c.CacheTTL = orDefault(c.CacheTTL, DefaultIntrospectionTTL)
		ic.Introspection = &c
	}
	return errors.Join(errs...)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

var (
	defaultClientIDClaims = []string{"client_id", "azp"}
	defaultScopeClaims    = []string{"scope", "scp"}
)
