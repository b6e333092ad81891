package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	ti "github.com/mcpgate/mcpgate/internal/testissuer"
)

func TestKeyRotation(t *testing.T) {
	e := newEnv(t, envOpts{})
	old := e.mint()
	e.mustAuth(old)

	e.iss.Rotate()
	rotated := e.mint()
	// Within the cooldown of the first (on-demand) fetch the new kid is
	// unknown and nothing is fetched ...
	_, err := e.auth(rotated)
	wantReject(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonUnknownKey, rotated)
	if n := e.iss.JWKSFetches(); n != 1 {
		t.Fatalf("%d fetches within cooldown", n)
	}
	// ... after it, the unknown kid triggers one refetch that finds it.
	e.clk.Advance(DefaultUnknownKIDCooldown)
	e.mustAuth(rotated)
	e.mustAuth(old) // still published
	if n := e.iss.JWKSFetches(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}

	// Once the old key is withdrawn and the set refetched, a token it
	// signed fails even though it is cached.
	e.iss.DropRetiredKeys()
	e.clk.Advance(DefaultUnknownKIDCooldown)
	_, _ = e.auth(e.mint(ti.WithKID("trigger-refetch")))
	if n := e.iss.JWKSFetches(); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
	_, err = e.auth(old)
	wantReject(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonUnknownKey, old)
	e.mustAuth(rotated)
}

func TestJWKSOutage(t *testing.T) {
	e := newEnv(t, envOpts{issuer: ti.Options{Lifetime: 3 * time.Hour}})
	cached := e.mint()
	e.mustAuth(cached)
	e.iss.SetJWKSDown(true)

	// Within MaxStale the last good keys keep working, for new tokens too,
	// with no fetch.
	e.clk.Advance(50 * time.Minute)
	fresh := e.mint()
	e.mustAuth(fresh)
	e.mustAuth(cached)
	if n := e.iss.JWKSFetches(); n != 1 {
		t.Fatalf("%d fetches within max-stale", n)
	}

	// Beyond it, requests fail closed with 503, cached tokens included.
	e.clk.Advance(11 * time.Minute)
	later := e.mint()
	for _, tok := range []string{later, e.mint()} {
		_, err := e.auth(tok)
		wantReject(t, err, http.StatusServiceUnavailable, "", ReasonKeysUnavailable, tok)
	}
	if n := e.iss.JWKSFetches(); n != 2 {
		t.Fatalf("%d fetches, want 2 (one attempt, then cooldown)", n)
	}
	if e.a.Ready() {
		t.Fatal("ready beyond max-stale")
	}
	st := e.a.Status()[0]
	if st.LastError == nil || st.Ready || !strings.Contains(st.LastError.Error(), "503") {
		t.Fatalf("status %+v", st)
	}

	// Recovery: the next on-demand fetch after the cooldown succeeds.
	e.iss.SetJWKSDown(false)
	e.clk.Advance(DefaultUnknownKIDCooldown)
	e.mustAuth(later)
	e.mustAuth(cached)
	if !e.a.Ready() || e.a.Status()[0].LastError != nil {
		t.Fatalf("not recovered: %+v", e.a.Status()[0])
	}
	if !strings.Contains(e.logs.String(), "refresh keys") {
		t.Fatal("outage not logged")
	}
	for _, tok := range []string{cached, fresh, later} {
		noTokenBytes(t, tok, e.logs.String())
	}
}

