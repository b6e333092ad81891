// This file implements JWT access tokens per RFC 9068 (header typ at+jwt).
// See https://www.rfc-editor.org/rfc/rfc9068.
//
// zitadel's op package signs its own JWT access tokens with typ "JWT"
// (op/signer.go hard-codes it). Rather than re-signing its output, clients
// are given the op "bearer" access-token type, whose token op obtains from
// the provider's Crypto.Encrypt("<token id>:<subject>"); tokenCrypto is that
// Crypto. It mints the at+jwt from the token record the storage has just
// created, so each token is signed once, with claims the storage controls,
// and the ID token's at_hash covers the token actually issued. op hands
// presented tokens back to Decrypt (introspection, revocation, userinfo,
// token exchange), which verifies them the same way. op also asks Crypto to
// "encrypt" an authorization request id into a code: that yields a random
// code, bound to the request by SaveAuthCode.

package devauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// accessTokenType is the JWT header typ of access tokens (RFC 9068 §2.1).
const accessTokenType = "at+jwt"

// Prefixes of the ids the storage hands op; tokenCrypto tells them apart.
const (
	authRequestPrefix  = "ar_"
	accessTokenPrefix  = "at_"
	refreshTokenPrefix = "rt_"
)

// errNotOurToken is what Decrypt returns for anything it did not issue.
var errNotOurToken = errors.New("not an access token issued by this server")

// signingKey is the server's ES256 key, generated at startup. It serves as
// op.SigningKey (ID tokens) and op.Key (the JWKS).
type signingKey struct {
	id   string
	priv *ecdsa.PrivateKey
}

var (
	_ op.SigningKey = (*signingKey)(nil)
	_ op.Key        = publicKey{}
)

func newSigningKey() (*signingKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return &signingKey{id: rand.Text()[:16], priv: priv}, nil
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k *signingKey) Key() any                                    { return k.priv }
func (k *signingKey) ID() string                                  { return k.id }

// publicKey is the JWKS entry of a signingKey.
type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.priv.PublicKey }

// accessClaims are the RFC 9068 §2.2 claims of an access token.
type accessClaims struct {
	Issuer   string      `json:"iss"`
	Subject  string      `json:"sub"`
	Audience string      `json:"aud"`
	Expiry   int64       `json:"exp"`
	IssuedAt int64       `json:"iat"`
	JWTID    string      `json:"jti"`
	ClientID string      `json:"client_id"`
	Scope    string      `json:"scope,omitempty"`
	AuthTime int64       `json:"auth_time,omitempty"`
	Actor    *actorClaim `json:"act,omitempty"`
}

// actorClaim is the RFC 8693 §4.1 act claim: the current actor, with the
// prior actors nested inside.
type actorClaim struct {
	Subject string      `json:"sub"`
	Actor   *actorClaim `json:"act,omitempty"`
}

// tokenCrypto is the op.Crypto described at the top of this file.
type tokenCrypto struct{ s *Server }

var _ op.Crypto = tokenCrypto{}

// Encrypt mints the access token for "<token id>:<subject>", or a fresh
// authorization code for an authorization request id.
func (c tokenCrypto) Encrypt(in string) (string, error) {
	if strings.HasPrefix(in, authRequestPrefix) {
		return rand.Text() + rand.Text(), nil
	}
	id, _, ok := strings.Cut(in, ":")
	if !ok || !strings.HasPrefix(id, accessTokenPrefix) {
		return "", errors.New("mint access token: unexpected input")
	}
	rec, ok := c.s.store.accessTokenRecord(id)
	if !ok {
		return "", errors.New("mint access token: unknown token id")
	}
	return c.s.signAccessToken(rec)
}

// Decrypt verifies an access token this server issued and returns
// "<jti>:<subject, query-escaped>". The storage never trusts the subject
// part: it looks the token record up by jti.
func (c tokenCrypto) Decrypt(tok string) (string, error) {
	claims, err := c.s.verifyAccessToken(tok)
	if err != nil {
		return "", err
	}
	return claims.JWTID + ":" + url.QueryEscape(claims.Subject), nil
}

// signAccessToken signs rec as an RFC 9068 JWT.
func (s *Server) signAccessToken(rec accessToken) (string, error) {
	claims := accessClaims{
		Issuer:   s.issuer,
		Subject:  rec.subject,
		Audience: rec.audience,
		Expiry:   rec.expiry.Unix(),
		IssuedAt: rec.issuedAt.Unix(),
		JWTID:    rec.id,
		ClientID: rec.clientID,
		Scope:    strings.Join(rec.scopes, " "),
		Actor:    rec.actor,
	}
	if !rec.authTime.IsZero() {
		claims.AuthTime = rec.authTime.Unix()
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("mint access token: %w", err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: &jose.JSONWebKey{Key: s.key.priv, KeyID: s.key.id}},
		(&jose.SignerOptions{}).WithType(accessTokenType),
	)
	if err != nil {
		return "", fmt.Errorf("mint access token: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("mint access token: %w", err)
	}
	return jws.CompactSerialize()
}

// verifyAccessToken checks an access token's header (ES256, our kid, typ
// at+jwt), signature, issuer and expiry. Revocation is the storage's
// business.
func (s *Server) verifyAccessToken(tok string) (*accessClaims, error) {
	if len(tok) > 8192 || strings.Count(tok, ".") != 2 {
		return nil, errNotOurToken
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errNotOurToken
	}
	h := jws.Signatures[0].Protected
	if h.KeyID != s.key.id || h.ExtraHeaders[jose.HeaderType] != accessTokenType || len(h.ExtraHeaders) != 1 {
		return nil, errNotOurToken
	}
	payload, err := jws.Verify(&s.key.priv.PublicKey)
	if err != nil {
		return nil, errNotOurToken
	}
	var claims accessClaims
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, errNotOurToken
	}
	if claims.Issuer != s.issuer || !strings.HasPrefix(claims.JWTID, accessTokenPrefix) {
		return nil, errNotOurToken
	}
	if !s.now().Before(time.Unix(claims.Expiry, 0)) {
		return nil, errors.New("access token expired")
	}
	return &claims, nil
}

// fingerprint identifies a token or secret in logs: the first 16 hex digits
// of its SHA-256.
func fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:8])
}
