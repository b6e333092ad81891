package credential

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func xcNewClientCreds(t testing.TB, ep *TokenEndpoint, mod func(*ClientCredentialsConfig)) *ClientCredentials {
	t.Helper()
	cfg := ClientCredentialsConfig{Endpoint: ep, Resource: xcUpstreamRes}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewClientCredentials(cfg)
	if err != nil {
		t.Fatalf("NewClientCredentials: %v", err)
	}
	return s
}

// xcEventually polls cond for up to 5s.
func xcEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestNewClientCredentialsConfig(t *testing.T) {
	ep := &TokenEndpoint{}
	if _, err := NewClientCredentials(ClientCredentialsConfig{Endpoint: ep, Resource: xcUpstreamRes, Scopes: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	_, err := NewClientCredentials(ClientCredentialsConfig{Resource: "no", Scopes: []string{"a b"}, RefreshMargin: -1, RetryAfter: -1})
	for _, w := range []string{"token endpoint is required", `resource "no"`, `scope "a b"`, "refresh margin", "retry after"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
}

func TestClientCredentialsDevauth(t *testing.T) {
	a := xcNewAS(t)
	logs := &xcLogs{}
	s := xcNewClientCreds(t, a.endpoint(t, func(c *TokenEndpointConfig) { c.Logger = logs.Logger() }), func(c *ClientCredentialsConfig) {
		c.Scopes = []string{"docs:read", "docs:write"}
		c.Logger = logs.Logger()
	})
	alice := Caller{Token: xcFakeToken(), Subject: "alice"}
	cred, err := s.Credential(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	c := xcClaims(t, cred.Secret)
	if c["sub"] != xcGateway || c["aud"] != xcUpstreamRes || c["scope"] != "docs:read docs:write" || c["act"] != nil {
		t.Errorf("claims %v", c)
	}
	if cred.Header != "Authorization" || cred.Value != "Bearer "+cred.Secret || cred.ID != shortHash(cred.Secret) {
		t.Errorf("credential %+v", cred)
	}
	// The caller is ignored: everyone gets the one cached token.
	for _, caller := range []Caller{alice, {Subject: "bob"}, {}} {
		if got, err := s.Credential(context.Background(), caller); err != nil || got != cred {
			t.Errorf("caller %q: %v, same token %v", caller.Subject, err, got == cred)
		}
	}
	if a.posts.Load() != 1 {
		t.Errorf("%d token requests", a.posts.Load())
	}
	if out := logs.String(); strings.Contains(out, cred.Secret) || strings.Contains(out, a.secret) {
		t.Error("the token or the client secret is in the logs")
	}

	// A scope the server does not know: refused, with the code.
	s2 := xcNewClientCreds(t, a.endpoint(t, nil), func(c *ClientCredentialsConfig) { c.Scopes = []string{"admin"} })
	if _, err := s2.Credential(context.Background(), alice); !IsDenied(err) || !strings.Contains(err.Error(), "refused the client credentials grant (invalid_scope)") {
		t.Errorf("unknown scope: %v", err)
	}
}

// TestClientCredentialsRefresh walks one token's life: cached, refreshed
// early in the background, kept when the refresh fails, and lost only at
// its expiry.
func TestClientCredentialsRefresh(t *testing.T) {
	f := xcNewFakeAS(t, xcIssue(100))
	clock := xcNewClock()
	logs := &xcLogs{}
	ep := f.endpoint(t, xcSecret(), func(c *TokenEndpointConfig) { c.BreakerFailures = 100; c.Logger = logs.Logger() })
	s := xcNewClientCreds(t, ep, func(c *ClientCredentialsConfig) { c.Now = clock.Now; c.Logger = logs.Logger() })
	ctx := context.Background()
	get := func() Credential {
		t.Helper()
		c, err := s.Credential(ctx, Caller{})
		if err != nil {
			t.Fatalf("Credential: %v", err)
		}
		return c
	}

	tok1 := get()
	if !tok1.Expiry.Equal(clock.Now().Add(100 * time.Second)) {
		t.Fatalf("expiry %v", tok1.Expiry)
	}
	// Margin max(30s, 20% of 100s) = 30s: cached until 70s.
	clock.Advance(69 * time.Second)
	if get() != tok1 || f.hits.Load() != 1 {
		t.Fatal("not cached before the refresh margin")
	}
	// Inside the margin: the current token now, a new one in the background.
	clock.Advance(2 * time.Second)
	if get() != tok1 {
		t.Fatal("the early refresh made the caller wait for a new token")
	}
	xcEventually(t, "the early refresh", func() bool { return get() != tok1 })
	tok2 := get()
	if f.hits.Load() != 2 || !tok2.Expiry.Equal(clock.Now().Add(100*time.Second)) {
		t.Fatalf("after refresh: %d requests, expiry %v", f.hits.Load(), tok2.Expiry)
	}

	// The server fails; tok2 enters its margin: it is kept, with a warning.
	f.set(xcJSON(503, nil))
	clock.Advance(71 * time.Second)
	if get() != tok2 {
		t.Fatal("lost the valid token")
	}
	xcEventually(t, "the failed refresh", func() bool { return strings.Contains(logs.String(), "refreshing the client credentials token failed") })
	for range 5 {
		if get() != tok2 {
			t.Fatal("lost the valid token after a failed refresh")
		}
	}
	if f.hits.Load() != 3 {
		t.Fatalf("%d requests; a failed refresh must wait RetryAfter before the next", f.hits.Load())
	}
	clock.Advance(DefaultClientCredentialsRetryAfter)
	if get() != tok2 {
		t.Fatal("lost the valid token")
	}
	xcEventually(t, "the retried refresh", func() bool { return f.hits.Load() == 4 })

	// Past its expiry there is no token left: the call fails.
	clock.Advance(30 * time.Second)
	_, err := s.Credential(ctx, Caller{})
	if xcKind(err) != Unavailable || !strings.Contains(err.Error(), "(HTTP 503)") {
		t.Fatalf("expired and unavailable: %v", err)
	}

	// Recovery.
	f.set(xcIssue(100))
	if tok3 := get(); tok3 == tok2 {
		t.Error("no new token after recovery")
	}
	if out := logs.String(); strings.Contains(out, tok1.Secret) || strings.Contains(out, tok2.Secret) {
		t.Error("a token is in the logs")
	}
}

// TestClientCredentialsRefusal: a refusal with no valid token is returned
// for RetryAfter without a new request.
func TestClientCredentialsRefusal(t *testing.T) {
	f := xcNewFakeAS(t, xcJSON(400, map[string]string{"error": "invalid_scope", "error_description": "nope"}))
	clock := xcNewClock()
	s := xcNewClientCreds(t, f.endpoint(t, xcSecret(), nil), func(c *ClientCredentialsConfig) { c.Now = clock.Now })
	for range 3 {
		_, err := s.Credential(context.Background(), Caller{})
		if !IsDenied(err) || !strings.Contains(err.Error(), "(invalid_scope)") || strings.Contains(err.Error(), "nope") {
			t.Fatalf("got %v", err)
		}
	}
	if f.hits.Load() != 1 {
		t.Errorf("%d requests within RetryAfter", f.hits.Load())
	}
	clock.Advance(DefaultClientCredentialsRetryAfter)
	f.set(xcIssue(60))
	if _, err := s.Credential(context.Background(), Caller{}); err != nil || f.hits.Load() != 2 {
		t.Errorf("after RetryAfter: %v, %d requests", err, f.hits.Load())
	}
}

// TestClientCredentialsConcurrentFirst: concurrent first calls share one
// request.
func TestClientCredentialsConcurrentFirst(t *testing.T) {
	f := xcNewFakeAS(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		xcIssue(3600)(w, r)
	})
	s := xcNewClientCreds(t, f.endpoint(t, xcSecret(), nil), nil)
	var wg sync.WaitGroup
	got := make([]Credential, 20)
	for i := range got {
		wg.Go(func() {
			c, err := s.Credential(context.Background(), Caller{})
			if err != nil {
				t.Error(err)
			}
			got[i] = c
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("call %d got another token", i)
		}
	}
	if f.hits.Load() != 1 {
		t.Errorf("%d requests for 20 concurrent first calls", f.hits.Load())
	}
}

func TestClientCredentialsMargins(t *testing.T) {
	for _, tt := range []struct {
		name      string
		expiresIn int
		margin    time.Duration
		refreshAt time.Duration // after issue
	}{
		{name: "default floor 30s", expiresIn: 100, refreshAt: 70 * time.Second},
		{name: "default 20%", expiresIn: 3600, refreshAt: 2880 * time.Second},
		{name: "short token: half its life", expiresIn: 40, refreshAt: 20 * time.Second},
		{name: "configured", expiresIn: 3600, margin: 10 * time.Minute, refreshAt: 50 * time.Minute},
		{name: "configured, capped at half", expiresIn: 60, margin: 10 * time.Minute, refreshAt: 30 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := xcNewFakeAS(t, xcIssue(tt.expiresIn))
			clock := xcNewClock()
			s := xcNewClientCreds(t, f.endpoint(t, xcSecret(), nil), func(c *ClientCredentialsConfig) { c.Now = clock.Now; c.RefreshMargin = tt.margin })
			if _, err := s.Credential(context.Background(), Caller{}); err != nil {
				t.Fatal(err)
			}
			s.mu.Lock()
			got := s.cur.refreshAt.Sub(clock.Now())
			s.mu.Unlock()
			if got != tt.refreshAt {
				t.Errorf("refresh after %v, want %v", got, tt.refreshAt)
			}
		})
	}
}

// BenchmarkClientCredentialsCached is the per-call cost with a cached token.
func BenchmarkClientCredentialsCached(b *testing.B) {
	f := xcNewFakeAS(b, xcIssue(3600))
	s := xcNewClientCreds(b, f.endpoint(b, xcSecret(), nil), nil)
	ctx := context.Background()
	if _, err := s.Credential(ctx, Caller{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Credential(ctx, Caller{}); err != nil {
			b.Fatal(err)
		}
	}
	if f.hits.Load() != 1 {
		b.Fatalf("%d requests", f.hits.Load())
	}
}