// TestUnknownKIDFlood: 200 concurrent requests with random kids make at
// most one JWKS fetch per cooldown.
func TestUnknownKIDFlood(t *testing.T) {
	e := newEnv(t, envOpts{})
	valid := e.mint()
	e.mustAuth(valid)
	parts := strings.Split(valid, ".")

	flood := func() {
		t.Helper()
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, 200)
		for i := range 200 {
			hdr := fmt.Sprintf(`{"alg":"RS256","typ":"at+jwt","kid":"random-%d"}`, i)
			tok := base64.RawURLEncoding.EncodeToString([]byte(hdr)) + "." + parts[1] + "." + parts[2]
			wg.Go(func() {
				<-start
				_, err := e.auth(tok)
				errs <- err
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			wantReject(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonUnknownKey, "")
		}
	}
	before := e.iss.JWKSFetches()
	flood() // within the cooldown of the initial fetch: no fetch at all
	if n := e.iss.JWKSFetches() - before; n != 0 {
		t.Fatalf("flood within cooldown made %d fetches", n)
	}
	for round := range 3 {
		e.clk.Advance(DefaultUnknownKIDCooldown)
		before := e.iss.JWKSFetches()
		flood()
		if n := e.iss.JWKSFetches() - before; n > 1 {
			t.Fatalf("round %d: flood made %d fetches, want at most 1", round, n)
		}
	}
	e.mustAuth(valid)
}

func TestRunReadyStatus(t *testing.T) {
	e := newEnv(t, envOpts{cfg: func(c *IssuerConfig) { c.RefreshInterval = time.Millisecond }})
	if e.a.Ready() {
		t.Fatal("ready before any fetch")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.a.Run(ctx); close(done) }()
	// A second fetch starts only after the first refresh completed.
	e.iss.WaitJWKSFetches(2)
	if !e.a.Ready() {
		t.Fatal("not ready after a background refresh")
	}
	cancel()
	<-done
	st := e.a.Status()
	if len(st) != 1 || st[0].KeyCount != 5 || st[0].LastError != nil || st[0].LastSuccess.IsZero() ||
		st[0].JWKSURI != e.iss.JWKSURL() || st[0].Issuer != e.iss.URL() {
		t.Fatalf("status %+v", st)
	}
	// The background refresh fetched keys: the first token needs no fetch.
	n := e.iss.JWKSFetches()
	e.mustAuth(e.mint())
	if e.iss.JWKSFetches() != n {
		t.Fatal("token after Run fetched keys again")
	}
}

func TestRunRetriesFailures(t *testing.T) {
	e := newEnv(t, envOpts{
		issuer: ti.Options{MetadataIssuer: "https://evil.example.com"},
		cfg:    func(c *IssuerConfig) { c.RefreshInterval = time.Millisecond }, // caps the backoff
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { e.a.Run(ctx); close(done) }()
	// The metadata never matches: Run keeps trying discovery, and never
	// fetches the JWKS.
	e.iss.WaitMetadataRequests(6) // two full discovery attempts
	cancel()
	<-done
	if e.iss.JWKSFetches() != 0 || e.a.Ready() {
		t.Fatal("mismatched metadata was used")
	}
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestParseJWK(t *testing.T) {
	// RSA material from a test issuer's JWKS (RSA key generation is slow
	// under -race).
	var doc struct{ Keys []map[string]any }
	if err := json.Unmarshal(ti.New(t, ti.Options{}).JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	var n, e string
	for _, k := range doc.Keys {
		if k["kty"] == "RSA" {
			n, e = k["n"].(string), k["e"].(string)
		}
	}
	nb, _ := base64.RawURLEncoding.DecodeString(n)
	small := b64u(new(big.Int).Rsh(new(big.Int).SetBytes(nb), 1100).Bytes()) // < 2048 bits
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	raw, _ := ec.PublicKey.Bytes()
	x, y := b64u(raw[1:33]), b64u(raw[33:])
	offCurve := b64u(append([]byte{raw[33] ^ 1}, raw[34:]...))
	for _, tt := range []struct {
		name string
		jwk  string
		ok   bool
	}{
		{"rsa", `{"kty":"RSA","kid":"r","n":"` + n + `","e":"` + e + `"}`, true},
		{"rsa use sig alg RS256", `{"kty":"RSA","use":"sig","alg":"RS256","n":"` + n + `","e":"` + e + `"}`, true},
		{"rsa use enc", `{"kty":"RSA","use":"enc","n":"` + n + `","e":"` + e + `"}`, false},
		{"rsa key_ops sign only", `{"kty":"RSA","key_ops":["sign"],"n":"` + n + `","e":"` + e + `"}`, false},
		{"rsa key_ops verify", `{"kty":"RSA","key_ops":["verify"],"n":"` + n + `","e":"` + e + `"}`, true},
		{"rsa too small", `{"kty":"RSA","n":"` + small + `","e":"` + e + `"}`, false},
		{"rsa even exponent", `{"kty":"RSA","n":"` + n + `","e":"AAI"}`, false},
		{"rsa exponent 1", `{"kty":"RSA","n":"` + n + `","e":"AQ"}`, false},
		{"rsa padded base64", `{"kty":"RSA","n":"` + n + `=","e":"` + e + `"}`, false},
		{"rsa with EC alg", `{"kty":"RSA","alg":"ES256","n":"` + n + `","e":"` + e + `"}`, false},
		{"rsa with HS256 alg", `{"kty":"RSA","alg":"HS256","n":"` + n + `","e":"` + e + `"}`, false},
		{"ec", `{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y + `"}`, true},
		{"ec off curve", `{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + offCurve + `"}`, false},
		{"ec wrong curve name", `{"kty":"EC","crv":"P-384","x":"` + x + `","y":"` + y + `"}`, false},
		{"ec secp256k1", `{"kty":"EC","crv":"secp256k1","x":"` + x + `","y":"` + y + `"}`, false},
		{"ec alg mismatch", `{"kty":"EC","crv":"P-256","alg":"ES384","x":"` + x + `","y":"` + y + `"}`, false},
		{"ed25519", `{"kty":"OKP","crv":"Ed25519","x":"` + b64u(make([]byte, 32)) + `"}`, true},
		{"ed25519 short", `{"kty":"OKP","crv":"Ed25519","x":"` + b64u(make([]byte, 31)) + `"}`, false},
		{"x25519", `{"kty":"OKP","crv":"X25519","x":"` + b64u(make([]byte, 32)) + `"}`, false},
		{"oct", `{"kty":"oct","k":"c2VjcmV0"}`, false},
		{"duplicate kty", `{"kty":"RSA","kty":"oct","n":"` + n + `","e":"` + e + `"}`, false},
		{"kid not a string", `{"kty":"RSA","kid":1,"n":"` + n + `","e":"` + e + `"}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseJWK([]byte(tt.jwk))
			if (err == nil) != tt.ok {
				t.Fatalf("parseJWK err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestParseJWKS(t *testing.T) {
	for _, tt := range []struct {
		name, doc string
	}{
		{"not json", `{`},
		{"no keys", `{}`},
		{"keys not array", `{"keys":{}}`},
		{"no usable key", `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`},
		{"too many keys", `{"keys":[` + strings.Repeat(`{},`, maxJWKSKeys) + `{}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := parseJWKS([]byte(tt.doc), nil); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestJWKSBadDocumentKeepsKeys: a fetch that returns garbage is a failed
// fetch; the last good keys stay in use.
func TestJWKSBadDocumentKeepsKeys(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.mustAuth(e.mint())
	e.iss.SetJWKSBody([]byte(`{"keys":[]}`))
	e.clk.Advance(DefaultUnknownKIDCooldown)
	tok := e.mint(ti.WithKID("unknown"))
	_, err := e.auth(tok)
	wantReject(t, err, http.StatusServiceUnavailable, "", ReasonKeysUnavailable, tok)
	e.mustAuth(e.mint())
	if st := e.a.Status()[0]; st.KeyCount != 5 || st.LastError == nil {
		t.Fatalf("status %+v", st)
	}
}
