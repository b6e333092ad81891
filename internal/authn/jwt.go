// This file implements parsing of JWT access tokens per RFC 9068, RFC 7519
// and the JWT BCP, RFC 8725 (JWS compact serialization per RFC 7515 §7.1).
// See https://www.rfc-editor.org/rfc/rfc9068 and https://www.rfc-editor.org/rfc/rfc8725

package authn

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// methods binds each accepted "alg" to its verifier. It is a fixed table
// rather than jwt.GetSigningMethod, whose registry any imported package can
// change with jwt.RegisterSigningMethod. "none" and HS* are absent on
// purpose: a public key can never become an HMAC secret here.
var methods = map[string]jwt.SigningMethod{
	"RS256": jwt.SigningMethodRS256,
	"RS384": jwt.SigningMethodRS384,
	"RS512": jwt.SigningMethodRS512,
	"PS256": jwt.SigningMethodPS256,
	"PS384": jwt.SigningMethodPS384,
	"PS512": jwt.SigningMethodPS512,
	"ES256": jwt.SigningMethodES256,
	"ES384": jwt.SigningMethodES384,
	"ES512": jwt.SigningMethodES512,
	"EdDSA": jwt.SigningMethodEdDSA,
}

var supportedAlgs = func() map[string]bool {
	m := map[string]bool{}
	for alg := range methods {
		m[alg] = true
	}
	return m
}()

// jose is the part of the JOSE header mcpgate reads. jku, x5u, jwk and x5c
// are never read, so they can never pick a key.
type jose struct {
	alg    string
	typ    string
	hasTyp bool
	kid    string
	hasKID bool
}

// claims are the registered claims mcpgate interprets.
type claims struct {
	iss, sub, jti, clientID string
	aud                     []string
	exp, nbf, iat           time.Time
	hasExp, hasNbf, hasIat  bool
	scopes                  []string
	actors                  []string

	// idTokenMarks: claims only OpenID Connect ID tokens carry (at_hash,
	// c_hash, Keycloak's typ "ID"), refused whatever the header typ says.
	idTokenMarks bool

	// The candidates an issuer's ClientIDClaims and ScopeClaims choose
	// from (resolve), read before the issuer is known.
	clientIDs map[string]string   // client_id, azp, cid, appid
	scopeSets map[string][]string // scope, scp, roles
}

// ClientIDClaimNames and ScopeClaimNames are the claims an issuer may name
// in IssuerConfig.ClientIDClaims and ScopeClaims.
var (
	ClientIDClaimNames = []string{"client_id", "azp", "cid", "appid"}
	ScopeClaimNames    = []string{"scope", "scp", "roles"}
)

// resolve picks the client id and the scopes from the first of the
// issuer's configured claims that is present in the token.
func (c *claims) resolve(clientClaims, scopeClaims []string) {
	c.clientID = ""
	for _, n := range clientClaims {
		if v := c.clientIDs[n]; v != "" {
			c.clientID = v
			break
		}
	}
	c.scopes = nil
	for _, n := range scopeClaims {
		if l, ok := c.scopeSets[n]; ok {
			if len(l) > 0 {
				l = slices.Clone(l)
				slices.Sort(l)
				c.scopes = slices.Compact(l)
			}
			return
		}
	}
}

// jws is a token split into its compact-serialization parts.
type jws struct {
	header       jose
	claims       claims
	signingInput string // header.payload, a substring of the token
	sig          []byte
}

// splitJWS reports whether tok has the shape of a JWS compact
// serialization whose header decodes to a JSON object. Anything else is
// treated as an opaque token.
func splitJWS(tok string) (hdrJSON []byte, ok bool) {
	if strings.Count(tok, ".") != 2 {
		return nil, false
	}
	h, _, _ := strings.Cut(tok, ".")
	b, err := b64.DecodeString(h)
	if err != nil || len(b) == 0 || b[0] != '{' {
		return nil, false
	}
	return b, true
}

