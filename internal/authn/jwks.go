// This file implements the per-issuer JWKS cache: lazy and background
// fetches of the RFC 7517 key set named by the RFC 8414 jwks_uri, one
// in-flight refresh at a time, a shared cooldown for unknown-kid refetches
// and a max-stale bound after which keys are no longer used.
// See https://www.rfc-editor.org/rfc/rfc8414#section-2 (jwks_uri)

package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/mcpgate/mcpgate/internal/egress"
)

// issuerState is everything mcpgate keeps about one configured issuer.
type issuerState struct {
	cfg  IssuerConfig // defaults applied
	algs map[string]bool
	http *egress.Client
	log  *slog.Logger
	now  func() time.Time
	// breakers guard the calls to this issuer's server, by call name
	// (CallDiscovery …); the map is not modified after construction.
	breakers map[string]*gobreaker.CircuitBreaker[struct{}]
	hooks    hooks

	// keys is the last good key set; nil until the first successful fetch.
	// Read without locking on every request.
	keys atomic.Pointer[keySet]

	mu sync.Mutex // guards the fields below
	// discovered is set once AS metadata was read (or was not needed).
	discovered    bool
	jwksURI       string // from config or metadata; "" → introspection only
	introspectURL string // from config or metadata
	lastAttempt   time.Time
	lastSuccess   time.Time
	lastErr       error
	lastOnDemand  time.Time // start of the last on-demand (request-triggered) refresh
	inflight      *flight   // the refresh in progress, if any
}

// flight is one refresh in progress; waiters block on done.
type flight struct {
	done chan struct{}
	err  error // set before done is closed
}

func (f *flight) wait(ctx context.Context) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errCooldown = errors.New("refetch skipped: within cooldown")

func newIssuerState(cfg IssuerConfig, log *slog.Logger, now func() time.Time, h hooks) *issuerState {
	s := &issuerState{cfg: cfg, http: cfg.HTTP, log: log.With("issuer", cfg.Issuer), now: now, algs: map[string]bool{}, hooks: h}
	s.breakers = newBreakers(&s.cfg, s.log)
	for _, a := range cfg.Algorithms {
		s.algs[a] = true
	}
	s.jwksURI = cfg.JWKSURI
	if cfg.Introspection != nil {
		s.introspectURL = cfg.Introspection.Endpoint
	}
	s.discovered = !s.needsDiscovery()
	return s
}

// needsDiscovery reports whether AS metadata must be read to find an
// endpoint the configuration does not give.
func (s *issuerState) needsDiscovery() bool {
	return s.cfg.JWKSURI == "" || s.cfg.Introspection != nil && s.cfg.Introspection.Endpoint == ""
}

// usableKeys returns the key set if it was confirmed within MaxStale.
func (s *issuerState) usableKeys(now time.Time) *keySet {
	ks := s.keys.Load()
	if ks == nil || now.Sub(ks.fetched) > s.cfg.MaxStale {
		return nil
	}
	return ks
}

// stillPublished reports whether k is in the current, fresh key set.
func (s *issuerState) stillPublished(k *verifyKey, now time.Time) bool {
	ks := s.usableKeys(now)
	return ks != nil && ks.contains(k)
}

// refresh runs discovery (when needed, or always with rediscover) and a
// JWKS fetch, or joins the one already running.
func (s *issuerState) refresh(ctx context.Context, rediscover bool) error {
	s.mu.Lock()
	f := s.inflight
	if f == nil {
		f = s.startLocked(ctx, rediscover)
	}
	s.mu.Unlock()
	return f.wait(ctx)
}

// onDemand is refresh for the request path: it joins a refresh in progress,
// or starts one unless another on-demand refresh started within the
// cooldown. However many requests miss at once, at most one fetch is made
// per cooldown.
func (s *issuerState) onDemand(ctx context.Context) error {
	now := s.now()
	s.mu.Lock()
	f := s.inflight
	if f == nil {
		if !s.lastOnDemand.IsZero() && now.Sub(s.lastOnDemand) < s.cfg.UnknownKIDCooldown {
			s.mu.Unlock()
			return errCooldown
		}
		s.lastOnDemand = now
		f = s.startLocked(ctx, false)
	}
	s.mu.Unlock()
	return f.wait(ctx)
}

// startLocked starts a refresh; s.mu must be held. The fetch outlives the
// caller's cancellation (other waiters may share it) but not its values;
// each HTTP call is bounded by the egress client's timeout.
func (s *issuerState) startLocked(ctx context.Context, rediscover bool) *flight {
	f := &flight{done: make(chan struct{})}
	s.inflight = f
	ctx = context.WithoutCancel(ctx)
	go func() {
		err := s.doRefresh(ctx, rediscover)
		s.mu.Lock()
		s.inflight = nil
		s.mu.Unlock()
		f.err = err
		close(f.done)
	}()
	return f
}

func (s *issuerState) doRefresh(ctx context.Context, rediscover bool) error {
	err := s.fetch(ctx, rediscover)
	now := s.now()
	s.mu.Lock()
	s.lastAttempt = now
	s.lastErr = err
	if err == nil {
		s.lastSuccess = now
	}
	s.mu.Unlock()
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "authn: refresh keys", slog.String("error", err.Error()))
	}
	return err
}

