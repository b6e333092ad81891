package testissuer

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the claims of a minted token (or of an opaque token's
// introspection answer). Zero values get defaults as documented.
type Claims struct {
	// Issuer is iss. "" → URL().
	Issuer string
	// Subject is sub; "" omits it.
	Subject string
	// Audience is aud: one value is written as a string (unless
	// AudienceArray), several as an array; nil omits it.
	Audience      []string
	AudienceArray bool
	// ClientID is client_id. "" → "test-client" (RFC 9068 requires it);
	// NoClientID omits it.
	ClientID   string
	NoClientID bool
	// Scope is the space-separated scope claim; "" omits it.
	Scope string
	// JTI is jti. "" → random.
	JTI string
	// IssuedAt is iat. Zero → now (NoIssuedAt omits it).
	IssuedAt   time.Time
	NoIssuedAt bool
	// NotBefore is nbf; zero omits it.
	NotBefore time.Time
	// Expiry is exp. Zero → now + Options.Lifetime (NoExpiry omits it).
	Expiry   time.Time
	NoExpiry bool
	// Actor is the RFC 8693 act chain, outermost first: each is an act.sub.
	Actor []string
	// Extra is merged last; a nil value deletes a claim.
	Extra map[string]any
}

// Forgery selects a deliberately invalid signature.
type Forgery int

const (
	// ForgeNone: alg "none" and an empty signature.
	ForgeNone Forgery = iota + 1
	// ForgeHS256PublicKeyPEM: HS256 keyed with the PEM of the issuer's RSA
	// public key (the classic algorithm-confusion attack).
	ForgeHS256PublicKeyPEM
	// ForgeHS256JWKS: HS256 keyed with the published JWKS document.
	ForgeHS256JWKS
	// ForgeHS256Modulus: HS256 keyed with the RSA modulus bytes.
	ForgeHS256Modulus
)

type mintConfig struct {
	alg         string
	kid         *string // nil → the signing key's kid
	typ         *string // nil → "at+jwt"
	header      map[string]any
	rawHeader   []byte
	rawClaims   []byte
	unpublished bool
	forgery     Forgery
}

// MintOption adjusts one Mint call.
type MintOption func(*mintConfig)

// WithAlg signs with alg (RS*, PS*, ES*, EdDSA) instead of Options.Alg.
func WithAlg(alg string) MintOption { return func(m *mintConfig) { m.alg = alg } }

// WithKID sets the header kid, whatever key signs (e.g. an ES256
// signature labelled with the RSA key's kid).
func WithKID(kid string) MintOption { return func(m *mintConfig) { m.kid = &kid } }

// WithoutKID omits kid.
func WithoutKID() MintOption { return WithHeader("kid", nil) }

// WithType sets typ (default "at+jwt").
func WithType(typ string) MintOption { return func(m *mintConfig) { m.typ = &typ } }

// WithoutType omits typ.
func WithoutType() MintOption { return WithHeader("typ", nil) }

// WithHeader sets a header parameter (e.g. crit, jku, jwk, x5c); nil
// removes one.
func WithHeader(name string, v any) MintOption {
	return func(m *mintConfig) {
		if m.header == nil {
			m.header = map[string]any{}
		}
		m.header[name] = v
	}
}

// WithRawHeader uses exactly these bytes as the JOSE header JSON (for
// duplicate or case-variant names); the signature is still real.
func WithRawHeader(b []byte) MintOption { return func(m *mintConfig) { m.rawHeader = b } }

// WithRawClaims uses exactly these bytes as the claims JSON.
func WithRawClaims(b []byte) MintOption { return func(m *mintConfig) { m.rawClaims = b } }

// WithUnpublishedKey signs with a fresh key of the right family that the
// JWKS does not contain, under a fresh kid unless WithKID says otherwise.
func WithUnpublishedKey() MintOption { return func(m *mintConfig) { m.unpublished = true } }

// WithForgery replaces the signature by a forgery.
func WithForgery(f Forgery) MintOption { return func(m *mintConfig) { m.forgery = f } }

// Mint returns a signed compact JWT. It fails the test on a bad option.
func (i *Issuer) Mint(c Claims, opts ...MintOption) string {
	i.t.Helper()
	mc := mintConfig{alg: i.opts.Alg}
	for _, o := range opts {
		o(&mc)
	}
	var key *signingKey
	if mc.forgery == 0 {
		f := familyOf(mc.alg)
		if f == "" {
			i.t.Fatalf("testissuer: cannot sign with alg %q (use WithForgery)", mc.alg)
		}
		i.mu.Lock()
		if mc.unpublished {
			key = i.newKeyLocked(f)
		} else {
			key = i.current[f]
		}
		i.mu.Unlock()
	}
	hdr := map[string]any{"alg": mc.alg, "typ": "at+jwt"}
	if key != nil {
		hdr["kid"] = key.kid
	}
	switch mc.forgery {
	case ForgeNone:
		hdr["alg"] = "none"
	case ForgeHS256PublicKeyPEM, ForgeHS256JWKS, ForgeHS256Modulus:
		hdr["alg"] = "HS256"
		hdr["kid"] = i.KID("RS256")
	}
	if mc.kid != nil {
		hdr["kid"] = *mc.kid
	}
	if mc.typ != nil {
		hdr["typ"] = *mc.typ
	}
	merge(hdr, mc.header)
	hdrJSON := mc.rawHeader
	if hdrJSON == nil {
		hdrJSON = mustJSON(i, hdr)
	}
	claimsJSON := mc.rawClaims
	if claimsJSON == nil {
		claimsJSON = mustJSON(i, i.claimMap(c))
	}
	enc := base64.RawURLEncoding.EncodeToString
	input := enc(hdrJSON) + "." + enc(claimsJSON)
	sig, err := i.sign(input, mc, key)
	if err != nil {
		i.t.Fatalf("testissuer: sign: %v", err)
	}
	return input + "." + enc(sig)
}

func (i *Issuer) sign(input string, mc mintConfig, key *signingKey) ([]byte, error) {
	switch mc.forgery {
	case ForgeNone:
		return nil, nil
	case ForgeHS256PublicKeyPEM, ForgeHS256JWKS, ForgeHS256Modulus:
		i.mu.Lock()
		pub := i.current[famRSA].priv.Public().(*rsa.PublicKey)
		i.mu.Unlock()
		var secret []byte
		switch mc.forgery {
		case ForgeHS256PublicKeyPEM:
			der, err := x509.MarshalPKIXPublicKey(pub)
			if err != nil {
				return nil, err
			}
			secret = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		case ForgeHS256JWKS:
			secret = i.JWKS()
		default:
			secret = pub.N.Bytes()
		}
		return jwt.SigningMethodHS256.Sign(input, secret)
	}
	return jwt.GetSigningMethod(mc.alg).Sign(input, key.signer())
}

func mustJSON(i *Issuer, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		i.t.Fatalf("testissuer: marshal: %v", err)
	}
	return b
}

