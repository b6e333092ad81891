// This file implements ModeExchange: the client's token is exchanged at the
// authorization server (OAuth 2.0 Token Exchange, RFC 8693) for a token
// whose audience is the upstream (RFC 8707 resource), cached per caller.
// See https://www.rfc-editor.org/rfc/rfc8693 and
// https://www.rfc-editor.org/rfc/rfc8707.

package credential

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Exchange defaults.
const (
	// DefaultExchangeRefreshMargin is how long before its expiry a cached
	// exchanged token stops being served (or 10% of its lifetime, if less).
	DefaultExchangeRefreshMargin = 30 * time.Second
	// DefaultExchangeMaxEntries bounds the exchanged-token cache.
	DefaultExchangeMaxEntries = 10000
	// DefaultDenialTTL is how long a refusal is remembered, so that a
	// client retrying with a refused token does not hammer the server.
	DefaultDenialTTL = 5 * time.Second
	// SharedCacheTimeout bounds each call of a shared cache (Get before an
	// exchange, Put after it): a slow shared cache costs at most this, then
	// counts as a miss.
	SharedCacheTimeout = 250 * time.Millisecond
)

// SharedCache is a second-level cache of exchanged tokens shared by
// replicas (package tokencache keeps it in Redis, encrypted). key is the
// Exchange's cache key: a SHA-256 of the caller's issuer, subject,
// client_id, act chain, the resource, audience and the requested scope
// set; it identifies nobody by itself. validUntil is when the entry stops
// being served (already the refresh margin and the caller's expiry).
//
// A shared cache only saves token requests: the Exchange treats every
// error as a miss (and logs it), re-checks every hit, and never caches a
// refusal in it.
type SharedCache interface {
	// Get returns the entry for key; ok is false when there is none (or
	// none this process can read).
	Get(ctx context.Context, key [32]byte) (cred Credential, validUntil time.Time, ok bool, err error)
	// Put stores cred under key until validUntil at most.
	Put(ctx context.Context, key [32]byte, cred Credential, validUntil time.Time) error
}

// ExchangeConfig configures an Exchange. It is validated by NewExchange.
type ExchangeConfig struct {
	// Endpoint is the authorization server's token endpoint, with
	// mcpgate's client identity (which must be allowed token exchange).
	// Required.
	Endpoint *TokenEndpoint
	// Resource is the upstream's resource indicator (RFC 8707): the aud of
	// the exchanged token. Required, an absolute http or https URL without
	// fragment.
	Resource string
	// Audience is sent as the RFC 8693 audience parameter when set.
	Audience string
	// Scopes are the scopes the upstream needs. The request asks for those
	// the caller holds (Caller.Scopes); a caller holding none of them is
	// refused without a request. Empty → no scope parameter: the server
	// decides (usually the subject token's scopes).
	Scopes []string
	// RefreshMargin: a cached token is served until its expiry minus this
	// (but never less than 90% of its lifetime), and never after the
	// caller's token expires. 0 → 30s.
	RefreshMargin time.Duration
	// MaxEntries bounds the cache. When full, expired entries go first,
	// then the oldest. 0 → 10000.
	MaxEntries int
	// DenialTTL: a refused subject token is refused again, without a
	// request, for this long (keyed by the token's SHA-256). 0 → 5s;
	// negative → off.
	DenialTTL time.Duration
	// Shared, when set, is asked on a miss of the in-memory cache before
	// the exchange, and receives every exchanged token (see SharedCache).
	// nil → the in-memory cache only.
	Shared SharedCache
	// Now is the clock for the cache. nil → time.Now.
	Now func() time.Time
	// Logger: nil → discard. Never receives a token.
	Logger *slog.Logger
}

// Exchange is the ModeExchange Source. It is safe for concurrent use.
//
// Exchanged tokens are cached per (caller issuer, subject, client_id, act
// chain, upstream resource, requested scope set): two users never share a
// cache entry or a request, and concurrent calls of one user share one
// request. A caller without a subject is cached per client token instead.
// A refusal is never cached as a token, only remembered for DenialTTL
// against the exact subject token that was refused (in memory only).
//
// With a SharedCache, the flight of a key that misses in memory first asks
// the shared cache (so concurrent calls share one lookup as they share one
// request); a hit is served only before its validUntil, its token's expiry
// and the caller's token expiry, then kept in memory. A token obtained by
// an exchange is put in the shared cache before it is returned.
type Exchange struct {
	ep        *TokenEndpoint
	resource  string
	audience  string
	scopes    []string // sorted, unique
	margin    time.Duration
	max       int
	denialTTL time.Duration
	shared    SharedCache
	now       func() time.Time
	log       *slog.Logger

	group singleflight.Group

	mu      sync.Mutex
	entries map[exchangeKey]*exchangeEntry
	order   *list.List // of *exchangeEntry, oldest first
	denials map[[sha256.Size]byte]exchangeDenial
}

