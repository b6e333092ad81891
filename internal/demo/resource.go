package demo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/mcpgate/mcpgate/internal/gateway"
)

// docsGuard makes the demo's docs server a real resource server of the
// tokens mcpgate mints for it: it verifies each request's bearer token
// against mcpgate's published JWKS, its issuer and its own audience, and
// remembers the last token it accepted so the story can show it.
type docsGuard struct {
	gateway  string // mcpgate's base URL: the issuer and the JWKS host
	audience string // the docs upstream's own URL

	mu     sync.Mutex // guards the fields below
	token  string
	claims jwt.MapClaims
	seen   []string // every token received, to prove the agent's never was
}

func (d *docsGuard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		d.mu.Lock()
		d.seen = append(d.seen, r.Header.Get("Authorization"))
		d.mu.Unlock()
		if !ok {
			http.Error(w, "no bearer token", http.StatusUnauthorized)
			return
		}
		claims, err := d.verify(r.Context(), tok)
		if err != nil {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		d.mu.Lock()
		d.token, d.claims = tok, claims
		d.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (d *docsGuard) verify(ctx context.Context, tok string) (jwt.MapClaims, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.gateway+gateway.JWKSPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, err
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		if t.Header["typ"] != "at+jwt" {
			return nil, errors.New("typ is not at+jwt")
		}
		kid, _ := t.Header["kid"].(string)
		if keys := set.Key(kid); len(keys) == 1 {
			return keys[0].Key, nil
		}
		return nil, fmt.Errorf("unknown key id %q", kid)
	}, jwt.WithValidMethods([]string{"ES256", "EdDSA"}), jwt.WithIssuer(d.gateway), jwt.WithAudience(d.audience), jwt.WithExpirationRequired())
	return claims, err
}

// last returns the last token the docs server accepted, its claims and
// every Authorization header it received.
func (d *docsGuard) last() (string, jwt.MapClaims, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.token, d.claims, append([]string(nil), d.seen...)
}

// plantedKey is a credential-shaped value (an AWS access key id) planted in
// a document, made at run time: the repository holds no such string.
func plantedKey() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "AK" + "IA" + string(b)
}
