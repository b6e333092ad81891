// Package gateway wires mcpgate's stages into the request path. It is the
// only package that imports every stage; serve.go reads top to bottom as
// the pipeline, and errors.go is the one place where an error becomes an
// HTTP response.
package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/internal/anomaly"
	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/authn"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/credential"
	"github.com/mcpgate/mcpgate/internal/egress"
	"github.com/mcpgate/mcpgate/internal/inbound"
	"github.com/mcpgate/mcpgate/internal/metrics"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/redact"
	"github.com/mcpgate/mcpgate/internal/redisconn"
	"github.com/mcpgate/mcpgate/internal/revoke"
	"github.com/mcpgate/mcpgate/internal/secret"
	"github.com/mcpgate/mcpgate/internal/session"
	"github.com/mcpgate/mcpgate/internal/state"
	"github.com/mcpgate/mcpgate/internal/tlsfiles"
	"github.com/mcpgate/mcpgate/internal/tokencache"
	"github.com/mcpgate/mcpgate/internal/toolpin"
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
	// Store keeps sequence-policy state. nil → an in-process store.
	Store state.Store
	// InsecureSkipAudienceCheck turns off the token audience check. It
	// exists ONLY for tests that prove a behaviour depends on that check
	// (the demo's story); no configuration key sets it.
	InsecureSkipAudienceCheck bool

	prev *Gateway // Reload: the gateway whose state the new one takes over
}

// Gateway serves every configured route.
type Gateway struct {
	cfg          *config.Config
	log          *slog.Logger
	now          func() time.Time
	authn        *authn.Authenticator
	sessions     session.Bindings // session ownership: in memory, or shared through redis
	sessionCount func() int       // sessions held, for the gauge (-1: the shared store did not answer)
	streams      *session.Streams
	limiter      *inbound.RateLimiter
	audit        audit.Sink
	origins      map[string]bool
	trusted      []netip.Prefix
	limits       inbound.Limits
	routes       []*route
	mux          *http.ServeMux
	pins         *toolpin.Pins    // fingerprints of upstream tool definitions
	seq          *policy.Sequence // sequence rules, across routes
	store        state.Store      // sequence histories and budgets
	hasListRules bool             // some sequence rule filters tools/list
	redactor     *redact.Scanner  // credential detectors, both directions
	capture      *redact.Scanner  // redacts captured arguments; nil: not captured
	admin        *admin           // the admin listener's handlers
	metrics      *metrics.Metrics
	revoked      *revoke.List       // token revocations, checked on every request
	redis        *redisconn.Conn    // the shared store's connection; nil: in-process state
	tokens       *tokencache.Cache  // exchanged tokens shared through redis; nil: per replica
	streamsOpen  *openStreams       // event streams in flight, ended when their token is revoked
	anomaly      *anomaly.Detector  // nil: detection off
	keys         *credential.KeySet // mcpgate's signing keys (mint mode), nil when no route mints

	reqPrefix string
	reqSeq    *atomic.Uint64
	// auditLost counts decision records that could not be written for
	// calls forwarded anyway (audit.on_failure: allow).
	auditLost *atomic.Uint64

	// live is the gateway currently serving, shared by every gateway a
	// Reload builds from this one: requests are handed to it.
	live    *atomic.Pointer[Gateway]
	run     *runState // background tasks, shared across reloads
	deps    Deps
	ungauge []func() // removes this gateway's gauge sources
}