type exchangeKey [sha256.Size]byte

type exchangeEntry struct {
	key        exchangeKey
	cred       Credential
	validUntil time.Time
	elem       *list.Element
}

type exchangeDenial struct {
	until time.Time
	err   error
}

var _ Source = (*Exchange)(nil)

// NewExchange validates cfg, reporting every problem at once, and returns
// the Source.
func NewExchange(cfg ExchangeConfig) (*Exchange, error) {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	checkTarget(add, cfg.Endpoint, cfg.Resource, cfg.Scopes, cfg.RefreshMargin)
	if cfg.Audience != "" && (!printable(cfg.Audience) || strings.TrimSpace(cfg.Audience) != cfg.Audience) {
		add("audience must be printable, without surrounding space")
	}
	if cfg.MaxEntries < 0 {
		add("max entries must not be negative")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(errors.New("credential: invalid exchange config"), err)
	}
	x := &Exchange{
		ep: cfg.Endpoint, resource: cfg.Resource, audience: cfg.Audience,
		scopes: slices.Compact(slices.Sorted(slices.Values(cfg.Scopes))),
		margin: cfg.RefreshMargin, max: cfg.MaxEntries, denialTTL: cfg.DenialTTL,
		shared: cfg.Shared, now: cfg.Now, log: cfg.Logger,
		entries: map[exchangeKey]*exchangeEntry{}, order: list.New(),
		denials: map[[sha256.Size]byte]exchangeDenial{},
	}
	if x.margin == 0 {
		x.margin = DefaultExchangeRefreshMargin
	}
	if x.max == 0 {
		x.max = DefaultExchangeMaxEntries
	}
	if x.denialTTL == 0 {
		x.denialTTL = DefaultDenialTTL
	}
	if x.now == nil {
		x.now = time.Now
	}
	if x.log == nil {
		x.log = slog.New(slog.DiscardHandler)
	}
	x.log = x.log.With("resource", x.resource)
	if len(x.scopes) == 0 {
		x.scopes = nil
	}
	return x, nil
}

// Credential returns the exchanged token for the caller, from the cache
// when a valid one is there. Every error is an *Error.
func (x *Exchange) Credential(ctx context.Context, c Caller) (Credential, error) {
	if c.Token == "" {
		return Credential{}, &Error{Kind: Denied, Message: "there is no client token to exchange"}
	}
	now := x.now()
	if !c.Expiry.IsZero() && !now.Before(c.Expiry) {
		return Credential{}, &Error{Kind: Denied, Message: "the client's token has expired"}
	}
	if x.scopes != nil && !slices.ContainsFunc(x.scopes, func(s string) bool { return slices.Contains(c.Scopes, s) }) {
		return Credential{}, &Error{Kind: Denied, Message: "the client's token holds none of the scopes this upstream requires"}
	}
	key := x.cacheKey(c)
	if cred, ok := x.cached(key, now); ok {
		return cred, nil
	}
	return x.miss(ctx, c, key, now)
}

// miss answers a call the cache could not: a remembered refusal, or the
// single flight of its key. (Apart from Credential, so that the hit path
// does not move the caller to the heap for the flight's closure.)
func (x *Exchange) miss(ctx context.Context, c Caller, key exchangeKey, now time.Time) (Credential, error) {
	if err := x.denied(c.Token, now); err != nil {
		return Credential{}, err
	}
	// The shared request must not die with whichever caller started it:
	// it is bounded by the endpoint's timeout instead.
	shared := context.WithoutCancel(ctx)
	ch := x.group.DoChan(string(key[:]), func() (any, error) { return x.fetch(shared, c, key) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return Credential{}, r.Err
		}
		return r.Val.(Credential), nil
	case <-ctx.Done():
		return Credential{}, &Error{Kind: Unavailable, Message: "the token exchange was abandoned", Err: ctx.Err()}
	}
}