func (i *Issuer) claimMap(c Claims) map[string]any {
	now := i.now()
	m := map[string]any{}
	m["iss"] = c.Issuer
	if c.Issuer == "" {
		m["iss"] = i.url
	}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set("sub", c.Subject)
	if !c.NoClientID {
		if c.ClientID == "" {
			c.ClientID = "test-client"
		}
		m["client_id"] = c.ClientID
	}
	set("scope", c.Scope)
	m["jti"] = c.JTI
	if c.JTI == "" {
		m["jti"] = randomHex(8)
	}
	switch {
	case len(c.Audience) == 1 && !c.AudienceArray:
		m["aud"] = c.Audience[0]
	case c.Audience != nil:
		m["aud"] = c.Audience
	}
	if !c.NoIssuedAt {
		iat := c.IssuedAt
		if iat.IsZero() {
			iat = now
		}
		m["iat"] = iat.Unix()
	}
	if !c.NotBefore.IsZero() {
		m["nbf"] = c.NotBefore.Unix()
	}
	if !c.NoExpiry {
		exp := c.Expiry
		if exp.IsZero() {
			exp = now.Add(i.opts.Lifetime)
		}
		m["exp"] = exp.Unix()
	}
	var act map[string]any
	for j := len(c.Actor) - 1; j >= 0; j-- {
		a := map[string]any{"sub": c.Actor[j]}
		if act != nil {
			a["act"] = act
		}
		act = a
	}
	if act != nil {
		m["act"] = act
	}
	merge(m, c.Extra)
	return m
}

// opaqueToken is an issued opaque token, as the AS remembers it.
type opaqueToken struct {
	claims      map[string]any
	exp         time.Time // zero when the answer has no exp
	revoked     bool
	activeAfter bool // lax AS: still active after exp
}

// OpaqueOption adjusts one MintOpaque call.
type OpaqueOption func(*opaqueToken)

// ReportActiveAfterExpiry makes the AS answer active:true even after the
// token's exp (a lax AS), so the gateway's own exp check is exercised.
func ReportActiveAfterExpiry() OpaqueOption {
	return func(o *opaqueToken) { o.activeAfter = true }
}

// MintOpaque issues an opaque (non-JWT) token that the introspection
// endpoint answers for with c's claims while it is unexpired and not
// revoked, and with {"active":false} otherwise.
func (i *Issuer) MintOpaque(c Claims, opts ...OpaqueOption) string {
	o := &opaqueToken{claims: i.claimMap(c)}
	if v, ok := o.claims["exp"].(int64); ok {
		o.exp = time.Unix(v, 0)
	}
	for _, f := range opts {
		f(o)
	}
	tok := "opq_" + randomHex(24)
	i.mu.Lock()
	defer i.mu.Unlock()
	i.opaque[tok] = o
	return tok
}

// Revoke makes the introspection endpoint answer {"active":false} for an
// opaque token. (JWTs are validated locally and cannot be revoked here.)
func (i *Issuer) Revoke(token string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if o, ok := i.opaque[token]; ok {
		o.revoked = true
	}
}

func (i *Issuer) introspectAnswer(tok string) map[string]any {
	now := i.now()
	i.mu.Lock()
	defer i.mu.Unlock()
	o, ok := i.opaque[tok]
	if !ok || o.revoked || !o.exp.IsZero() && !now.Before(o.exp) && !o.activeAfter {
		return map[string]any{"active": false}
	}
	ans := map[string]any{"active": true, "token_type": "Bearer"}
	for k, v := range o.claims {
		ans[k] = v
	}
	return ans
}
