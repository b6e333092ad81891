package credential

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// xsShared is a SharedCache in memory (as Redis would be, but without
// expiring anything, so that the Exchange's own checks are what tests
// see), counting calls, with injectable failures.
type xsShared struct {
	mu      sync.Mutex
	entries map[[32]byte]xsEntry
	gets    atomic.Int64
	puts    atomic.Int64
	getErr  atomic.Pointer[error]
	putErr  atomic.Pointer[error]
	hang    atomic.Bool // Get and Put block until their context ends
	getKeys [][32]byte
}

type xsEntry struct {
	cred       Credential
	validUntil time.Time
}

func xsNewShared() *xsShared { return &xsShared{entries: map[[32]byte]xsEntry{}} }

func (s *xsShared) Get(ctx context.Context, key [32]byte) (Credential, time.Time, bool, error) {
	s.gets.Add(1)
	s.mu.Lock()
	s.getKeys = append(s.getKeys, key)
	s.mu.Unlock()
	if s.hang.Load() {
		<-ctx.Done()
		return Credential{}, time.Time{}, false, ctx.Err()
	}
	if e := s.getErr.Load(); e != nil {
		return Credential{}, time.Time{}, false, *e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	return e.cred, e.validUntil, ok, nil
}

func (s *xsShared) Put(ctx context.Context, key [32]byte, cred Credential, validUntil time.Time) error {
	s.puts.Add(1)
	if s.hang.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	if e := s.putErr.Load(); e != nil {
		return *e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries[key] = xsEntry{cred: cred, validUntil: validUntil}
	return nil
}

func (s *xsShared) entry(key [32]byte) (xsEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	return e, ok
}

func (s *xsShared) set(key [32]byte, e xsEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries[key] = e
}

func (s *xsShared) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

func xsErr(err error) *error { return &err }

// TestExchangeSharedReplicas: replica B serves, without a request, the
// token replica A obtained, and keeps it in memory; concurrent calls on
// B share one lookup; each user still gets their own token.
func TestExchangeSharedReplicas(t *testing.T) {
	as := xcNewAS(t)
	shared := xsNewShared()
	logs := &xcLogs{}
	replica := func() *Exchange {
		return xcNewExchange(t, as.endpoint(t, nil), func(c *ExchangeConfig) {
			c.Scopes = []string{"docs:read"}
			c.Shared = shared
			c.Logger = logs.Logger()
		})
	}
	a, b := replica(), replica()
	alice := as.userToken(t, xcAlice, "docs:read")
	bob := as.userToken(t, xcBob, "docs:read")

	ca, err := a.Credential(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if as.posts.Load() != 1 || shared.puts.Load() != 1 || shared.gets.Load() != 1 {
		t.Fatalf("replica A: %d requests, %d puts, %d gets", as.posts.Load(), shared.puts.Load(), shared.gets.Load())
	}
	e, ok := shared.entry(a.sharedKey(a.cacheKey(alice)))
	if !ok || e.cred != ca {
		t.Fatalf("replica A did not share its token under its cache key")
	}
	if e.validUntil.After(ca.Expiry) || e.validUntil.After(alice.Expiry) || !e.validUntil.After(time.Now()) {
		t.Errorf("shared until %v; token expires %v, caller %v", e.validUntil, ca.Expiry, alice.Expiry)
	}

	// Replica B: 20 concurrent calls, one shared lookup, no request.
	const n = 20
	got := make([]Credential, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			got[i], errs[i] = b.Credential(context.Background(), alice)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i] != ca {
			t.Fatalf("replica B call %d: %v, same token %v", i, errs[i], got[i] == ca)
		}
	}
	if as.posts.Load() != 1 {
		t.Errorf("replica B made %d token requests for a shared token", as.posts.Load()-1)
	}
	if shared.gets.Load() != 2 || shared.puts.Load() != 1 {
		t.Errorf("replica B: %d shared lookups for %d concurrent calls (want 1), %d puts (want none)", shared.gets.Load()-1, n, shared.puts.Load()-1)
	}
	if b.Len() != 1 {
		t.Errorf("replica B keeps %d tokens in memory, want 1", b.Len())
	}
	// Now from B's memory: no more lookups.
	if c, err := b.Credential(context.Background(), alice); err != nil || c != ca || shared.gets.Load() != 2 {
		t.Errorf("memory hit: %v, same %v, %d lookups", err, c == ca, shared.gets.Load())
	}

	// Bob on B: his own exchange; A then serves Bob's from the cache.
	cb, err := b.Credential(context.Background(), bob)
	if err != nil || cb.Secret == ca.Secret || xcClaims(t, cb.Secret)["sub"] != xcBob || as.posts.Load() != 2 {
		t.Fatalf("bob on B: %v, %d requests", err, as.posts.Load())
	}
	if c, err := a.Credential(context.Background(), bob); err != nil || c != cb || as.posts.Load() != 2 {
		t.Errorf("bob on A: %v, same %v, %d requests", err, c == cb, as.posts.Load())
	}
	for _, leak := range []string{alice.Token, bob.Token, ca.Secret, cb.Secret} {
		if strings.Contains(logs.String(), leak) {
			t.Errorf("a token (%.8s…) is in the logs", leak)
		}
	}
	if !strings.Contains(logs.String(), "from the shared cache") || !strings.Contains(logs.String(), "token_id="+ca.ID) {
		t.Errorf("the shared hit is not logged by token hash: %s", logs.String())
	}
}

// TestExchangeSharedDegrades: a shared cache that fails, hangs or holds
// garbage is a miss: the exchange happens and succeeds, nothing stale
// is served, and the logs hold no token.
func TestExchangeSharedDegrades(t *testing.T) {
	f := xcNewFakeAS(t, xcIssue(600))
	secret := xcSecret()
	caller := func() Caller {
		return Caller{Token: xcFakeToken(), Issuer: "https://idp.test", Subject: "u-" + xcFakeToken()[3:11], ClientID: "app",
			Expiry: time.Now().Add(time.Hour)}
	}
	for _, tt := range []struct {
		name  string
		setup func(s *xsShared, key [32]byte)
		slow  bool
	}{
		{name: "get and put fail", setup: func(s *xsShared, _ [32]byte) {
			s.getErr.Store(xsErr(errors.New("redis unavailable: connection refused")))
			s.putErr.Store(xsErr(errors.New("redis unavailable: connection refused")))
		}},
		{name: "get fails", setup: func(s *xsShared, _ [32]byte) {
			s.getErr.Store(xsErr(errors.New("redis unavailable: i/o timeout")))
		}},
		{name: "put fails", setup: func(s *xsShared, _ [32]byte) {
			s.putErr.Store(xsErr(errors.New("redis unavailable: i/o timeout")))
		}},
		{name: "hangs", slow: true, setup: func(s *xsShared, _ [32]byte) { s.hang.Store(true) }},
		{name: "malformed entry", setup: func(s *xsShared, key [32]byte) {
			tok := xcFakeToken()
			s.set(key, xsEntry{cred: Credential{Header: "Authorization", Value: "Bearer " + tok, Secret: tok, ID: "not-its-hash",
				Expiry: time.Now().Add(time.Hour)}, validUntil: time.Now().Add(time.Hour)})
		}},
		{name: "entry without expiry", setup: func(s *xsShared, key [32]byte) {
			tok := xcFakeToken()
			s.set(key, xsEntry{cred: Credential{Header: "Authorization", Value: "Bearer " + tok, Secret: tok, ID: shortHash(tok)},
				validUntil: time.Now().Add(time.Hour)})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			shared := xsNewShared()
			logs := &xcLogs{}
			x := xcNewExchange(t, f.endpoint(t, secret, nil), func(c *ExchangeConfig) { c.Shared = shared; c.Logger = logs.Logger() })
			c := caller()
			tt.setup(shared, x.sharedKey(x.cacheKey(c)))
			old, _ := shared.entry(x.sharedKey(x.cacheKey(c)))
			before := f.hits.Load()
			began := time.Now()
			cred, err := x.Credential(context.Background(), c)
			took := time.Since(began)
			if err != nil || cred.Secret == "" {
				t.Fatalf("exchange with a degraded shared cache: %v", err)
			}
			if f.hits.Load() != before+1 {
				t.Errorf("%d token requests, want 1", f.hits.Load()-before)
			}
			if old.cred.Secret != "" && cred.Secret == old.cred.Secret {
				t.Error("a rejected shared entry was served")
			}
			limit := time.Second
			if tt.slow {
				// One lookup and one put, each cut at SharedCacheTimeout.
				limit = 2*SharedCacheTimeout + time.Second
				if took < 2*SharedCacheTimeout {
					t.Errorf("took %v: the hanging cache was not waited for at all", took)
				}
			}
			if took > limit {
				t.Errorf("took %v, want under %v", took, limit)
			}
			// Served from memory next time, whatever the shared cache does.
			if again, err := x.Credential(context.Background(), c); err != nil || again != cred || f.hits.Load() != before+1 {
				t.Errorf("second call: %v, same %v", err, again == cred)
			}
			for _, leak := range []string{c.Token, cred.Secret, old.cred.Secret, secret} {
				if leak != "" && strings.Contains(logs.String(), leak) {
					t.Errorf("a token or secret (%.8s…) is in the logs", leak)
				}
			}
			if !strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("the degradation is not logged: %s", logs.String())
			}
		})
	}
}

// TestExchangeSharedExpiry: a shared entry is not served at or after its
// validUntil, its token's expiry, or (kept in memory) the caller's
// token expiry.
func TestExchangeSharedExpiry(t *testing.T) {
	f := xcNewFakeAS(t, xcIssue(600))
	clock := xcNewClock()
	shared := xsNewShared()
	ep := f.endpoint(t, xcSecret(), nil)
	mod := func(c *ExchangeConfig) { c.Shared = shared; c.Now = clock.Now }
	a, b := xcNewExchange(t, ep, mod), xcNewExchange(t, ep, mod)
	t0 := clock.Now()
	user := Caller{Token: xcFakeToken(), Issuer: "i", Subject: "u", ClientID: "c", Expiry: t0.Add(time.Hour)}
	local := a.cacheKey(user)
	key := a.sharedKey(local)

	ca, err := a.Credential(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := shared.entry(key)
	if want := t0.Add(570 * time.Second); !e.validUntil.Equal(want) {
		t.Fatalf("shared until %v, want %v (expiry minus the margin)", e.validUntil, want)
	}

	// B, with a caller token expiring sooner: served, but kept only
	// until that caller's expiry.
	short := user
	short.Token, short.Expiry = xcFakeToken(), t0.Add(time.Minute)
	if c, err := b.Credential(context.Background(), short); err != nil || c != ca || f.hits.Load() != 1 {
		t.Fatalf("B: %v, same %v, %d requests", err, c == ca, f.hits.Load())
	}
	b.mu.Lock()
	kept := b.entries[local].validUntil
	b.mu.Unlock()
	if !kept.Equal(short.Expiry) {
		t.Errorf("B keeps the shared token until %v, want the caller's expiry %v", kept, short.Expiry)
	}

	// At validUntil: B (after its memory entry lapsed) exchanges anew,
	// although the shared cache still returns the old entry.
	clock.Advance(570 * time.Second)
	if _, _, ok, _ := shared.Get(context.Background(), key); !ok {
		t.Fatal("the fake dropped the entry")
	}
	c2, err := b.Credential(context.Background(), user)
	if err != nil || c2 == ca || f.hits.Load() != 2 {
		t.Fatalf("at validUntil: %v, stale %v, %d requests", err, c2 == ca, f.hits.Load())
	}

	// An entry claiming a validUntil past its token's expiry is served
	// only until the token's expiry.
	c3 := user
	c3.Subject = "u3"
	tok := xcFakeToken()
	bogus := Credential{Header: "Authorization", Value: "Bearer " + tok, Secret: tok, ID: shortHash(tok), Expiry: clock.Now().Add(10 * time.Second)}
	shared.set(a.sharedKey(a.cacheKey(c3)), xsEntry{cred: bogus, validUntil: clock.Now().Add(time.Hour)})
	if c, err := a.Credential(context.Background(), c3); err != nil || c != bogus || f.hits.Load() != 2 {
		t.Fatalf("entry within its token's life: %v, served %v", err, c == bogus)
	}
	clock.Advance(10 * time.Second)
	if c, err := a.Credential(context.Background(), c3); err != nil || c == bogus || f.hits.Load() != 3 {
		t.Errorf("a token was served at its expiry: %v, %d requests", err, f.hits.Load())
	}
	// And one whose validUntil has passed is not served at all.
	c4 := user
	c4.Subject = "u4"
	shared.set(a.sharedKey(a.cacheKey(c4)), xsEntry{cred: bogus, validUntil: clock.Now().Add(-time.Second)})
	if c, err := a.Credential(context.Background(), c4); err != nil || c == bogus || f.hits.Load() != 4 {
		t.Errorf("an expired shared entry was served: %v", err)
	}
}

// TestExchangeSharedCallerKeys: a caller with another cache key (user,
// issuer, client, act chain, scope set) is never served another's
// shared token; a refusal is not shared.
func TestExchangeSharedCallerKeys(t *testing.T) {
	f := xcNewFakeAS(t, xcIssue(600))
	shared := xsNewShared()
	ep := f.endpoint(t, xcSecret(), nil)
	mod := func(c *ExchangeConfig) { c.Shared = shared; c.Scopes = []string{"a", "b"} }
	a, b := xcNewExchange(t, ep, mod), xcNewExchange(t, ep, mod)
	base := Caller{Token: xcFakeToken(), Issuer: "https://idp", Subject: "u1", ClientID: "app", Scopes: []string{"a", "b"},
		Expiry: time.Now().Add(time.Hour)}
	first, err := a.Credential(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	variants := []func(*Caller){
		func(c *Caller) { c.Issuer = "https://idp2" },
		func(c *Caller) { c.Subject = "u2" },
		func(c *Caller) { c.ClientID = "app2" },
		func(c *Caller) { c.Actor = []string{"svc"} },
		func(c *Caller) { c.Scopes = []string{"a"} },
		func(c *Caller) { c.Subject = "" },
	}
	seen := map[string]bool{first.Secret: true}
	for i, v := range variants {
		c := base
		v(&c)
		c.Token = xcFakeToken()
		got, err := b.Credential(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if seen[got.Secret] {
			t.Errorf("variant %d was served another caller's token", i)
		}
		seen[got.Secret] = true
	}
	if int(f.hits.Load()) != 1+len(variants) || shared.len() != 1+len(variants) {
		t.Errorf("%d requests, %d shared entries for %d distinct callers", f.hits.Load(), shared.len(), 1+len(variants))
	}
	// The same caller on B is served A's token.
	if got, err := b.Credential(context.Background(), base); err != nil || got != first || int(f.hits.Load()) != 1+len(variants) {
		t.Errorf("the same caller on B: %v, same %v", err, got == first)
	}

	// A refusal: remembered in memory, never put in the shared cache.
	f.set(xcJSON(400, map[string]string{"error": "invalid_grant"}))
	refused := base
	refused.Subject, refused.Token = "u-refused", xcFakeToken()
	puts := shared.puts.Load()
	for range 2 {
		if _, err := a.Credential(context.Background(), refused); !IsDenied(err) {
			t.Fatalf("refused: %v", err)
		}
	}
	if shared.puts.Load() != puts {
		t.Error("a refusal was put in the shared cache")
	}
	// B does not know of A's refusal: it asks (and is refused) itself.
	hits := f.hits.Load()
	if _, err := b.Credential(context.Background(), refused); !IsDenied(err) || f.hits.Load() != hits+1 {
		t.Errorf("B: %v, %d requests", err, f.hits.Load()-hits)
	}
}

// TestSharedKeyBindsTheServer: two exchanges with the same resource,
// audience and scopes but another authorization server or another client
// there never share an entry of the shared cache.
func TestSharedKeyBindsTheServer(t *testing.T) {
	mk := func(tokenURL, client string) *Exchange {
		ep, err := NewTokenEndpoint(TokenEndpointConfig{TokenURL: tokenURL, ClientID: client,
			ClientSecret: func() ([]byte, error) { return []byte("s3cret-for-tests"), nil }})
		if err != nil {
			t.Fatal(err)
		}
		x, err := NewExchange(ExchangeConfig{Endpoint: ep, Resource: "https://up.example/mcp"})
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	var key exchangeKey
	base := mk("http://127.0.0.1:1/token", "mcpgate").sharedKey(key)
	for _, other := range []*Exchange{mk("http://127.0.0.1:2/token", "mcpgate"), mk("http://127.0.0.1:1/token", "other-client")} {
		if other.sharedKey(key) == base {
			t.Error("another token endpoint or client maps to the same shared entry")
		}
	}
	if mk("http://127.0.0.1:1/token", "mcpgate").sharedKey(key) != base {
		t.Error("the same server and client map to different shared entries")
	}
}
