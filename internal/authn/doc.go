// Package authn is stage 2 of the mcpgate pipeline: it turns the bearer
// token of a request into an Identity, or into an *Error that says exactly
// which 400, 401 or 503 to send.
//
// JWT access tokens (RFC 9068) are validated per the JWT BCP (RFC 8725),
// cheap checks first so that a token failing them costs no network call:
// size cap; JWS compact form with strict unpadded base64url; JOSE header
// with the algorithm pinned per issuer (never none or HS*), typ at+jwt
// (legacy JWT only where allowed), crit refused, jku/x5u/jwk/x5c never
// read; header and claims decoded with exact, case-sensitive member names
// and duplicates refused; iss exact and trusted on the route; exp required;
// nbf and iat within the clock skew; aud containing the route's resource;
// sub present. Only then is a key chosen, by kid, from the issuer's JWKS,
// and the signature verified with golang-jwt's verifier for that one
// algorithm. Opaque tokens are validated by RFC 7662 introspection at the
// issuers that enable it, the answer checked like a JWT's claims.
//
// Valid tokens are cached by the SHA-256 of the token (LRU, and never past
// exp or, for introspection, CacheTTL), so a repeated request does no
// signature work and no network call; a hit still rechecks expiry, the
// route's resource and trusted issuers, and that the verifying key is still
// published and fresh.
//
// The package also renders Bearer challenges (RFC 6750 §3, RFC 9728 §5.1)
// and serves Protected Resource Metadata (RFC 9728).
//
// Why not MicahParks/keyfunc (recommended for JWKS in deps.md): the JWKS
// cache here must (1) fail closed once keys are older than MaxStale, where
// keyfunc keeps serving the last set forever; (2) fetch only through the
// SSRF-guarded egress client, with discovery (RFC 8414/OIDC) in front;
// (3) share one unknown-kid refetch per cooldown among concurrent misses,
// and report it, rather than rate-limit per call; (4) expose per-issuer
// status (key count, age, last error) for readiness and metrics; and (5)
// let the token cache ask whether the key that verified a token is still
// published. Those needs make up most of a JWKS cache, so the cache is
// written here in the go-oidc style (one in-flight refresh, an atomically
// swapped immutable key set), and JWKs are turned into keys with the
// standard library, checking RSA ≥ 2048 bits, EC curve and on-curve point,
// Ed25519 length, use "sig" and the JWK alg.
package authn