// Len is the number of cached tokens, for metrics.
func (x *Exchange) Len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.entries)
}

// fetch makes the exchange for c (the single flight of key).
func (x *Exchange) fetch(ctx context.Context, c Caller, key exchangeKey) (any, error) {
	start := x.now()
	// A flight that just ended may have filled the cache.
	if cred, ok := x.cached(key, start); ok {
		return cred, nil
	}
	if cred, ok := x.sharedGet(ctx, c, key); ok {
		return cred, nil
	}
	form := url.Values{
		"grant_type":           {grantTokenExchange},
		"subject_token":        {c.Token},
		"subject_token_type":   {tokenTypeAccessToken},
		"requested_token_type": {tokenTypeAccessToken},
		"resource":             {x.resource},
	}
	if x.audience != "" {
		form.Set("audience", x.audience)
	}
	if x.scopes != nil {
		var want []string
		for _, s := range x.scopes {
			if slices.Contains(c.Scopes, s) {
				want = append(want, s)
			}
		}
		form.Set("scope", strings.Join(want, " "))
	}
	resp, err := x.ep.request(ctx, "token exchange", form, true)
	if err != nil {
		if IsDenied(err) && x.denialTTL > 0 {
			x.remember(c.Token, start, err)
		}
		return nil, err
	}
	expiry := start.Add(resp.Lifetime)
	cred := Credential{Header: "Authorization", Value: "Bearer " + resp.AccessToken, Secret: resp.AccessToken,
		Expiry: expiry, ID: shortHash(resp.AccessToken)}
	margin := min(x.margin, resp.Lifetime/10)
	validUntil := expiry.Add(-margin)
	if !c.Expiry.IsZero() && c.Expiry.Before(validUntil) {
		validUntil = c.Expiry
	}
	x.log.Debug("credential: token exchanged", "sub", c.Subject, "client_id", c.ClientID,
		"subject_token_id", shortHash(c.Token), "token_id", cred.ID, "cached_until", validUntil)
	if validUntil.After(start) {
		x.store(key, cred, validUntil, start)
		x.sharedPut(ctx, key, cred, validUntil)
	}
	return cred, nil
}

// sharedGet asks the shared cache for key on behalf of c. A hit is served
// (and kept in memory) until the earliest of its validUntil, its token's
// expiry and c's token expiry; an error, a malformed entry or one no
// longer valid is a miss.
func (x *Exchange) sharedGet(ctx context.Context, c Caller, key exchangeKey) (Credential, bool) {
	if x.shared == nil {
		return Credential{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, SharedCacheTimeout)
	defer cancel()
	cred, validUntil, ok, err := x.shared.Get(ctx, x.sharedKey(key))
	if err != nil {
		x.log.Warn("credential: shared token cache unavailable, exchanging", "sub", c.Subject, "client_id", c.ClientID,
			"error", err)
		return Credential{}, false
	}
	if !ok {
		return Credential{}, false
	}
	// Exactly what fetch makes, or nothing.
	if cred.Header != "Authorization" || cred.Secret == "" || cred.Value != "Bearer "+cred.Secret ||
		cred.ID != shortHash(cred.Secret) || cred.Expiry.IsZero() {
		x.log.Warn("credential: a shared token cache entry is malformed, exchanging", "sub", c.Subject, "client_id", c.ClientID)
		return Credential{}, false
	}
	// Every rule of a token exchanged here: never past the token's
	// expiry, nor past the caller's.
	if cred.Expiry.Before(validUntil) {
		validUntil = cred.Expiry
	}
	if !c.Expiry.IsZero() && c.Expiry.Before(validUntil) {
		validUntil = c.Expiry
	}
	now := x.now()
	if !now.Before(validUntil) {
		return Credential{}, false
	}
	x.log.Debug("credential: exchanged token from the shared cache", "sub", c.Subject, "client_id", c.ClientID,
		"token_id", cred.ID, "cached_until", validUntil)
	x.store(key, cred, validUntil, now)
	return cred, true
}

// sharedPut offers an exchanged token to the shared cache. A failure is
// logged and otherwise ignored: the token was obtained.
func (x *Exchange) sharedPut(ctx context.Context, key exchangeKey, cred Credential, validUntil time.Time) {
	if x.shared == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, SharedCacheTimeout)
	defer cancel()
	if err := x.shared.Put(ctx, x.sharedKey(key), cred, validUntil); err != nil {
		x.log.Warn("credential: could not share an exchanged token", "token_id", cred.ID, "error", err)
	}
}