func (s *issuerState) fetch(ctx context.Context, rediscover bool) error {
	s.mu.Lock()
	needDisc := s.needsDiscovery() && (!s.discovered || rediscover)
	haveMeta := s.discovered
	s.mu.Unlock()
	if needDisc {
		var md *serverMetadata
		err := s.callAS(ctx, CallDiscovery, func(ctx context.Context) error {
			var err error
			md, err = discover(ctx, s.http, s.cfg.Issuer)
			return err
		})
		switch {
		case err == nil:
			s.mu.Lock()
			if s.cfg.JWKSURI == "" {
				s.jwksURI = md.jwksURI
			}
			if s.cfg.Introspection != nil && s.cfg.Introspection.Endpoint == "" {
				s.introspectURL = md.introspectionEndpoint
			}
			s.discovered = true
			s.mu.Unlock()
		case !haveMeta:
			return fmt.Errorf("discover: %w", err)
		default: // keep the metadata we have
			s.log.LogAttrs(ctx, slog.LevelWarn, "authn: rediscover", slog.String("error", err.Error()))
		}
	}
	s.mu.Lock()
	jwksURI, introspectURL := s.jwksURI, s.introspectURL
	s.mu.Unlock()
	if jwksURI == "" {
		if s.cfg.Introspection != nil && introspectURL != "" {
			return nil // introspection only
		}
		return errors.New("discover: metadata has no jwks_uri")
	}
	var ks *keySet
	var skipped []error
	err := s.callAS(ctx, CallJWKS, func(ctx context.Context) error {
		var raw json.RawMessage
		if err := s.http.GetJSON(ctx, jwksURI, &raw); err != nil {
			return fmt.Errorf("fetch jwks: %w", err)
		}
		var err error
		ks, skipped, err = parseJWKS(raw, s.keys.Load())
		return err // an unusable document counts as a server failure
	})
	if err != nil {
		return err
	}
	for _, e := range skipped {
		s.log.LogAttrs(ctx, slog.LevelDebug, "authn: skipped jwk", slog.String("error", e.Error()))
	}
	ks.fetched = s.now()
	s.keys.Store(ks)
	return nil
}

// candidates finds the keys that may verify a token with header h, fetching
// keys on demand: when none are loaded (or they are past MaxStale), and for
// an unknown kid (at most once per cooldown).
func (s *issuerState) candidates(ctx context.Context, h *jose) ([]*verifyKey, *Error) {
	if ks := s.usableKeys(s.now()); ks != nil {
		cands, kidKnown := ks.lookup(h.kid, h.hasKID, h.alg)
		if len(cands) > 0 {
			return cands, nil
		}
		if kidKnown {
			return nil, reject(ReasonKeyMismatch, errors.New("kid names a key that does not fit alg"))
		}
	}
	err := s.onDemand(ctx)
	ks := s.usableKeys(s.now())
	switch {
	case ks == nil && err == nil:
		return nil, reject(ReasonUnknownKey, errors.New("issuer publishes no jwks"))
	case ks == nil:
		if s.keys.Load() != nil && s.hooks.OnStaleDenial != nil {
			s.hooks.OnStaleDenial(s.cfg.Issuer) // keys exist, but past MaxStale
		}
		return nil, reject(ReasonKeysUnavailable, err)
	case err != nil && !errors.Is(err, errCooldown):
		return nil, reject(ReasonKeysUnavailable, fmt.Errorf("refetch for unknown kid: %w", err))
	}
	cands, kidKnown := ks.lookup(h.kid, h.hasKID, h.alg)
	switch {
	case len(cands) > 0:
		return cands, nil
	case kidKnown:
		return nil, reject(ReasonKeyMismatch, errors.New("kid names a key that does not fit alg"))
	case errors.Is(err, errCooldown):
		return nil, reject(ReasonUnknownKey, errCooldown)
	}
	return nil, reject(ReasonUnknownKey, errors.New("no key for kid after refetch"))
}

// run refreshes in the background until ctx is done: at once, then every
// RefreshInterval, retrying failures with a capped exponential backoff.
func (s *issuerState) run(ctx context.Context) {
	const minBackoff, maxBackoff = time.Second, time.Minute
	backoff := minBackoff
	var delay time.Duration
	for {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := s.refresh(ctx, true); err != nil {
			if ctx.Err() != nil {
				return
			}
			if s.hooks.OnRefreshFailure != nil {
				s.hooks.OnRefreshFailure(s.cfg.Issuer)
			}
			delay = min(backoff, s.cfg.RefreshInterval)
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		delay, backoff = s.cfg.RefreshInterval, minBackoff
	}
}

// ready reports whether the issuer can validate tokens now.
func (s *issuerState) ready(now time.Time) bool {
	if s.usableKeys(now) != nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discovered && s.jwksURI == "" && s.introspectURL != ""
}

// IssuerStatus describes one issuer's key state, for readiness and metrics.
type IssuerStatus struct {
	Issuer   string
	Ready    bool
	KeyCount int
	// LastFetch is the last refresh attempt; LastSuccess the last success.
	LastFetch, LastSuccess time.Time
	// LastError is the last attempt's error (nil after a success). It never
	// holds more than a short sanitized excerpt of a response body.
	LastError error
	// KeyAge is the time since the key set was last confirmed; 0 if none.
	KeyAge                         time.Duration
	JWKSURI, IntrospectionEndpoint string
}

func (s *issuerState) status(now time.Time) IssuerStatus {
	st := IssuerStatus{Issuer: s.cfg.Issuer, Ready: s.ready(now)}
	if ks := s.keys.Load(); ks != nil {
		st.KeyCount = ks.n
		st.KeyAge = now.Sub(ks.fetched)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.LastFetch, st.LastSuccess, st.LastError = s.lastAttempt, s.lastSuccess, s.lastErr
	st.JWKSURI, st.IntrospectionEndpoint = s.jwksURI, s.introspectURL
	return st
}