// route is one protected MCP endpoint.
type route struct {
	g                                    *Gateway
	name                                 string
	path                                 string
	resource                             string // canonical resource URI: public base URL + path
	metadataURL                          string // RFC 9728 path-inserted well-known URL
	issuers                              []string
	audiences                            []string            // accepted in aud besides resource
	labels                               map[string][]string // tool → configured labels
	results                              map[string][]string // tool → labels its results add to the taint
	tools                                toolBook            // what the upstream's tool lists taught us
	pinMode                              toolpin.Mode
	ignoreAnnotations, trustResultLabels bool
	hierarchy                            *policy.Hierarchy
	policy                               *policy.Route
	proxy                                *upstream.Proxy
	upstream                             string            // upstream host, for audit
	cred                                 credential.Source // nil: the upstream receives no credential
	credMode                             string
	credIssuer                           string // exchange: the only issuer whose tokens are exchanged
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
	if _, err := policy.CompileSequence(sequencePolicy(cfg.Sequence), time.Now); err != nil {
		errs = append(errs, fmt.Errorf("sequence: %w", err))
	}
	if _, err := newRedactor(cfg.Redaction); err != nil {
		errs = append(errs, err)
	}
	if !cfg.Anomaly.Off {
		if err := anomalyConfig(cfg.Anomaly, time.Now).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("anomaly: %w", err))
		}
	}
	return errors.Join(errs...)
}