// cacheKey hashes the fields that select a cache entry, each length
// prefixed, so that no two different callers share a key.
func (x *Exchange) cacheKey(c Caller) exchangeKey {
	var buf [512]byte
	b := append(buf[:0], "mcpgate exchange v1"...)
	field := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	field(c.Issuer)
	if c.Subject != "" {
		b = append(b, 's')
		field(c.Subject)
	} else {
		// No subject to key on: key on the client token itself.
		sum := sha256.Sum256([]byte(c.Token))
		b = append(b, 't')
		b = append(b, sum[:]...)
	}
	field(c.ClientID)
	b = binary.AppendUvarint(b, uint64(len(c.Actor)))
	for _, a := range c.Actor {
		field(a)
	}
	field(x.resource)
	field(x.audience)
	for _, s := range x.scopes { // sorted: the requested set, in order
		if slices.Contains(c.Scopes, s) {
			b = append(b, 1)
			field(s)
		}
	}
	b = append(b, 0)
	return sha256.Sum256(b)
}

// cached returns the entry for key if it is still valid at now.
func (x *Exchange) cached(key exchangeKey, now time.Time) (Credential, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e, ok := x.entries[key]
	if !ok {
		return Credential{}, false
	}
	if now.Before(e.validUntil) {
		return e.cred, true
	}
	x.removeLocked(e)
	return Credential{}, false
}

// store caches cred until validUntil, making room if the cache is full:
// expired entries first, then the oldest down to 90% of MaxEntries (so
// that the sweep is paid once per many insertions).
func (x *Exchange) store(key exchangeKey, cred Credential, validUntil, now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.entries[key]; ok {
		x.removeLocked(old)
	}
	if len(x.entries) >= x.max {
		for _, e := range x.entries {
			if !now.Before(e.validUntil) {
				x.removeLocked(e)
			}
		}
		if len(x.entries) >= x.max {
			for keep := x.max * 9 / 10; len(x.entries) > keep && len(x.entries) > 0; {
				x.removeLocked(x.order.Front().Value.(*exchangeEntry))
			}
		}
	}
	e := &exchangeEntry{key: key, cred: cred, validUntil: validUntil}
	e.elem = x.order.PushBack(e)
	x.entries[key] = e
}

func (x *Exchange) removeLocked(e *exchangeEntry) {
	delete(x.entries, e.key)
	x.order.Remove(e.elem)
}

// denied returns the remembered refusal of this subject token, if any.
func (x *Exchange) denied(token string, now time.Time) error {
	if x.denialTTL <= 0 {
		return nil
	}
	sum := sha256.Sum256([]byte(token))
	x.mu.Lock()
	defer x.mu.Unlock()
	d, ok := x.denials[sum]
	switch {
	case !ok:
		return nil
	case now.Before(d.until):
		return d.err
	default:
		delete(x.denials, sum)
		return nil
	}
}

// remember records a refusal of token until now+DenialTTL. The record is
// bounded like the cache; when full of live records it is simply cleared
// (it only saves requests).
func (x *Exchange) remember(token string, now time.Time, err error) {
	sum := sha256.Sum256([]byte(token))
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.denials) >= x.max {
		for k, d := range x.denials {
			if !now.Before(d.until) {
				delete(x.denials, k)
			}
		}
		if len(x.denials) >= x.max {
			clear(x.denials)
		}
	}
	x.denials[sum] = exchangeDenial{until: now.Add(x.denialTTL), err: err}
}

// checkResource accepts an RFC 8707 resource indicator: an absolute http
// or https URL without fragment (or user information).
func checkResource(raw string) error {
	return checkEndpointURL(raw)
}

// sharedKey is key bound to what makes this Exchange's tokens: its
// authorization server (issuer) and mcpgate's client there. In memory each
// Exchange has its own cache; a shared cache serves every route of every
// replica, and two routes with the same resource, audience and scopes but
// another token endpoint or client must not share a token.
func (x *Exchange) sharedKey(key exchangeKey) [32]byte {
	h := sha256.New()
	h.Write(key[:])
	as := x.ep.issuer
	if as == "" { // configured with a token URL instead of discovery
		if u := x.ep.tokenURL.Load(); u != nil {
			as = *u
		}
	}
	for _, p := range []string{as, x.ep.clientID} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
