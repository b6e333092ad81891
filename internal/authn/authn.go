package authn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Authenticator is stage 2 of the pipeline. It is safe for concurrent use.
type Authenticator struct {
	log           *slog.Logger
	now           func() time.Time
	maxTokenBytes int
	issuers       []*issuerState // configuration order
	byIssuer      map[string]*issuerState
	anyAlg        map[string]bool // union of the pinned algorithms
	cache         *tokenCache
	inactive      *tokenCache  // opaque tokens recently reported inactive
	verifications atomic.Int64 // signature verifications attempted (for tests)
	skipAudience  bool         // Deps.InsecureSkipAudienceCheck
}

// New validates cfg (reporting every problem at once) and returns an
// Authenticator. It makes no network call: keys are fetched by Run, or on
// first need.
func New(cfg Config, deps Deps) (*Authenticator, error) {
	if err := cfg.normalize(); err != nil {
		return nil, errors.Join(errors.New("authn: invalid config"), err)
	}
	a := &Authenticator{
		log:           deps.Logger,
		now:           deps.Now,
		maxTokenBytes: cfg.MaxTokenBytes,
		byIssuer:      map[string]*issuerState{},
		anyAlg:        map[string]bool{},
		skipAudience:  deps.InsecureSkipAudienceCheck,
		cache:         newTokenCache(cfg.CacheSize),
		inactive:      newTokenCache(cfg.CacheSize),
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	for _, ic := range cfg.Issuers {
		s := newIssuerState(ic, a.log, a.now, hooks{OnCall: deps.OnCall, OnStaleDenial: deps.OnStaleDenial, OnRefreshFailure: deps.OnRefreshFailure})
		a.issuers = append(a.issuers, s)
		a.byIssuer[ic.Issuer] = s
		for alg := range s.algs {
			a.anyAlg[alg] = true
		}
	}
	return a, nil
}

// Run discovers metadata and refreshes every issuer's keys in the
// background until ctx is done: at once, then every RefreshInterval,
// retrying failures with backoff. Keys are also fetched lazily on first
// need, so Run is not required for correctness, only for freshness.
func (a *Authenticator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range a.issuers {
		wg.Go(func() { s.run(ctx) })
	}
	wg.Wait()
}

// Ready reports whether every issuer has usable keys (or, for an issuer
// whose metadata publishes no jwks_uri, a known introspection endpoint).
func (a *Authenticator) Ready() bool {
	now := a.now()
	for _, s := range a.issuers {
		if !s.ready(now) {
			return false
		}
	}
	return true
}

// Status describes every issuer, in configuration order.
func (a *Authenticator) Status() []IssuerStatus {
	now := a.now()
	out := make([]IssuerStatus, len(a.issuers))
	for i, s := range a.issuers {
		out[i] = s.status(now)
	}
	return out
}

// Request is what Authenticate needs from an HTTP request.
type Request struct {
	// Header is the request header; the bearer comes only from
	// Authorization.
	Header http.Header
	// RawQuery is the request's raw query: an access_token parameter is
	// refused (400 invalid_request). It is never logged.
	RawQuery string
	// Resource is the route's canonical resource URI; the token's audience
	// must contain it (a trailing-slash difference is tolerated) or one of
	// Audiences.
	Resource string
	// Audiences are further audience values accepted for the route,
	// compared exactly, for identity providers that cannot put the
	// resource URI in aud (Entra ID's application id).
	Audiences []string
	// Issuers are the issuers trusted on this route. nil → all configured;
	// an empty non-nil slice trusts none.
	Issuers []string
}

// Identity is an authenticated principal. It is shared with the token cache:
// callers must not modify it or its slices.
type Identity struct {
	Issuer, Subject string
	ClientID        string   // client_id, falling back to azp
	TokenID         string   // jti
	Scopes          []string // from scope or scp; sorted, deduplicated
	Audience        []string
	IssuedAt        time.Time // zero when absent
	Expiry          time.Time
	Actor           []string // RFC 8693 act chain (act.sub values), outermost first
	// Fingerprint is the first 16 hex digits of the token's SHA-256, for
	// logs and audit. It is the only form in which a token may be recorded.
	Fingerprint  string
	Introspected bool
}

// Authenticate validates the request's bearer token. Every error is an
// *Error (see ErrNoToken for the sentinels it matches); a repeated token is
// served from the cache without signature work or network calls, its
// expiry, audience and issuer rechecked.
func (a *Authenticator) Authenticate(ctx context.Context, r Request) (*Identity, error) {
	id, e := a.authenticate(ctx, &r)
	if e != nil {
		return nil, e
	}
	return id, nil
}

func (a *Authenticator) authenticate(ctx context.Context, r *Request) (*Identity, *Error) {
	if hasQueryToken(r.RawQuery) {
		return nil, reject(ReasonQueryToken, nil)
	}
	tok, e := bearerToken(r.Header, a.maxTokenBytes)
	if e != nil {
		return nil, e
	}
	sum := sha256.Sum256([]byte(tok))
	now := a.now()
	if ce := a.cache.get(sum, now); ce != nil {
		if ce.vk == nil || ce.iss.stillPublished(ce.vk, now) {
			if e := a.checkRoute(ce.id.Issuer, ce.id.Audience, r); e != nil {
				return nil, e
			}
			return ce.id, nil
		}
		// The verifying key was rotated out, or the keys went stale:
		// validate from scratch.
		a.cache.remove(sum)
	}
	var ce *cacheEntry
	if hdr, ok := splitJWS(tok); ok {
		ce, e = a.verifyJWT(ctx, tok, hdr, r, now)
	} else if a.inactive.get(sum, now) != nil {
		// Reported inactive moments ago: do not ask again, so a stream of
		// junk tokens does not become a stream of introspection calls.
		e = reject(ReasonInactive, errors.New("token recently reported inactive"))
	} else {
		var id *Identity
		var s *issuerState
		var expires time.Time
		id, s, expires, e = a.introspect(ctx, tok, r, now)
		switch {
		case e == nil:
			ce = &cacheEntry{id: id, iss: s, expires: expires}
		case e.Reason == ReasonInactive:
			a.inactive.add(&cacheEntry{key: sum, expires: now.Add(inactiveTTL)})
		}
	}
	if e != nil {
		return nil, e
	}
	ce.key = sum
	ce.id.Fingerprint = hex.EncodeToString(sum[:8])
	a.cache.add(ce)
	return ce.id, nil
}

// inactiveTTL is how long an opaque token reported inactive is refused
// without asking the authorization server again.
const inactiveTTL = 10 * time.Second

// checkRoute applies the per-route checks that a cache hit repeats.
func (a *Authenticator) checkRoute(iss string, aud []string, r *Request) *Error {
	if !issuerAllowed(r.Issuers, iss) {
		return reject(ReasonIssuerNotAllowed, errors.New("issuer not trusted on this route"))
	}
	if !a.skipAudience && !audienceMatches(aud, r.Resource, r.Audiences) {
		return reject(ReasonWrongAudience, errors.New("audience does not include the resource"))
	}
	return nil
}

func issuerAllowed(allowed []string, iss string) bool {
	if allowed == nil {
		return true
	}
	for _, a := range allowed {
		if a == iss {
			return true
		}
	}
	return false
}

// verifyJWT validates a JWS-shaped token: cheap checks first (no network
// for a token that fails them), then the key, then the signature.
func (a *Authenticator) verifyJWT(ctx context.Context, tok string, hdrJSON []byte, r *Request, now time.Time) (*cacheEntry, *Error) {
	t, e := parseJWS(tok, hdrJSON, a.anyAlg)
	if e != nil {
		return nil, e
	}
	c := &t.claims
	if c.iss == "" {
		return nil, reject(ReasonUnknownIssuer, errors.New("no iss claim"))
	}
	s, ok := a.byIssuer[c.iss]
	if !ok {
		return nil, reject(ReasonUnknownIssuer, errors.New("iss is not a configured issuer"))
	}
	if !issuerAllowed(r.Issuers, c.iss) {
		return nil, reject(ReasonIssuerNotAllowed, errors.New("issuer not trusted on this route"))
	}
	if !s.algs[t.header.alg] {
		return nil, reject(ReasonBadAlg, errors.New("alg not pinned for this issuer"))
	}
	if !typeAccepted(&t.header, s.cfg.AllowLegacyJWTType) {
		return nil, reject(ReasonBadType, errors.New("typ is not at+jwt"))
	}
	c.resolve(s.cfg.ClientIDClaims, s.cfg.ScopeClaims)
	if e := checkTimesAndAudience(c, a.audience(r), now, s.cfg.ClockSkew); e != nil {
		return nil, e
	}
	cands, e := s.candidates(ctx, &t.header)
	if e != nil {
		return nil, e
	}
	m := methods[t.header.alg]
	for _, k := range cands {
		a.verifications.Add(1)
		if m.Verify(t.signingInput, t.sig, k.pub) == nil {
			return &cacheEntry{id: c.identity(), expires: c.exp.Add(s.cfg.ClockSkew), iss: s, vk: k}, nil
		}
	}
	return nil, reject(ReasonBadSignature, errors.New("signature does not verify"))
}

// audienceCheck is what a token's aud must contain.
type audienceCheck struct {
	resource string
	extra    []string
	skip     bool // Deps.InsecureSkipAudienceCheck
}

func (a *Authenticator) audience(r *Request) audienceCheck {
	return audienceCheck{resource: r.Resource, extra: r.Audiences, skip: a.skipAudience}
}

// checkTimesAndAudience applies the exp, nbf, iat, aud and sub rules shared
// by JWTs and introspection answers.
func checkTimesAndAudience(c *claims, aud audienceCheck, now time.Time, skew time.Duration) *Error {
	switch {
	case !c.hasExp:
		return reject(ReasonNoExp, errors.New("no exp claim"))
	case !now.Before(c.exp.Add(skew)):
		return reject(ReasonExpired, errors.New("exp is past"))
	case c.hasNbf && now.Add(skew).Before(c.nbf):
		return reject(ReasonNotYetValid, errors.New("nbf is in the future"))
	case c.hasIat && now.Add(skew).Before(c.iat):
		return reject(ReasonIATFuture, errors.New("iat is in the future"))
	case !aud.skip && !audienceMatches(c.aud, aud.resource, aud.extra):
		return reject(ReasonWrongAudience, errors.New("audience does not include the resource"))
	case c.sub == "":
		return reject(ReasonNoSubject, errors.New("no sub claim"))
	case c.clientID == "":
		// RFC 9068 requires client_id; sessions are bound to it.
		return reject(ReasonNoClientID, errors.New("none of the issuer's client id claims is present"))
	case c.idTokenMarks:
		return reject(ReasonIDToken, errors.New("at_hash, c_hash or typ=ID claim present"))
	}
	return nil
}

func (c *claims) identity() *Identity {
	id := &Identity{
		Issuer:   c.iss,
		Subject:  c.sub,
		ClientID: c.clientID,
		TokenID:  c.jti,
		Scopes:   c.scopes,
		Audience: c.aud,
		Expiry:   c.exp,
		Actor:    c.actors,
	}
	if c.hasIat {
		id.IssuedAt = c.iat
	}
	return id
}
