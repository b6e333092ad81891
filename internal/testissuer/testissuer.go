// Package testissuer is a small OAuth authorization server for tests: it
// serves RFC 8414 / OpenID discovery metadata, a JWKS and an RFC 7662
// introspection endpoint over HTTP (httptest), and mints access tokens on
// demand, including the malformed and forged ones negative tests need.
//
// It is imported only from _test.go files (mcpgate's authn, gateway,
// end-to-end and conformance tests). Typical use:
//
//	iss := testissuer.New(t, testissuer.Options{})
//	hc, _ := egress.New(iss.EgressConfig())
//	… authn.IssuerConfig{Issuer: iss.URL(), HTTP: hc} …
//	tok := iss.Mint(testissuer.Claims{Subject: "alice", Audience: []string{resource}, Scope: "docs:read"})
//
// Every issuer holds one current key of each family (RSA 2048, P-256,
// P-384, P-521, Ed25519), all published in its JWKS; Rotate adds new
// current keys and keeps the old ones published until DropRetiredKeys.
// Time comes from Options.Now, so tests that use a fake clock in the code
// under test can mint tokens on the same clock.
package testissuer

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/egress"
)

// Endpoints selects which discovery documents the issuer serves.
type Endpoints uint8

const (
	// RFC8414 is /.well-known/oauth-authorization-server{path}.
	RFC8414 Endpoints = 1 << iota
	// OIDCPathInsert is /.well-known/openid-configuration{path}.
	OIDCPathInsert
	// OIDCPathAppend is {path}/.well-known/openid-configuration. For an
	// issuer without path it is the same URL as OIDCPathInsert.
	OIDCPathAppend
	// AllEndpoints serves all three.
	AllEndpoints = RFC8414 | OIDCPathInsert | OIDCPathAppend
)

// IntrospectionMode makes the introspection endpoint misbehave.
type IntrospectionMode int

const (
	// IntrospectionNormal answers per RFC 7662.
	IntrospectionNormal IntrospectionMode = iota
	// IntrospectionError answers 500.
	IntrospectionError
	// IntrospectionHang never answers: it waits until the client gives up.
	IntrospectionHang
)

// Options configures an Issuer. The zero value is a plain-HTTP issuer
// without path that serves every discovery document.
type Options struct {
	// Path is the issuer identifier's path, e.g. "/tenant1". "" → none.
	Path string
	// TLS serves https (httptest.NewTLSServer); see CertPool. Default http.
	TLS bool
	// Metadata selects the discovery documents served. 0 → AllEndpoints.
	Metadata Endpoints
	// MetadataIssuer is the "issuer" the metadata claims. "" → URL(); set
	// it to something else to test issuer-mismatch refusal.
	MetadataIssuer string
	// MetadataExtra is merged into the metadata documents; a nil value
	// removes a member.
	MetadataExtra map[string]any
	// Alg is Mint's default algorithm. "" → RS256.
	Alg string
	// Lifetime is a minted token's default lifetime. 0 → 5m.
	Lifetime time.Duration
	// Now is the clock for minting and introspection. nil → time.Now.
	Now func() time.Time
	// ClientID and ClientSecret are the introspection client credentials
	// (basic or post). "" → "mcpgate-test" and a random secret.
	ClientID, ClientSecret string
	// UniqueRSAKeys generates fresh RSA keys instead of using the shared
	// pool: slow under -race, only for tests that need RSA key material
	// no other issuer in the process has.
	UniqueRSAKeys bool
}

// Issuer is a running test authorization server. Its methods are safe for
// concurrent use.
type Issuer struct {
	t    testing.TB
	opts Options
	srv  *httptest.Server
	url  string
	now  func() time.Time
	quit chan struct{} // closed at cleanup: releases hanging handlers

	mu             sync.Mutex // guards the fields below
	current        map[family]*signingKey
	retired        []*signingKey
	usedPool       map[int]bool
	jwksDown       bool
	jwksBody       []byte // raw JWKS override
	jwksFetches    int
	notify         chan struct{} // closed and replaced on every request
	metaRequests   []string
	introspectN    int
	introspectMode IntrospectionMode
	opaque         map[string]*opaqueToken
}

// New starts an issuer; it is shut down when the test ends.
func New(t testing.TB, opts Options) *Issuer {
	t.Helper()
	if opts.Metadata == 0 {
		opts.Metadata = AllEndpoints
	}
	if opts.Alg == "" {
		opts.Alg = "RS256"
	}
	if opts.Lifetime == 0 {
		opts.Lifetime = 5 * time.Minute
	}
	if opts.ClientID == "" {
		opts.ClientID = "mcpgate-test"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = "s-" + randomHex(16)
	}
	opts.Path = strings.TrimSuffix(opts.Path, "/")
	if opts.Path != "" && !strings.HasPrefix(opts.Path, "/") {
		opts.Path = "/" + opts.Path
	}
	i := &Issuer{
		t: t, opts: opts, now: opts.Now, quit: make(chan struct{}),
		current: map[family]*signingKey{}, usedPool: map[int]bool{},
		notify: make(chan struct{}), opaque: map[string]*opaqueToken{},
	}
	if i.now == nil {
		i.now = time.Now
	}
	for _, f := range families {
		i.current[f] = i.newKeyLocked(f)
	}
	if opts.TLS {
		i.srv = httptest.NewTLSServer(http.HandlerFunc(i.serve))
	} else {
		i.srv = httptest.NewServer(http.HandlerFunc(i.serve))
	}
	i.url = i.srv.URL + opts.Path
	t.Cleanup(func() {
		close(i.quit)
		i.srv.Close()
	})
	return i
}

