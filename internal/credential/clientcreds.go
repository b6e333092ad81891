// This file implements ModeClientCredentials: mcpgate's own service token
// for an upstream, from the client credentials grant (RFC 6749 §4.4) with
// the upstream as resource (RFC 8707), refreshed before it expires.
// See https://www.rfc-editor.org/rfc/rfc6749#section-4.4.

package credential

import (
	"context"
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

// Client credentials defaults.
const (
	// DefaultClientCredentialsRefreshMargin is the least margin before
	// expiry at which the token is refreshed; the margin is
	// max(this, 20% of the lifetime), at most half the lifetime.
	DefaultClientCredentialsRefreshMargin = 30 * time.Second
	// DefaultClientCredentialsRetryAfter is how long after a failed request
	// the next one waits while the current token is still valid, and how
	// long a refusal is returned without a new request.
	DefaultClientCredentialsRetryAfter = 5 * time.Second
)

// ClientCredentialsConfig configures a ClientCredentials. It is validated
// by NewClientCredentials.
type ClientCredentialsConfig struct {
	// Endpoint is the authorization server's token endpoint, with
	// mcpgate's client identity (allowed the client_credentials grant).
	// Required.
	Endpoint *TokenEndpoint
	// Resource is the upstream's resource indicator (RFC 8707). Required,
	// an absolute http or https URL without fragment.
	Resource string
	// Scopes are requested, all of them. Empty → no scope parameter.
	Scopes []string
	// RefreshMargin: the token is refreshed once less than this is left of
	// its life (at most half its lifetime). 0 → max(30s, 20% of the
	// lifetime).
	RefreshMargin time.Duration
	// RetryAfter: after a failed refresh the current token is used for
	// this long before the next attempt; a refusal with no valid token
	// left is returned for this long without a request. 0 → 5s.
	RetryAfter time.Duration
	// Now is the clock. nil → time.Now.
	Now func() time.Time
	// Logger: nil → discard. Never receives a token.
	Logger *slog.Logger
}

// ClientCredentials is the ModeClientCredentials Source: one token, of
// mcpgate's own client, for every caller. The Caller is ignored: the
// upstream sees mcpgate, not the user, so use it for operations that are
// system-scoped by nature (the audit record still names the user). It is
// safe for concurrent use.
//
// The token is cached and refreshed early: the first call inside the
// refresh margin starts a refresh in the background (one at a time) and is
// answered with the current token. If the refresh fails, the current token
// is used while it is valid (a warning is logged) and the refresh is
// retried after RetryAfter. Only when no valid token is left does a call
// wait for the request and fail with its error.
type ClientCredentials struct {
	ep         *TokenEndpoint
	form       url.Values
	margin     time.Duration // 0: the default rule
	retryAfter time.Duration
	now        func() time.Time
	log        *slog.Logger

	group singleflight.Group

	mu      sync.Mutex
	cur     *clientCredsToken
	retryAt time.Time // no refresh before, after a failure
	refusal error     // the last refusal, returned until retryAt when no valid token is left
}

type clientCredsToken struct {
	cred      Credential
	refreshAt time.Time
}

var _ Source = (*ClientCredentials)(nil)

// checkTarget reports the problems of the settings that exchange and
// client credentials share.
func checkTarget(add func(string, ...any), ep *TokenEndpoint, resource string, scopes []string, margin time.Duration) {
	if ep == nil {
		add("a token endpoint is required")
	}
	if resource == "" {
		add("resource is required")
	} else if err := checkResource(resource); err != nil {
		add("resource %q: %w", resource, err)
	}
	for _, s := range scopes {
		if !validScope(s) {
			add("scope %q is not a valid scope token (RFC 6749 §3.3)", s)
		}
	}
	if margin < 0 {
		add("refresh margin must not be negative")
	}
}

// NewClientCredentials validates cfg, reporting every problem at once, and
// returns the Source. It makes no request.
func NewClientCredentials(cfg ClientCredentialsConfig) (*ClientCredentials, error) {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	checkTarget(add, cfg.Endpoint, cfg.Resource, cfg.Scopes, cfg.RefreshMargin)
	if cfg.RetryAfter < 0 {
		add("retry after must not be negative")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(errors.New("credential: invalid client credentials config"), err)
	}
	s := &ClientCredentials{
		ep:     cfg.Endpoint,
		form:   url.Values{"grant_type": {grantClientCreds}, "resource": {cfg.Resource}},
		margin: cfg.RefreshMargin, retryAfter: cfg.RetryAfter, now: cfg.Now, log: cfg.Logger,
	}
	if scopes := slices.Compact(slices.Sorted(slices.Values(cfg.Scopes))); len(scopes) > 0 {
		s.form.Set("scope", strings.Join(scopes, " "))
	}
	if s.retryAfter == 0 {
		s.retryAfter = DefaultClientCredentialsRetryAfter
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("resource", cfg.Resource)
	return s, nil
}

// Credential returns mcpgate's token for the upstream; the Caller is
// ignored. Every error is an *Error.
func (s *ClientCredentials) Credential(ctx context.Context, _ Caller) (Credential, error) {
	now := s.now()
	s.mu.Lock()
	cur, retryAt, refusal := s.cur, s.retryAt, s.refusal
	s.mu.Unlock()
	valid := cur != nil && now.Before(cur.cred.Expiry)
	switch {
	case valid && now.Before(cur.refreshAt):
		return cur.cred, nil
	case valid:
		if !now.Before(retryAt) {
			// Refresh in the background; the flight is bounded by the
			// endpoint's timeout, not by this caller.
			s.group.DoChan("", func() (any, error) { return s.fetch(context.WithoutCancel(ctx)) })
		}
		return cur.cred, nil
	case refusal != nil && now.Before(retryAt):
		return Credential{}, refusal
	}
	ch := s.group.DoChan("", func() (any, error) { return s.fetch(context.WithoutCancel(ctx)) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return Credential{}, r.Err
		}
		return r.Val.(Credential), nil
	case <-ctx.Done():
		return Credential{}, &Error{Kind: Unavailable, Message: "the client credentials request was abandoned", Err: ctx.Err()}
	}
}

// fetch requests a new token (the single flight) and installs it.
func (s *ClientCredentials) fetch(ctx context.Context) (any, error) {
	start := s.now()
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	// A flight that just ended may have installed a fresh token.
	if cur != nil && start.Before(cur.refreshAt) {
		return cur.cred, nil
	}
	resp, err := s.ep.request(ctx, "client credentials grant", s.form, false)
	if err != nil {
		s.mu.Lock()
		s.retryAt = start.Add(s.retryAfter)
		s.refusal = nil
		if IsDenied(err) {
			s.refusal = err
		}
		s.mu.Unlock()
		if cur != nil && s.now().Before(cur.cred.Expiry) {
			s.log.Warn("credential: refreshing the client credentials token failed; using the current one until it expires",
				"token_id", cur.cred.ID, "expires", cur.cred.Expiry, "retry_after", s.retryAfter.String(), "err", err)
		}
		return nil, err
	}
	expiry := start.Add(resp.Lifetime)
	margin := s.margin
	if margin == 0 {
		margin = max(DefaultClientCredentialsRefreshMargin, resp.Lifetime/5)
	}
	margin = min(margin, resp.Lifetime/2)
	tok := &clientCredsToken{
		cred: Credential{Header: "Authorization", Value: "Bearer " + resp.AccessToken, Secret: resp.AccessToken,
			Expiry: expiry, ID: shortHash(resp.AccessToken)},
		refreshAt: expiry.Add(-margin),
	}
	s.mu.Lock()
	s.cur, s.retryAt, s.refusal = tok, time.Time{}, nil
	s.mu.Unlock()
	s.log.Debug("credential: client credentials token obtained", "token_id", tok.cred.ID,
		"expires", expiry, "refresh_at", tok.refreshAt)
	return tok.cred, nil
}