// parseJWS parses header and claims and decodes the signature. It checks
// syntax only; policy (issuer, alg pinning, time, audience) comes after.
// allowedAlgs is the union of every issuer's pinned algorithms.
func parseJWS(tok string, hdrJSON []byte, allowedAlgs map[string]bool) (*jws, *Error) {
	hdrSeg, rest, _ := strings.Cut(tok, ".")
	payloadSeg, sigSeg, _ := strings.Cut(rest, ".")
	if hdrSeg == "" || payloadSeg == "" {
		return nil, reject(ReasonMalformed, errSegments)
	}
	t := &jws{signingInput: tok[:len(hdrSeg)+1+len(payloadSeg)]}
	if e := parseHeader(hdrJSON, &t.header, allowedAlgs); e != nil {
		return nil, e
	}
	var err error
	if t.sig, err = b64.DecodeString(sigSeg); err != nil || len(t.sig) == 0 {
		return nil, reject(ReasonMalformed, errBase64)
	}
	payload, err := b64.DecodeString(payloadSeg)
	if err != nil {
		return nil, reject(ReasonMalformed, errBase64)
	}
	if e := parseClaims(payload, &t.claims); e != nil {
		return nil, e
	}
	return t, nil
}

// objectError maps a parseObject error to a rejection.
func objectError(err error) *Error {
	switch {
	case errors.Is(err, errDuplicate):
		return reject(ReasonDuplicateName, err)
	case errors.Is(err, errCaseVariant):
		return reject(ReasonCaseVariantName, err)
	}
	return reject(ReasonMalformed, err)
}

func parseHeader(data []byte, h *jose, allowedAlgs map[string]bool) *Error {
	o, err := parseObject(data)
	if err != nil {
		return objectError(err)
	}
	if err := o.checkRegistered("alg", "typ", "kid", "crit", "jku", "jwk", "x5u", "x5c", "cty", "b64", "zip", "enc"); err != nil {
		return objectError(err)
	}
	raw, ok := o.get("alg")
	if !ok {
		return reject(ReasonBadAlg, errors.New("no alg header"))
	}
	if h.alg, ok = jsonString(raw); !ok {
		return reject(ReasonMalformed, errors.New("alg is not a string"))
	}
	if !allowedAlgs[h.alg] {
		return reject(ReasonBadAlg, errors.New("alg not accepted by any issuer"))
	}
	// RFC 7515 §4.1.11: mcpgate understands no extension, so any crit fails.
	if _, ok := o.get("crit"); ok {
		return reject(ReasonCrit, errors.New("crit header present"))
	}
	// JWE (RFC 7516) and RFC 7797 unencoded payloads are not access tokens.
	for _, n := range []string{"enc", "zip", "b64"} {
		if _, ok := o.get(n); ok {
			return reject(ReasonMalformed, errors.New(n+" header present"))
		}
	}
	if raw, ok := o.get("typ"); ok {
		if h.typ, ok = jsonString(raw); !ok {
			return reject(ReasonMalformed, errors.New("typ is not a string"))
		}
		h.hasTyp = true
	}
	if raw, ok := o.get("kid"); ok {
		if h.kid, ok = jsonString(raw); !ok {
			return reject(ReasonMalformed, errors.New("kid is not a string"))
		}
		h.hasKID = true
	}
	return nil
}

// registeredClaims are the claim names mcpgate reads; a member equal to one
// of them ignoring case but not exactly is refused.
var registeredClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "azp", "cid", "appid", "scope", "scp", "roles", "act"}

func parseClaims(data []byte, c *claims) *Error {
	o, err := parseObject(data)
	if err != nil {
		return objectError(err)
	}
	return c.read(o)
}

