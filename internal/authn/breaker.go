// This file implements the per-issuer circuit breaker around every call to
// an authorization server (discovery, JWKS, introspection) and the
// observability hooks reporting those calls.
//
// The breaker only stops hammering a server that is down: a call it rejects
// fails exactly as a failed network call would, so every fail-closed rule
// (503 past MaxStale, introspection unavailable) applies unchanged, and no
// token is ever accepted because of it.

package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/mcpgate/mcpgate/internal/egress"
)

// Call names passed to Deps.OnCall.
const (
	CallDiscovery     = "discovery"
	CallJWKS          = "jwks"
	CallIntrospection = "introspection"
)

// Breaker states reported by BreakerStates.
const (
	BreakerClosed   = "closed"
	BreakerHalfOpen = "half-open"
	BreakerOpen     = "open"
)

// ErrCircuitOpen marks a call the issuer's circuit breaker refused without
// any network I/O: the breaker is open, or half-open with its one probe
// already in flight. Match it with errors.Is.
var ErrCircuitOpen = errors.New("circuit breaker open: call not attempted")

// verdict is how one call's outcome counts for the breaker.
type verdict int

const (
	verdictFault    verdict = iota // the server is down or broken: counts as a failure
	verdictUp                      // the server answered well-formed: counts as a success
	verdictExcluded                // says nothing about the server: not counted
)

// upError marks an error that proves the server is up (a well-formed
// refusal), so the breaker counts the call as a success.
type upError struct{ err error }

func (e *upError) Error() string { return e.err.Error() }
func (e *upError) Unwrap() error { return e.err }

// answered marks err as a well-formed refusal.
func answered(err error) error { return &upError{err} }

// goneError marks a call abandoned because its caller's context ended: it
// says nothing about the server.
type goneError struct{ err error }

func (e *goneError) Error() string { return e.err.Error() }
func (e *goneError) Unwrap() error { return e.err }

// classify decides how err counts. Server faults are network errors and
// timeouts, 5xx (and 408/429), oversized and unparseable bodies. A 3xx or
// other 4xx, a metadata document naming another issuer, or an error marked
// by answered proves the server is up. A call the egress guard refused
// before any I/O, or abandoned because the caller went away, is not
// counted. In a joined error (one per discovery URL) any fault wins.
func classify(err error) verdict {
	var up *upError
	var gone *goneError
	switch {
	case err == nil, errors.As(err, &up):
		return verdictUp
	case errors.As(err, &gone):
		return verdictExcluded
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		v := verdictExcluded
		for _, e := range j.Unwrap() {
			switch classify(e) {
			case verdictFault:
				return verdictFault
			case verdictUp:
				v = verdictUp
			}
		}
		return v
	}
	var se *egress.StatusError
	switch {
	case errors.Is(err, egress.ErrURLNotAllowed), errors.Is(err, egress.ErrAddressNotAllowed):
		return verdictExcluded
	case errors.Is(err, egress.ErrRedirect), errors.Is(err, errIssuerMismatch):
		return verdictUp
	case errors.As(err, &se):
		if serverStatus(se.StatusCode) {
			return verdictFault
		}
		return verdictUp
	}
	return verdictFault
}

// serverStatus reports whether an HTTP status means the server cannot
// serve now (rather than refusing a request it understood).
func serverStatus(code int) bool {
	return code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
}

// newBreakers makes the issuer's breakers, one per kind of call: the
// metadata, the JWKS and the introspection endpoint may be served by
// different hosts (a CDN for the keys, say), so an introspection outage
// must not stop key refreshes and let the keys go stale.
func newBreakers(ic *IssuerConfig, log *slog.Logger) map[string]*gobreaker.CircuitBreaker[struct{}] {
	m := map[string]*gobreaker.CircuitBreaker[struct{}]{}
	for _, call := range []string{CallDiscovery, CallJWKS, CallIntrospection} {
		m[call] = newBreaker(ic, call, log.With("call", call))
	}
	return m
}

func newBreaker(ic *IssuerConfig, call string, log *slog.Logger) *gobreaker.CircuitBreaker[struct{}] {
	n := uint32(DefaultBreakerFailures)
	if ic.BreakerFailures > 0 { // normalize bounds it
		n = uint32(ic.BreakerFailures)
	}
	return gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        ic.Issuer + " " + call,
		MaxRequests: 1, // one probe when half-open
		Timeout:     orDefault(ic.BreakerOpenTimeout, DefaultBreakerOpenTimeout),
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= n },
		IsSuccessful: func(err error) bool {
			return classify(err) == verdictUp
		},
		IsExcluded: func(err error) bool {
			return classify(err) == verdictExcluded
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			lvl := slog.LevelWarn
			if to == gobreaker.StateClosed {
				lvl = slog.LevelInfo
			}
			log.LogAttrs(context.Background(), lvl, "authn: circuit breaker",
				slog.String("from", from.String()), slog.String("to", to.String()))
		},
	})
}

// callAS makes one authorization-server call through the issuer's breaker
// for that kind of call
// and reports it to Deps.OnCall. fn's error is returned as is; a refused
// call returns an error matching ErrCircuitOpen. fn marks well-formed
// refusals with answered.
func (s *issuerState) callAS(ctx context.Context, call string, fn func(context.Context) error) error {
	start := time.Now() // real elapsed time, for latency, whatever Deps.Now says
	var err error
	_, berr := s.breakers[call].Execute(func() (struct{}, error) {
		err = fn(ctx)
		if err != nil && ctx.Err() != nil {
			return struct{}{}, &goneError{err}
		}
		return struct{}{}, err
	})
	if errors.Is(berr, gobreaker.ErrOpenState) || errors.Is(berr, gobreaker.ErrTooManyRequests) {
		err = fmt.Errorf("%s: %w (%w)", call, ErrCircuitOpen, berr)
	}
	if s.hooks.OnCall != nil {
		s.hooks.OnCall(s.cfg.Issuer, call, time.Since(start), err)
	}
	return err
}

// hooks are the observability callbacks of Deps.
type hooks struct {
	OnCall           func(issuer, call string, d time.Duration, err error)
	OnStaleDenial    func(issuer string)
	OnRefreshFailure func(issuer string)
}

// BreakerStates returns each issuer's circuit breaker state: "closed",
// "half-open" or "open". An issuer has one breaker per kind of call
// (discovery, JWKS, introspection); its state here is the worst of them
// (open, then half-open, then closed).
func (a *Authenticator) BreakerStates() map[string]string {
	out := make(map[string]string, len(a.issuers))
	for _, s := range a.issuers {
		worst := gobreaker.StateClosed
		for _, b := range s.breakers {
			switch st := b.State(); {
			case st == gobreaker.StateOpen:
				worst = st
			case st == gobreaker.StateHalfOpen && worst == gobreaker.StateClosed:
				worst = st
			}
		}
		out[s.cfg.Issuer] = stateName(worst)
	}
	return out
}

func stateName(st gobreaker.State) string {
	switch st {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	}
	return BreakerClosed
}

// KeyAges returns, for each issuer whose JWKS was ever fetched, the time
// since the last successful fetch (on Deps.Now's clock). Issuers never
// fetched, and introspection-only ones, are absent.
func (a *Authenticator) KeyAges() map[string]time.Duration {
	now := a.now()
	out := make(map[string]time.Duration, len(a.issuers))
	for _, s := range a.issuers {
		if ks := s.keys.Load(); ks != nil {
			out[s.cfg.Issuer] = now.Sub(ks.fetched)
		}
	}
	return out
}