// New builds a gateway from a configuration that passed Check. It reads
// secret and certificate files; its only network calls are to a Redis
// store (store.url), which must answer. Authorization server metadata and
// keys are fetched by Run, or lazily.
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
	prev := deps.prev
	if prev != nil {
		if err := restartNeeded(prev.cfg, cfg); err != nil {
			return nil, err
		}
		log, now = prev.log, prev.now
	}
	g := &Gateway{
		cfg:     cfg,
		log:     log,
		now:     now,
		deps:    deps,
		limiter: inbound.NewRateLimiter(cfg.Limits.RatePerIP.RequestsPerSecond, cfg.Limits.RatePerIP.Burst, 0, now),
		origins: map[string]bool{},
		limits: inbound.Limits{
			MaxBodyBytes:    int64(cfg.Limits.MaxBodyBytes),
			MaxDepth:        cfg.Limits.MaxJSONDepth,
			BodyReadTimeout: cfg.Server.BodyReadTimeout.D(),
		},
		mux: http.NewServeMux(),
	}
	g.deps.prev = nil
	var unbuilt []io.Closer // opened by New, closed in reverse unless New succeeds
	defer func() {
		for i := len(unbuilt) - 1; i >= 0; i-- {
			unbuilt[i].Close()
		}
	}()
	if prev != nil && reflect.DeepEqual(prev.cfg.Limits.RatePerIP, cfg.Limits.RatePerIP) {
		g.limiter = prev.limiter // per-address budgets are not reset by a reload
	}
	if prev != nil {
		// What outlives a configuration: sessions, streams, histories,
		// pins, revocations, the audit trail, metrics, request ids.
		g.sessions, g.streams, g.store, g.pins, g.audit = prev.sessions, prev.streams, prev.store, prev.pins, prev.audit
		g.sessionCount = prev.sessionCount
		g.revoked, g.metrics, g.streamsOpen, g.auditLost = prev.revoked, prev.metrics, prev.streamsOpen, prev.auditLost
		g.redis, g.tokens = prev.redis, prev.tokens
		g.reqPrefix, g.reqSeq, g.live, g.run = prev.reqPrefix, prev.reqSeq, prev.live, prev.run
		g.deps.UpstreamTransport, g.deps.InsecureSkipAudienceCheck = prev.deps.UpstreamTransport, prev.deps.InsecureSkipAudienceCheck
		deps = g.deps
	} else {
		if !cfg.Store.Redis() || deps.Store != nil {
			mem := session.New(session.Config{
				MaxSessions:     cfg.Limits.MaxSessions,
				MaxPerPrincipal: cfg.Limits.MaxSessionsPerPrincipal,
				IdleTimeout:     cfg.Limits.SessionIdleTimeout.D(),
				Now:             now,
			})
			g.sessions, g.sessionCount = mem.Bindings(), mem.Len
		}
		g.streams = session.NewStreams(cfg.Limits.MaxStreamsPerPrincipal)
		g.metrics = metrics.New()
		g.streamsOpen, g.auditLost, g.reqSeq = &openStreams{}, new(atomic.Uint64), new(atomic.Uint64)
		g.live, g.run = new(atomic.Pointer[Gateway]), &runState{}
		var rnd [4]byte
		_, _ = rand.Read(rnd[:])
		g.reqPrefix = hex.EncodeToString(rnd[:])
	}
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
	if prev != nil && sameAuthn(prev.cfg, cfg) {
		g.authn = prev.authn // keys and caches stay warm
	} else if g.authn, err = newAuthenticator(cfg, g.authnDeps(deps.InsecureSkipAudienceCheck)); err != nil {
		return nil, err
	}
	if prev != nil && reflect.DeepEqual(prev.cfg.Credentials.Mint, cfg.Credentials.Mint) {
		g.keys = prev.keys // minted tokens stay verifiable
	}
	if prev == nil {
		g.audit = deps.Audit
		if g.audit == nil {
			if g.audit, err = newAuditSink(cfg.Audit, now, log); err != nil {
				return nil, err
			}
			unbuilt = append(unbuilt, g.audit)
		}
		if g.pins, err = toolpin.New(toolpin.Config{File: cfg.ToolPinsFile, Now: now, Logger: log}); err != nil {
			return nil, fmt.Errorf("tool pins: %w", err)
		}
	}
	if g.seq, err = policy.CompileSequence(sequencePolicy(cfg.Sequence), now); err != nil {
		return nil, err
	}
	for _, r := range cfg.Sequence.Rules {
		g.hasListRules = g.hasListRules || r.Phase == "list"
	}
	if g.store == nil {
		g.store = deps.Store
	}
	if g.store == nil && cfg.Store.Redis() {
		if g.redis, err = openRedis(cfg.Store, log, now); err != nil {
			return nil, err
		}
		unbuilt = append(unbuilt, g.redis)
		shared, err := session.NewRedis(session.RedisConfig{Conn: g.redis, MaxSessions: cfg.Limits.MaxSessions,
			MaxPerPrincipal: cfg.Limits.MaxSessionsPerPrincipal, IdleTimeout: cfg.Limits.SessionIdleTimeout.D(), Now: now})
		if err != nil {
			return nil, fmt.Errorf("store: sessions: %w", err)
		}
		g.sessions = shared
		// The gauge counts every replica's sessions; -1 when Redis does
		// not answer the scrape.
		g.sessionCount = func() int {
			n, err := shared.Count(context.Background())
			if err != nil {
				return -1
			}
			return n
		}
		if f := cfg.Store.TokenCacheKeysFile; f != "" {
			if g.tokens, err = tokencache.New(tokencache.Config{Conn: g.redis, KeysFile: f, Now: now, Logger: log}); err != nil {
				return nil, fmt.Errorf("store.token_cache_keys_file: %w", err)
			}
		}
		hc := cfg.Sequence.History
		// Every state update also checks that the revocation list this
		// replica checked the call's token against is still current.
		guard := func() (string, string) { return g.revoked.SharedGuard() }
		if g.store, err = state.NewRedis(state.RedisConfig{Conn: g.redis, MaxEntries: hc.MaxEntries, IdleTimeout: hc.IdleTimeout.D(),
			MaxCached: hc.MaxHistories, Now: now, Guard: guard}); err != nil {
			return nil, err
		}
	}
	if g.store == nil {
		hc := cfg.Sequence.History
		g.store = state.NewMemory(state.MemoryConfig{MaxEntries: hc.MaxEntries, IdleTimeout: hc.IdleTimeout.D(),
			MaxRecords: hc.MaxHistories, Now: now})
	}
	if g.redactor, err = newRedactor(cfg.Redaction); err != nil {
		return nil, err
	}
	if cfg.Audit.CaptureArguments {
		if g.capture, err = newCaptureRedactor(cfg.Redaction); err != nil {
			return nil, err
		}
	}
	if g.revoked == nil {
		if g.revoked, err = revoke.New(revoke.Config{File: cfg.Revocation.File, Redis: g.redis, MaxTokenLifetime: cfg.Revocation.MaxTokenLifetime.D(),
			Now: now, Logger: log}); err != nil {
			return nil, fmt.Errorf("revocation: %w", err)
		}
		if g.redis != nil {
			unbuilt = append(unbuilt, g.revoked) // stops its background sync
		}
		streams := g.streamsOpen
		g.revoked.Subscribe(func(e revoke.Entry) {
			if n := streams.closeRevoked(e); n > 0 {
				log.Info("revocation ended open streams", "streams", n, "kind", string(e.Kind))
			}
		})
	}
	if prev != nil && reflect.DeepEqual(prev.cfg.Anomaly, cfg.Anomaly) {
		g.anomaly = prev.anomaly // baselines survive
	} else if !cfg.Anomaly.Off {
		if g.anomaly, err = anomaly.New(anomalyConfig(cfg.Anomaly, now)); err != nil {
			return nil, fmt.Errorf("anomaly: %w", err)
		}
	}
	if cfg.Development.AllowSecretLiterals {
		log.Warn("DEVELOPMENT MODE: secrets may be written in the configuration instead of files")
	}
	h, _ := policy.NewHierarchy(cfg.Scopes.Implies)
	kit := &credentialKit{g: g}
	for _, rc := range cfg.Routes {
		rt, err := g.newRoute(rc, h, deps.UpstreamTransport)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", rc.Name, err)
		}
		if rt.cred, err = kit.source(rc); err != nil {
			return nil, fmt.Errorf("route %s: credentials: %w", rc.Name, err)
		}
		rt.credMode, rt.credIssuer = rc.Credentials.Mode, rc.Credentials.AuthorizationServer
		g.routes = append(g.routes, rt)
	}
	g.registerHandlers()
	if g.admin, err = newAdmin(g); err != nil {
		return nil, err
	}
	g.ungauge = g.registerGauges(kit)
	if prev == nil {
		g.live.Store(g)
	}
	unbuilt = nil // built: Close releases them
	return g, nil
}