// read fills c from a parsed claims object (a JWT payload or an
// introspection answer, which share these member names).
func (c *claims) read(o object) *Error {
	if err := o.checkRegistered(registeredClaims...); err != nil {
		return objectError(err)
	}
	bad := func(name string) *Error {
		return reject(ReasonMalformed, errors.New("invalid "+name+" claim"))
	}
	strs := []struct {
		name string
		dst  *string
	}{{"iss", &c.iss}, {"sub", &c.sub}, {"jti", &c.jti}}
	for _, s := range strs {
		if raw, ok := o.get(s.name); ok {
			if *s.dst, ok = jsonString(raw); !ok {
				return bad(s.name)
			}
		}
	}
	_, atHash := o.get("at_hash")
	_, cHash := o.get("c_hash")
	typ, _ := o.get("typ")
	c.idTokenMarks = atHash || cHash || string(typ) == `"ID"`
	for _, n := range ClientIDClaimNames {
		if raw, ok := o.get(n); ok {
			v, ok := jsonString(raw)
			if !ok {
				return bad(n)
			}
			if c.clientIDs == nil {
				c.clientIDs = map[string]string{}
			}
			c.clientIDs[n] = v
		}
	}
	if raw, ok := o.get("aud"); ok {
		if c.aud, ok = jsonStrings(raw); !ok {
			return bad("aud")
		}
	}
	times := []struct {
		name string
		dst  *time.Time
		has  *bool
	}{{"exp", &c.exp, &c.hasExp}, {"nbf", &c.nbf, &c.hasNbf}, {"iat", &c.iat, &c.hasIat}}
	for _, tm := range times {
		if raw, ok := o.get(tm.name); ok {
			if *tm.dst, ok = numericDate(raw); !ok {
				return bad(tm.name)
			}
			*tm.has = true
		}
	}
	for _, n := range ScopeClaimNames {
		if raw, ok := o.get(n); ok {
			l, err := readScopes(raw, n)
			if err != nil {
				return reject(ReasonMalformed, err)
			}
			if c.scopeSets == nil {
				c.scopeSets = map[string][]string{}
			}
			c.scopeSets[n] = l
		}
	}
	c.resolve(defaultClientIDClaims, defaultScopeClaims)
	var err error
	if raw, ok := o.get("act"); ok {
		if c.actors, err = readActors(raw); err != nil {
			return reject(ReasonMalformed, err)
		}
	}
	return nil
}

// readScopes reads one scope claim: a space-separated string ("scope",
// RFC 8693 §4.2) or an array of such strings ("scp", "roles"). Every scope
// must be an RFC 6749 scope-token.
func readScopes(raw []byte, name string) ([]string, error) {
	l, ok := jsonStrings(raw)
	if !ok {
		return nil, errors.New("invalid " + name + " claim")
	}
	var out []string
	for _, v := range l {
		for s := range strings.SplitSeq(v, " ") {
			if s == "" {
				continue
			}
			if !isScopeToken(s) {
				return nil, errors.New("scope has characters outside RFC 6749 scope-token")
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// isScopeToken: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) (RFC 6749 §3.3).
func isScopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

// maxActDepth bounds an RFC 8693 act chain.
const maxActDepth = 8

// readActors flattens an RFC 8693 §4.1 act chain, outermost (current) actor
// first. Each act object must name its actor with a non-empty sub.
func readActors(raw []byte) ([]string, error) {
	var actors []string
	for raw != nil {
		if len(actors) == maxActDepth {
			return nil, errors.New("act chain too deep")
		}
		o, err := parseObject(raw)
		if err != nil {
			return nil, errors.New("invalid act claim")
		}
		if err := o.checkRegistered("sub", "act"); err != nil {
			return nil, errors.New("invalid act claim")
		}
		sv, ok := o.get("sub")
		sub, isStr := jsonString(sv)
		if !ok || !isStr || sub == "" {
			return nil, errors.New("act claim without sub")
		}
		actors = append(actors, sub)
		raw, _ = o.get("act")
	}
	return actors, nil
}

// typeAccepted applies RFC 9068 §4 (typ "at+jwt", compared as a media type:
// case-insensitive, "application/" optional per RFC 7515 §4.1.9). With
// legacy, "JWT" or an absent typ is also accepted.
func typeAccepted(h *jose, legacy bool) bool {
	if !h.hasTyp {
		return legacy
	}
	t := h.typ
	if len(t) > len("application/") && strings.EqualFold(t[:len("application/")], "application/") {
		t = t[len("application/"):]
	}
	return strings.EqualFold(t, "at+jwt") || legacy && strings.EqualFold(t, "jwt")
}

// audienceMatches reports whether aud contains resource, tolerating only a
// trailing-slash difference, or exactly one of the extra audiences.
func audienceMatches(aud []string, resource string, extra []string) bool {
	r := strings.TrimSuffix(resource, "/")
	for _, a := range aud {
		if resource != "" && (a == resource || a != "" && strings.TrimSuffix(a, "/") == r) {
			return true
		}
		if a != "" && slices.Contains(extra, a) {
			return true
		}
	}
	return false
}
