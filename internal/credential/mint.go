package credential

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Mint lifetimes.
const (
	DefaultMintLifetime = 5 * time.Minute
	MaxMintLifetime     = time.Hour
	// MaxMintClockSkew bounds MintConfig.ClockSkew.
	MaxMintClockSkew = 5 * time.Minute
)

// MintConfig configures the JWTs minted for one upstream.
type MintConfig struct {
	// Issuer is mcpgate's issuer identifier (the iss, and the act.sub
	// naming mcpgate as the actor): an absolute https URL without query
	// or fragment; plain http only for a loopback host.
	Issuer string
	// Audience identifies the upstream (the aud, a single string).
	Audience string
	// Scopes are the scopes this upstream needs; a token carries those
	// the caller holds.
	Scopes []string
	// Lifetime bounds a token's life, never beyond the caller's token.
	// Default DefaultMintLifetime, at most MaxMintLifetime.
	Lifetime time.Duration
	// ClockSkew is how far upstream clocks may lag: with generated keys,
	// Lifetime+ClockSkew must not exceed the key set's overlap, so a key
	// stays published as long as a token it signed can be accepted. At
	// most MaxMintClockSkew.
	ClockSkew time.Duration
}

// Minter is the ModeMint Source: it mints a short-lived JWT access token
// (RFC 9068) for the upstream, signed by mcpgate's current key, on behalf
// of the caller's subject with mcpgate as the actor (RFC 8693 §4.1).
// It uses the KeySet's clock.
type Minter struct {
	keys     *KeySet
	issuer   string
	audience string
	scopes   []string
	lifetime time.Duration
}

var _ Source = (*Minter)(nil)

