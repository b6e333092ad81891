package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// tokenLifetime is the life of the access tokens the issuer mints.
const tokenLifetime = time.Hour

// issuer is the harness's authorization server: an ES256 key generated at
// start, RFC 8414 and OpenID metadata, and the JWKS. It mints access
// tokens directly (no OAuth flow: the benchmark measures resource
// servers, not token acquisition).
type issuer struct {
	url string
	kid string
	key *ecdsa.PrivateKey
	srv *http.Server

	mu     sync.Mutex
	tokens map[string]minted // by audience
}

type minted struct {
	token string
	exp   time.Time
}

// startIssuer generates a key and serves the metadata and JWKS on a
// loopback port until ctx ends or close is called.
func startIssuer() (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("issuer key: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("issuer listen: %w", err)
	}
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("issuer key: %w", err)
	}
	kidSum := sha256.Sum256(pub)
	iss := &issuer{
		url:    "http://" + l.Addr().String(),
		kid:    "bench-" + hex.EncodeToString(kidSum[:6]),
		key:    key,
		tokens: map[string]minted{},
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &key.PublicKey, KeyID: iss.kid, Algorithm: "ES256", Use: "sig",
	}}})
	if err != nil {
		return nil, fmt.Errorf("issuer jwks: %w", err)
	}
	meta, err := json.Marshal(map[string]any{
		"issuer":                                iss.url,
		"jwks_uri":                              iss.url + "/jwks.json",
		"authorization_endpoint":                iss.url + "/authorize",
		"token_endpoint":                        iss.url + "/token",
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code", "client_credentials"},
		"code_challenge_methods_supported":      []string{"S256"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"subject_types_supported":               []string{"public"},
	})
	if err != nil {
		return nil, fmt.Errorf("issuer metadata: %w", err)
	}
	serveJSON := func(b []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /.well-known/oauth-authorization-server", serveJSON(meta))
	mux.Handle("GET /.well-known/openid-configuration", serveJSON(meta))
	mux.Handle("GET /jwks.json", serveJSON(jwks))
	iss.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = iss.srv.Serve(l) }()
	return iss, nil
}

func (i *issuer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return i.srv.Shutdown(ctx)
}

// scopes granted by every token the harness mints: what mcpgate-full's
// rules need (ws:bench:read fills the templated scope of search).
const tokenScopes = "bench:read bench:search ws:bench:read"

// token returns an access token for audience (the route's resource URI):
// the one minted before while it has more than 10 minutes to live, a new
// one otherwise, so that a run longer than a token's life never sends an
// expired token (the harness asks between measurements only).
func (i *issuer) token(audience, subject string) (string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	k := audience + "\x00" + subject
	if m, ok := i.tokens[k]; ok && time.Until(m.exp) > 10*time.Minute {
		return m.token, nil
	}
	now := time.Now()
	exp := now.Add(tokenLifetime)
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("mint: %w", err)
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss":       i.url,
		"sub":       subject,
		"client_id": "bench-agent",
		"aud":       audience,
		"scope":     tokenScopes,
		"iat":       now.Unix(),
		"exp":       exp.Unix(),
		"jti":       hex.EncodeToString(jti),
	})
	t.Header["typ"] = "at+jwt"
	t.Header["kid"] = i.kid
	s, err := t.SignedString(i.key)
	if err != nil {
		return "", fmt.Errorf("mint: %w", err)
	}
	i.tokens[k] = minted{token: s, exp: exp}
	return s, nil
}

// tokenID identifies a token in logs without revealing it.
func tokenID(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:8])
}

// errNoKey is returned by the SDK target's key lookup for an unknown kid.
var errNoKey = errors.New("no key with this kid in the JWKS")