func newAuthenticator(cfg *config.Config, deps authn.Deps) (*authn.Authenticator, error) {
	ac := authn.Config{MaxTokenBytes: int(cfg.Limits.MaxTokenBytes)}
	for _, as := range cfg.AuthorizationServers {
		client, err := issuerClient(cfg, as)
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

// issuerClient returns the HTTP client for calls to an authorization
// server: its CA bundle, its timeout, no plain http beyond loopback in
// development.
func issuerClient(cfg *config.Config, as config.AuthorizationServer) (*egress.Client, error) {
	ec := egress.Config{
		Timeout:           as.HTTPTimeout.D(),
		AllowHTTPLoopback: cfg.Development.InsecureAllowHTTPLoopback,
	}
	if as.CAFile != "" {
		pool, err := loadPool(as.CAFile)
		if err != nil {
			return nil, err
		}
		ec.RootCAs = pool
	}
	return egress.New(ec)
}

// newAuditSink opens the configured audit sink: the durable, rotating file
// sink, or the same chained records on standard output.
func newAuditSink(c config.Audit, now func() time.Time, log *slog.Logger) (audit.Sink, error) {
	if c.SigningKeyFile == "" {
		log.Warn("audit checkpoints are not signed (audit.signing_key_file is not set): the chain shows changes inside the trail, but not a rewritten trail")
	}
	if c.Sink == "file" {
		return audit.OpenFileSink(audit.FileConfig{
			Path: c.File, Fsync: c.Fsync, FsyncInterval: c.FsyncInterval.D(),
			RotateSize: int64(c.RotateSize), RotateInterval: c.RotateInterval.D(),
			QueueSize: c.QueueSize, QueueTimeout: c.QueueTimeout.D(), WriteTimeout: c.WriteTimeout.D(),
			SigningKeyFile: c.SigningKeyFile, CheckpointInterval: c.CheckpointInterval.D(),
			Now: now, Logger: log,
		})
	}
	return audit.NewStreamSink(os.Stdout, audit.StreamConfig{SigningKeyFile: c.SigningKeyFile,
		CheckpointInterval: c.CheckpointInterval.D(), WriteTimeout: c.WriteTimeout.D(), Now: now, Logger: log})
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
	labels, results := map[string][]string{}, map[string][]string{}
	for name, t := range rc.Tools {
		if t.Labels != nil {
			labels[name] = t.Labels
		}
		if t.ResultLabels != nil {
			results[name] = t.ResultLabels
		}
	}
	return &route{
		g: g, name: rc.Name, path: rc.Path, resource: resource, metadataURL: md,
		issuers: issuers, audiences: rc.Audiences, labels: labels, results: results,
		pinMode: toolpin.Mode(rc.ToolPinning), ignoreAnnotations: rc.IgnoreToolAnnotations,
		trustResultLabels: rc.TrustResultLabels, hierarchy: h, policy: pol, proxy: proxy, upstream: target.Host,
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

// sequencePolicy maps the sequence configuration onto the policy stage's.
func sequencePolicy(c config.Sequence) policy.SequenceConfig {
	sc := policy.SequenceConfig{History: policy.HistoryConfig{Scope: c.History.Scope}}
	match := func(m config.Match) policy.Matcher {
		return policy.Matcher{Routes: m.Routes, Tools: m.Tools, Labels: m.Labels}
	}
	for _, r := range c.Rules {
		rc := policy.RuleConfig{ID: r.ID, Description: r.Description, Phase: r.Phase, Action: r.Action,
			Scope: r.Scope, Message: r.Message, When: r.When}
		if f := r.Flow; f != nil {
			rc.Flow = &policy.FlowRule{Taint: f.Taint, To: match(f.To)}
		}
		if o := r.Order; o != nil {
			rc.Order = &policy.OrderRule{Call: match(o.Call), SameArguments: o.SameArguments}
			if o.After != nil {
				m := match(*o.After)
				rc.Order.After = &m
			}
			if o.NeverAfter != nil {
				m := match(*o.NeverAfter)
				rc.Order.NeverAfter = &m
			}
		}
		if b := r.Budget; b != nil {
			rc.Budget = &policy.BudgetRule{Match: match(b.Match), Max: b.Max, Window: b.Window.D(), Per: b.Per}
		}
		sc.Rules = append(sc.Rules, rc)
	}
	return sc
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

// writeAudit records ev, waiting at most audit.write_timeout: a sink that
// cannot record in time has failed, and the caller treats it so.
func (g *Gateway) writeAudit(ctx context.Context, ev *audit.Event) error {
	if b, ok := g.audit.(audit.Bounded); (!ok || !b.BoundsWrites()) && g.cfg.Audit.WriteTimeout.D() > 0 {
		// A sink that does not bound its writes itself.
		d := g.cfg.Audit.WriteTimeout.D()
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	if err := g.audit.Write(ctx, ev); err != nil {
		g.metrics.AuditFailures.Inc()
		return err
	}
	g.metrics.AuditRecords.Inc()
	return nil
}

// Ready reports whether every issuer's keys (or introspection endpoint) are
// loaded.
func (g *Gateway) Ready() bool { return g.live.Load().authn.Ready() }

// Close releases the audit sink and the shared store's connection.
func (g *Gateway) Close() error {
	err := g.audit.Close()
	if g.redis != nil {
		g.revoked.Close()
		if c, ok := g.store.(io.Closer); ok {
			c.Close()
		}
		g.redis.Close()
	}
	return err
}

// openRedis connects to the shared store of the configuration.
func openRedis(sc config.Store, log *slog.Logger, now func() time.Time) (*redisconn.Conn, error) {
	rc := redisconn.Config{URL: sc.URL, Username: sc.Username, PasswordFile: sc.PasswordFile, KeyPrefix: sc.KeyPrefix,
		Timeout: sc.Timeout.D(), Logger: log, Now: now}
	if t := sc.TLS; t != nil {
		var err error
		if rc.TLS, err = tlsfiles.ClientConfig(tlsfiles.ClientConfigOptions{
			CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName,
		}, log); err != nil {
			return nil, fmt.Errorf("store tls: %w", err)
		}
	}
	c, err := redisconn.Open(rc)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return c, nil
}

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

// DryCall is one tools/call decided without forwarding anything, for
// `mcpgate policy test`: the same parsing, scope policy, pinning and
// sequence rules as a real request, recorded in the gateway's store.
type DryCall struct {
	Route                     string
	Issuer, Subject, ClientID string
	Scopes                    []string
	Tool                      string
	Arguments                 json.RawMessage // a JSON object; nil → {}
	SessionID, RunID          string
	ClientIP                  string
	Headers                   map[string]string
}

// DryDecision is the outcome of a DryCall.
type DryDecision struct {
	Decision string // allow, deny, step_up or reject (a malformed call)
	Rule     string // the rule that decided
	Reason   string // what the agent would be told
	Required []string
}

// DryRun decides c as a tools/call on its route.
func (g *Gateway) DryRun(ctx context.Context, c DryCall) (DryDecision, error) {
	var rt *route
	for _, r := range g.routes {
		if r.name == c.Route {
			rt = r
		}
	}
	if rt == nil {
		return DryDecision{}, fmt.Errorf("no route %q", c.Route)
	}
	args := c.Arguments
	if args == nil {
		args = json.RawMessage("{}")
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
		"params": map[string]any{"name": c.Tool, "arguments": args}})
	if err != nil {
		return DryDecision{}, fmt.Errorf("arguments: %w", err)
	}
	call, e := inbound.Parse(body, g.limits)
	if e != nil {
		return DryDecision{Decision: audit.Reject, Reason: e.Message}, nil
	}
	hdr := http.Header{}
	for k, v := range c.Headers {
		hdr.Set(k, v)
	}
	if c.RunID != "" && g.cfg.Sequence.History.RunIDHeader != "" {
		hdr.Set(g.cfg.Sequence.History.RunIDHeader, c.RunID)
	}
	r := (&http.Request{Method: http.MethodPost, Header: hdr}).WithContext(ctx)
	ip, _ := netip.ParseAddr(c.ClientIP)
	x := &exchange{rt: rt, r: r, call: call, sessionID: c.SessionID, ip: ip,
		principal: session.Principal{Issuer: c.Issuer, Subject: c.Subject, ClientID: c.ClientID},
		grant:     rt.hierarchy.Expand(c.Scopes)}
	rej := x.authorize()
	d := DryDecision{Decision: audit.Allow, Rule: x.decision.RuleID}
	if rej != nil {
		d = DryDecision{Decision: rej.decision, Rule: rej.rule, Reason: rej.message, Required: rej.required}
		if rej.decision == audit.Error {
			return d, fmt.Errorf("%s: %w", rej.reason, rej.cause)
		}
	}
	return d, nil
}

// LearnToolAnnotations records a tool's MCP annotations (a JSON object), as
// if its upstream had listed it, for DryRun.
func (g *Gateway) LearnToolAnnotations(route, tool string, annotations json.RawMessage) error {
	for _, rt := range g.routes {
		if rt.name == route {
			def, _ := json.Marshal(map[string]any{"name": tool, "annotations": annotations})
			rt.tools.learn(tool, annotationLabels(def))
			return nil
		}
	}
	return fmt.Errorf("no route %q", route)
}