// NewMinter validates cfg and returns a Minter signing with keys.
func NewMinter(cfg MintConfig, keys *KeySet) (*Minter, error) {
	if cfg.Lifetime == 0 {
		cfg.Lifetime = DefaultMintLifetime
	}
	var errs []error
	if err := checkMintIssuer(cfg.Issuer); err != nil {
		errs = append(errs, err)
	}
	if cfg.Audience == "" || strings.TrimSpace(cfg.Audience) != cfg.Audience || strings.ContainsFunc(cfg.Audience, unicode.IsControl) {
		errs = append(errs, fmt.Errorf("credential: mint audience %q must be non-empty, without surrounding space or control characters", cfg.Audience))
	}
	var scopes []string
	for _, s := range cfg.Scopes {
		if !validScope(s) {
			errs = append(errs, fmt.Errorf("credential: mint scope %q is not a valid scope token", s))
		} else if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	if cfg.Lifetime < time.Second || cfg.Lifetime > MaxMintLifetime {
		errs = append(errs, fmt.Errorf("credential: mint lifetime %s must be between 1s and %s", cfg.Lifetime, MaxMintLifetime))
	}
	if cfg.ClockSkew < 0 || cfg.ClockSkew > MaxMintClockSkew {
		errs = append(errs, fmt.Errorf("credential: mint clock skew %s must be between 0 and %s", cfg.ClockSkew, MaxMintClockSkew))
	}
	switch {
	case keys == nil:
		errs = append(errs, errors.New("credential: mint needs a key set"))
	case keys.gen != nil && cfg.Lifetime+cfg.ClockSkew > keys.gen.overlap:
		errs = append(errs, fmt.Errorf("credential: mint lifetime plus clock skew (%s) exceeds the signing key overlap (%s): tokens would outlive their key's publication",
			cfg.Lifetime+cfg.ClockSkew, keys.gen.overlap))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Minter{keys: keys, issuer: cfg.Issuer, audience: cfg.Audience, scopes: scopes, lifetime: cfg.Lifetime}, nil
}

// checkMintIssuer accepts an absolute https URL, or http for a loopback
// host, without user info, query or fragment (RFC 8414 §2).
func checkMintIssuer(iss string) error {
	u, err := url.Parse(iss)
	bad := err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" ||
		strings.Contains(iss, "#") || strings.ContainsFunc(iss, unicode.IsSpace)
	if !bad {
		switch u.Scheme {
		case "https":
		case "http":
			bad = !mintLoopbackHost(u.Hostname())
		default:
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("credential: mint issuer %q must be an absolute https URL without query or fragment (plain http only for a loopback host)", iss)
	}
	return nil
}

func mintLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

// mintClaims are the claims of a minted token.
type mintClaims struct {
	Iss      string     `json:"iss"`
	Sub      string     `json:"sub"`
	Aud      string     `json:"aud"`
	ClientID string     `json:"client_id,omitempty"`
	Act      *mintActor `json:"act"`
	Scope    string     `json:"scope,omitempty"`
	Iat      int64      `json:"iat"`
	Exp      int64      `json:"exp"`
	Jti      string     `json:"jti"`
}

// mintActor is an RFC 8693 act claim: the current actor, and the prior
// chain nested inside.
type mintActor struct {
	Sub string     `json:"sub"`
	Act *mintActor `json:"act,omitempty"`
}

// Credential mints a token for c:
//
//   - iss: the Issuer; aud: the Audience;
//   - sub: the caller's subject (its client id when it has none, as for
//     the client credentials grant, RFC 9068 §2.2); client_id: the
//     caller's client;
//   - act: {"sub": Issuer}, with the caller's own act chain nested inside;
//   - scope: the configured scopes the caller holds, omitted when none;
//   - iat, exp = now + Lifetime, never beyond the caller's token; jti:
//     128 random bits.
//
// A caller whose token expires within a second is denied.
func (m *Minter) Credential(ctx context.Context, c Caller) (Credential, error) {
	if err := ctx.Err(); err != nil {
		return Credential{}, &Error{Kind: Unavailable, Message: "the request ended before an upstream credential was minted", Err: err}
	}
	sub := c.Subject
	if sub == "" {
		sub = c.ClientID
	}
	if sub == "" {
		return Credential{}, &Error{Kind: Denied, Message: "the client's token names neither a subject nor a client"}
	}
	now := m.keys.now()
	exp := now.Add(m.lifetime)
	if !c.Expiry.IsZero() {
		if c.Expiry.Sub(now) < time.Second {
			return Credential{}, &Error{Kind: Denied, Message: "the client's token expires too soon to mint an upstream credential"}
		}
		if c.Expiry.Before(exp) {
			exp = c.Expiry
		}
	}
	claims := mintClaims{
		Iss:      m.issuer,
		Sub:      sub,
		Aud:      m.audience,
		ClientID: c.ClientID,
		Act:      m.actor(c.Actor),
		Scope:    m.scope(c.Scopes),
		Iat:      now.Unix(),
		Exp:      exp.Unix(), // rounded down: never after the caller's expiry
		Jti:      newMintJTI(),
	}
	payload, err := json.Marshal(&claims)
	if err != nil {
		return Credential{}, &Error{Kind: Unavailable, Message: "mcpgate cannot mint an upstream credential", Err: err}
	}
	tok, err := m.keys.signPayload("at+jwt", payload)
	if err != nil {
		return Credential{}, &Error{Kind: Unavailable, Message: "mcpgate's signing key is unavailable", Err: err}
	}
	return Credential{
		Header: "Authorization",
		Value:  "Bearer " + tok,
		Secret: tok,
		Expiry: time.Unix(claims.Exp, 0),
		ID:     claims.Jti,
	}, nil
}

// actor returns mcpgate as the current actor, prior actors nested.
func (m *Minter) actor(prior []string) *mintActor {
	nodes := make([]mintActor, len(prior)+1)
	nodes[0].Sub = m.issuer
	for i, sub := range prior {
		nodes[i+1].Sub = sub
		nodes[i].Act = &nodes[i+1]
	}
	return &nodes[0]
}

// scope returns the configured scopes the caller holds, space-separated,
// in configuration order.
func (m *Minter) scope(held []string) string {
	n := 0
	var b strings.Builder
	for _, s := range m.scopes {
		if !slices.Contains(held, s) {
			continue
		}
		if n > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
		n++
	}
	return b.String()
}

// newMintJTI returns 128 random bits, base64url.
func newMintJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
