// Package gateway wires mcpgate's stages into the request path. It is the
// only package that imports every stage; serve.go reads top to bottom as
// the pipeline, and errors.go is the one place where an error becomes an
// HTTP response.
package gateway

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/authn"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/egress"
	"github.com/mcpgate/mcpgate/internal/inbound"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/secret"
	"github.com/mcpgate/mcpgate/internal/session"
	"github.com/mcpgate/mcpgate/internal/tlsfiles"
	"github.com/mcpgate/mcpgate/internal/upstream"
)

// Deps are the gateway's injected dependencies. Every field is optional.
type Deps struct {
	// Logger receives operational logs. nil → discard.
	Logger *slog.Logger
	// Now is the clock. nil → time.Now.
	Now func() time.Time
	// Audit records decisions. nil → built from the configuration.
	Audit audit.Sink
	// UpstreamTransport overrides the transport to every upstream (tests).
	UpstreamTransport http.RoundTripper
	// InsecureSkipAudienceCheck turns off the token audience check. It
	// exists ONLY for tests that prove a behaviour depends on that check
	// (the demo's story); no configuration key sets it.
	InsecureSkipAudienceCheck bool
}

// Gateway serves every configured route.
type Gateway struct {
	cfg      *config.Config
	log      *slog.Logger
	now      func() time.Time
	authn    *authn.Authenticator
	sessions *session.Store
	streams  *session.Streams
	limiter  *inbound.RateLimiter
	audit    audit.Sink
	origins  map[string]bool
	trusted  []netip.Prefix
	limits   inbound.Limits
	routes   []*route
	mux      *http.ServeMux

	reqPrefix string
	reqSeq    atomic.Uint64
}

// route is one protected MCP endpoint.
type route struct {
	g           *Gateway
	name        string
	path        string
	resource    string // canonical resource URI: public base URL + path
	metadataURL string // RFC 9728 path-inserted well-known URL
	issuers     []string
	audiences   []string // accepted in aud besides resource
	hierarchy   *policy.Hierarchy
	policy      *policy.Route
	proxy       *upstream.Proxy
	upstream    string // upstream host, for audit
}

// Check validates cfg completely, including what only the stages can check
// (policy rules, patterns and templates), and returns every problem at
// once. It reads no files and opens no connections.
func Check(cfg *config.Config) error {
	errs := []error{cfg.Validate()}
	h, err := policy.NewHierarchy(cfg.Scopes.Implies)
	if err != nil {
		errs = append(errs, fmt.Errorf("scopes.implies: %w", err))
	}
	for i, rc := range cfg.Routes {
		if _, err := policy.Compile(h, routePolicy(rc)); err != nil {
			errs = append(errs, fmt.Errorf("routes[%d] (%s): %w", i, rc.Name, err))
		}
	}
	return errors.Join(errs...)
}

