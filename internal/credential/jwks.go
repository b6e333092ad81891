package credential

import (
	"bytes"
	"net/http"
	"strconv"
)

// JWKSPath is where mcpgate publishes its verification keys.
const JWKSPath = "/.well-known/jwks.json"

// jwksMaxAge is the Cache-Control max-age of the JWKS, in seconds. The
// publication overlap of generated keys is at least as long, so a
// verifier's cached copy has a key before it signs.
const jwksMaxAge = 300

// JWKS returns the JSON Web Key Set (RFC 7517 §5) of every published key,
// the signing key first: {"keys":[{kty, crv, x, y, kid, alg, use}]}.
// It holds public parts only. It fails when a key file cannot be used:
// publishing a partial set would make verifiers reject valid tokens.
func (ks *KeySet) JWKS() ([]byte, error) {
	keys, err := ks.published()
	if err != nil {
		return nil, err
	}
	n := len(`{"keys":[]}`)
	for _, k := range keys {
		n += len(k.jwk) + 1
	}
	b := bytes.NewBuffer(make([]byte, 0, n))
	b.WriteString(`{"keys":[`)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(k.jwk)
	}
	b.WriteString(`]}`)
	return b.Bytes(), nil
}

// Handler serves the JWKS at JWKSPath: GET and HEAD, as application/json
// (rather than application/jwk-set+json, which some clients refuse),
// cacheable for five minutes; 405 for other methods, 503 when a key file
// cannot be used (the cause is logged, not sent).
func (ks *KeySet) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := ks.JWKS()
		if err != nil {
			ks.log.Error("mint: cannot publish the signing keys", "error", err)
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Retry-After", "10")
			http.Error(w, "signing keys unavailable", http.StatusServiceUnavailable)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age="+strconv.Itoa(jwksMaxAge))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})
}