func (i *Issuer) newKeyLocked(f family) *signingKey {
	k := newKey(f, i.usedPool, i.opts.UniqueRSAKeys)
	if k.pool >= 0 {
		i.usedPool[k.pool] = true
	}
	return k
}

// URL is the issuer identifier.
func (i *Issuer) URL() string { return i.url }

// JWKSURL is the jwks_uri.
func (i *Issuer) JWKSURL() string { return i.url + "/jwks" }

// IntrospectionURL is the introspection_endpoint.
func (i *Issuer) IntrospectionURL() string { return i.url + "/introspect" }

// ClientID and ClientSecret are the introspection client credentials.
func (i *Issuer) ClientID() string { return i.opts.ClientID }

// ClientSecret returns a copy of the introspection client secret.
func (i *Issuer) ClientSecret() []byte { return []byte(i.opts.ClientSecret) }

// CertPool trusts the issuer's certificate; nil without Options.TLS.
func (i *Issuer) CertPool() *x509.CertPool {
	if !i.opts.TLS {
		return nil
	}
	p := x509.NewCertPool()
	p.AddCert(i.srv.Certificate())
	return p
}

// EgressConfig is an egress configuration that reaches this issuer
// (loopback allowed, its certificate trusted).
func (i *Issuer) EgressConfig() egress.Config {
	return egress.Config{AllowHTTPLoopback: true, RootCAs: i.CertPool()}
}

// KID is the current kid of the key that signs alg.
func (i *Issuer) KID(alg string) string {
	i.mu.Lock()
	defer i.mu.Unlock()
	k := i.current[familyOf(alg)]
	if k == nil {
		i.t.Fatalf("testissuer: no key for alg %q", alg)
	}
	return k.kid
}

// Rotate makes new current keys (new kids); the old ones stay published.
func (i *Issuer) Rotate() {
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, f := range families {
		i.retired = append(i.retired, i.current[f])
		i.current[f] = i.newKeyLocked(f)
	}
}

// DropRetiredKeys stops publishing the keys replaced by Rotate.
func (i *Issuer) DropRetiredKeys() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.retired = nil
}

// SetJWKSDown makes the JWKS endpoint answer 503 (an outage) or recover.
func (i *Issuer) SetJWKSDown(down bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.jwksDown = down
}

// SetJWKSBody makes the JWKS endpoint serve body verbatim; nil restores
// the real key set.
func (i *Issuer) SetJWKSBody(body []byte) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.jwksBody = body
}

// JWKSFetches counts requests to the JWKS endpoint, failed ones included.
func (i *Issuer) JWKSFetches() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.jwksFetches
}

// WaitJWKSFetches blocks until JWKSFetches() >= n, failing the test after
// 10 seconds. It waits on a notification, not by polling.
func (i *Issuer) WaitJWKSFetches(n int) {
	i.t.Helper()
	i.waitFor(func() bool { return i.jwksFetches >= n }, fmt.Sprintf("%d JWKS fetches", n))
}

// WaitMetadataRequests blocks until len(MetadataRequests()) >= n, failing
// the test after 10 seconds.
func (i *Issuer) WaitMetadataRequests(n int) {
	i.t.Helper()
	i.waitFor(func() bool { return len(i.metaRequests) >= n }, fmt.Sprintf("%d metadata requests", n))
}

// waitFor waits until cond (called with i.mu held) holds.
func (i *Issuer) waitFor(cond func() bool, what string) {
	i.t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		i.mu.Lock()
		ok, ch := cond(), i.notify
		i.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			i.t.Fatalf("testissuer: timed out waiting for %s", what)
		}
	}
}

// noteLocked wakes waiters; i.mu must be held.
func (i *Issuer) noteLocked() {
	close(i.notify)
	i.notify = make(chan struct{})
}

// MetadataRequests lists the discovery paths requested, in order (served
// or not).
func (i *Issuer) MetadataRequests() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]string(nil), i.metaRequests...)
}

// SetIntrospectionMode makes the introspection endpoint fail or hang.
func (i *Issuer) SetIntrospectionMode(m IntrospectionMode) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.introspectMode = m
}

// IntrospectionRequests counts requests to the introspection endpoint.
func (i *Issuer) IntrospectionRequests() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.introspectN
}