// New builds a gateway from a configuration that passed Check. It reads
// secret and certificate files but makes no network calls; authorization
// server metadata and keys are fetched by Run, or lazily.
func New(cfg *config.Config, deps Deps) (*Gateway, error) {
	if err := Check(cfg); err != nil {
		return nil, err
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	g := &Gateway{
		cfg: cfg,
		log: log,
		now: now,
		sessions: session.New(session.Config{
			MaxSessions:     cfg.Limits.MaxSessions,
			MaxPerPrincipal: cfg.Limits.MaxSessionsPerPrincipal,
			IdleTimeout:     cfg.Limits.SessionIdleTimeout.D(),
			Now:             now,
		}),
		streams: session.NewStreams(cfg.Limits.MaxStreamsPerPrincipal),
		limiter: inbound.NewRateLimiter(cfg.Limits.RatePerIP.RequestsPerSecond, cfg.Limits.RatePerIP.Burst, 0, now),
		origins: map[string]bool{},
		limits: inbound.Limits{
			MaxBodyBytes:    int64(cfg.Limits.MaxBodyBytes),
			MaxDepth:        cfg.Limits.MaxJSONDepth,
			BodyReadTimeout: cfg.Server.BodyReadTimeout.D(),
		},
		mux: http.NewServeMux(),
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	g.reqPrefix = hex.EncodeToString(rnd[:])
	for _, o := range cfg.Server.AllowedOrigins {
		canon, _ := config.ParseOrigin(o)
		g.origins[canon] = true
	}
	for _, c := range cfg.Server.TrustedProxies {
		g.trusted = append(g.trusted, netip.MustParsePrefix(c))
	}
	if cfg.Development.InsecureAllowHTTPLoopback {
		log.Warn("DEVELOPMENT MODE: authorization servers may be reached over plain http on loopback")
	}

	var err error
	if deps.InsecureSkipAudienceCheck {
		log.Warn("INSECURE: the token audience check is off; tokens for any route are accepted everywhere")
	}
	if g.authn, err = newAuthenticator(cfg, authn.Deps{Logger: log, Now: now, InsecureSkipAudienceCheck: deps.InsecureSkipAudienceCheck}); err != nil {
		return nil, err
	}
	g.audit = deps.Audit
	if g.audit == nil {
		if g.audit, err = newAuditSink(cfg.Audit); err != nil {
			return nil, err
		}
	}
	h, _ := policy.NewHierarchy(cfg.Scopes.Implies)
	for _, rc := range cfg.Routes {
		rt, err := g.newRoute(rc, h, deps.UpstreamTransport)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", rc.Name, err)
		}
		g.routes = append(g.routes, rt)
	}
	g.registerHandlers()
	return g, nil
}

func newAuthenticator(cfg *config.Config, deps authn.Deps) (*authn.Authenticator, error) {
	ac := authn.Config{MaxTokenBytes: int(cfg.Limits.MaxTokenBytes)}
	for _, as := range cfg.AuthorizationServers {
		ec := egress.Config{
			Timeout:           as.HTTPTimeout.D(),
			AllowHTTPLoopback: cfg.Development.InsecureAllowHTTPLoopback,
		}
		if as.CAFile != "" {
			pool, err := loadPool(as.CAFile)
			if err != nil {
				return nil, fmt.Errorf("authorization server %s: %w", as.Issuer, err)
			}
			ec.RootCAs = pool
		}
		client, err := egress.New(ec)
		if err != nil {
			return nil, fmt.Errorf("authorization server %s: %w", as.Issuer, err)
		}
		ic := authn.IssuerConfig{
			Issuer:             as.Issuer,
			Algorithms:         as.Algorithms,
			AllowLegacyJWTType: as.AllowLegacyJWTType,
			ClientIDClaims:     as.ClientIDClaims,
			ScopeClaims:        as.ScopeClaims,
			ClockSkew:          as.ClockSkew.D(),
			JWKSURI:            as.JWKSURI,
			RefreshInterval:    as.JWKSRefreshInterval.D(),
			MaxStale:           as.JWKSMaxStale.D(),
			UnknownKIDCooldown: as.UnknownKIDCooldown.D(),
			HTTP:               client,
		}
		if in := as.Introspection; in != nil {
			sec, err := secret.ReadFile(in.ClientSecretFile)
			if err != nil {
				return nil, fmt.Errorf("authorization server %s: introspection: %w", as.Issuer, err)
			}
			ic.Introspection = &authn.IntrospectionConfig{
				Endpoint:     in.Endpoint,
				ClientID:     in.ClientID,
				ClientSecret: sec,
				AuthMethod:   in.AuthMethod,
				CacheTTL:     in.CacheTTL.D(),
			}
		}
		ac.Issuers = append(ac.Issuers, ic)
	}
	return authn.New(ac, deps)
}

func newAuditSink(c config.Audit) (audit.Sink, error) {
	if c.Sink == "file" {
		return audit.OpenFile(c.File)
	}
	return audit.NewWriter(os.Stdout), nil
}

func (g *Gateway) newRoute(rc config.Route, h *policy.Hierarchy, tr http.RoundTripper) (*route, error) {
	pol, err := policy.Compile(h, routePolicy(rc))
	if err != nil {
		return nil, err
	}
	resource := g.cfg.Server.PublicBaseURL + rc.Path
	md, err := authn.MetadataURL(resource)
	if err != nil {
		return nil, err
	}
	target, _ := url.Parse(rc.Upstream.URL)
	uc := upstream.Config{
		URL:                   target,
		ForwardHeaders:        rc.Upstream.ForwardHeaders,
		ResponseHeaderTimeout: rc.Upstream.ResponseHeaderTimeout.D(),
		DialTimeout:           rc.Upstream.DialTimeout.D(),
		MaxResponseBytes:      int64(g.cfg.Limits.MaxResponseBytes),
	}
	if t := rc.Upstream.TLS; t != nil {
		uc.TLS, err = tlsfiles.ClientConfig(tlsfiles.ClientConfigOptions{
			CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName,
		}, g.log)
		if err != nil {
			return nil, fmt.Errorf("upstream tls: %w", err)
		}
	}
	proxy, err := upstream.New(uc, upstream.Deps{Logger: g.log, Transport: tr})
	if err != nil {
		return nil, err
	}
	issuers := rc.AuthorizationServers
	if len(issuers) == 0 {
		for _, as := range g.cfg.AuthorizationServers {
			issuers = append(issuers, as.Issuer)
		}
	}
	return &route{
		g: g, name: rc.Name, path: rc.Path, resource: resource, metadataURL: md,
		issuers: issuers, audiences: rc.Audiences, hierarchy: h, policy: pol, proxy: proxy, upstream: target.Host,
	}, nil
}

// routePolicy maps a route's configuration onto the policy stage's.
func routePolicy(rc config.Route) policy.RouteConfig {
	pc := policy.RouteConfig{
		RequiredScopes:  rc.RequiredScopes,
		Tools:           map[string]policy.Rule{},
		Prompts:         map[string]policy.Rule{},
		DefaultTool:     policy.Default{Allow: rc.DefaultTool.Allow, Scopes: rc.DefaultTool.Scopes},
		DefaultPrompt:   policy.Default{Allow: rc.DefaultPrompt.Allow, Scopes: rc.DefaultPrompt.Scopes},
		DefaultResource: policy.Default{Allow: rc.DefaultResource.Allow, Scopes: rc.DefaultResource.Scopes},
	}
	for name, r := range rc.Tools {
		pc.Tools[name] = policy.Rule{Scopes: r.Scopes, Arguments: argRules(r.Arguments), Deny: r.Deny}
	}
	for name, r := range rc.Prompts {
		pc.Prompts[name] = policy.Rule{Scopes: r.Scopes, Arguments: argRules(r.Arguments), Deny: r.Deny}
	}
	for _, r := range rc.Resources {
		pc.Resources = append(pc.Resources, policy.ResourceRule{URI: r.URI, Scopes: r.Scopes, Arguments: argRules(r.Arguments), Deny: r.Deny})
	}
	return pc
}

func argRules(in map[string]config.ArgumentRule) map[string]policy.ArgRule {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]policy.ArgRule, len(in))
	for k, v := range in {
		out[k] = policy.ArgRule{Pattern: v.Pattern}
	}
	return out
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// Ready reports whether every issuer's keys (or introspection endpoint) are
// loaded.
func (g *Gateway) Ready() bool { return g.authn.Ready() }

// Close releases the audit sink.
func (g *Gateway) Close() error { return g.audit.Close() }

// nextRequestID returns a unique, unguessable-prefix request id.
func (g *Gateway) nextRequestID() string {
	b := make([]byte, 0, len(g.reqPrefix)+17)
	b = append(append(b, g.reqPrefix...), '-')
	return string(strconv.AppendUint(b, g.reqSeq.Add(1), 16))
}

// tlsMinVersion maps the configured minimum TLS version.
func tlsMinVersion(v string) uint16 {
	if v == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}
