// This file implements validation of opaque tokens by OAuth 2.0 Token
// Introspection, RFC 7662, with client authentication per RFC 6749 §2.3.1.
// See https://www.rfc-editor.org/rfc/rfc7662

package authn

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// introspect asks each issuer trusted on the route that has introspection,
// in configuration order, until one answers active. A token is sent only to
// the authorization servers configured for the route; an active answer
// from any of them is then checked like a JWT (iss, exp, nbf/iat, aud,
// sub). If none answers active, any failure makes the result 503 (fail
// closed), else 401 inactive.
func (a *Authenticator) introspect(ctx context.Context, tok string, r *Request, now time.Time) (*Identity, *issuerState, time.Time, *Error) {
	var failed *Error
	tried := false
	for _, s := range a.issuers {
		if s.cfg.Introspection == nil || !issuerAllowed(r.Issuers, s.cfg.Issuer) {
			continue
		}
		tried = true
		id, expires, e := s.introspect(ctx, tok, a.audience(r), now)
		switch {
		case e == nil:
			return id, s, expires, nil
		case e.Reason == ReasonInactive:
			continue
		case e.Status == http.StatusServiceUnavailable:
			if failed == nil {
				failed = e
			}
			continue
		}
		return nil, nil, time.Time{}, e // active, but fails a check: final
	}
	switch {
	case !tried:
		return nil, nil, time.Time{}, reject(ReasonMalformed, errors.New("not a JWT, and no issuer on this route introspects"))
	case failed != nil:
		return nil, nil, time.Time{}, failed
	}
	return nil, nil, time.Time{}, reject(ReasonInactive, errors.New("no authorization server reports the token active"))
}

// introspectionEndpoint returns the endpoint, discovering it if needed.
func (s *issuerState) introspectionEndpoint(ctx context.Context) (string, error) {
	s.mu.Lock()
	u := s.introspectURL
	s.mu.Unlock()
	if u != "" {
		return u, nil
	}
	err := s.onDemand(ctx) // discovery; a failed JWKS fetch does not matter here
	s.mu.Lock()
	u = s.introspectURL
	s.mu.Unlock()
	if u != "" {
		return u, nil
	}
	if err == nil || errors.Is(err, errCooldown) {
		err = errors.New("no introspection endpoint known")
	}
	return "", err
}

// introspect validates tok at this issuer. It returns the identity and the
// instant its cache entry expires: min(now+CacheTTL, exp).
func (s *issuerState) introspect(ctx context.Context, tok string, aud audienceCheck, now time.Time) (*Identity, time.Time, *Error) {
	ic := s.cfg.Introspection
	endpoint, err := s.introspectionEndpoint(ctx)
	if err != nil {
		return nil, time.Time{}, reject(ReasonIntrospection, err)
	}
	form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
	hdr := http.Header{}
	if ic.AuthMethod == "client_secret_post" {
		form.Set("client_id", ic.ClientID)
		form.Set("client_secret", string(ic.ClientSecret))
	} else { // client_secret_basic, RFC 6749 §2.3.1: form-encode, then Basic
		cred := url.QueryEscape(ic.ClientID) + ":" + url.QueryEscape(string(ic.ClientSecret))
		hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
	}
	// One breaker-guarded call: the POST and reading the answer up to
	// "active". A well-formed answer (active true or false, or a 4xx
	// refusal) proves the server is up; anything else counts against it.
	var o object
	var inactive bool
	err = s.callAS(ctx, CallIntrospection, func(ctx context.Context) error {
		status, body, err := s.http.PostForm(ctx, endpoint, form, hdr)
		if err != nil {
			// egress errors name the endpoint, never the form.
			return err
		}
		if status != http.StatusOK {
			// The body is not quoted: an AS may echo the token in it.
			err := fmt.Errorf("introspection answered status %d", status)
			if !serverStatus(status) {
				err = answered(err)
			}
			return err
		}
		if o, err = parseObject(body); err != nil {
			return fmt.Errorf("introspection answer: %w", err)
		}
		switch raw, _ := o.get("active"); string(raw) {
		case "true":
		case "false":
			inactive = true
		default:
			return errors.New("introspection answer: active is not a boolean")
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, time.Time{}, reject(ReasonIntrospection, err)
	case inactive:
		return nil, time.Time{}, reject(ReasonInactive, errors.New("introspection: active false"))
	}
	// token_type, when present, must say this is an access token usable as
	// a bearer token: an AS may report a refresh token (or a
	// sender-constrained DPoP token) active too.
	if raw, ok := o.get("token_type"); ok {
		tt, ok := jsonString(raw)
		if !ok || !bearerTokenType(tt) {
			return nil, time.Time{}, reject(ReasonBadType, errors.New("introspection answer: token_type is not a bearer access token"))
		}
	}
	var c claims
	if e := c.read(o); e != nil {
		return nil, time.Time{}, e
	}
	// iss is optional in RFC 7662; present, it must be this issuer.
	if c.iss == "" {
		c.iss = s.cfg.Issuer
	}
	if c.iss != s.cfg.Issuer {
		return nil, time.Time{}, reject(ReasonUnknownIssuer, errors.New("introspection answer names another issuer"))
	}
	c.resolve(s.cfg.ClientIDClaims, s.cfg.ScopeClaims)
	if e := checkTimesAndAudience(&c, aud, now, s.cfg.ClockSkew); e != nil {
		return nil, time.Time{}, e
	}
	expires := now.Add(ic.CacheTTL)
	if c.exp.Before(expires) {
		expires = c.exp
	}
	id := c.identity()
	id.Introspected = true
	return id, expires, nil
}

// bearerTokenType reports whether an introspection token_type names a bearer
// access token.
func bearerTokenType(t string) bool {
	switch strings.ToLower(t) {
	case "bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token":
		return true
	}
	return false
}
