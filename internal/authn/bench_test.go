package authn

import (
	"context"
	"crypto/sha256"
	"testing"

	ti "github.com/mcpgate/mcpgate/internal/testissuer"
)

// BenchmarkAuthenticateCached is the hot path: a token seen before.
func BenchmarkAuthenticateCached(b *testing.B) {
	e := newEnv(b, envOpts{})
	tok := e.mint()
	r := Request{Header: bearer(tok), Resource: resource, Issuers: []string{e.iss.URL()}}
	ctx := context.Background()
	if _, err := e.a.Authenticate(ctx, r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.a.Authenticate(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is the uncached path with keys loaded: parse, checks and
// one signature verification per iteration.
func BenchmarkVerify(b *testing.B) {
	algs := []string{"RS256", "PS256", "ES256", "EdDSA"}
	e := newEnv(b, envOpts{cfg: func(c *IssuerConfig) { c.Algorithms = algs }})
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			tok := e.mint(ti.WithAlg(alg))
			sum := sha256.Sum256([]byte(tok))
			r := Request{Header: bearer(tok), Resource: resource}
			ctx := context.Background()
			if _, err := e.a.Authenticate(ctx, r); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				e.a.cache.remove(sum)
				if _, err := e.a.Authenticate(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCachedPathAllocs guards the hot path's allocation budget (the one
// allocation is the token copy hashed for the cache key).
func TestCachedPathAllocs(t *testing.T) {
	e := newEnv(t, envOpts{})
	r := Request{Header: bearer(e.mint()), Resource: resource}
	ctx := context.Background()
	if _, err := e.a.Authenticate(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = e.a.Authenticate(ctx, r) }); n > 2 {
		t.Fatalf("cached Authenticate: %v allocs, want at most 2", n)
	}
}
