package credential

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func xcNewExchange(t testing.TB, ep *TokenEndpoint, mod func(*ExchangeConfig)) *Exchange {
	t.Helper()
	cfg := ExchangeConfig{Endpoint: ep, Resource: xcUpstreamRes}
	if mod != nil {
		mod(&cfg)
	}
	x, err := NewExchange(cfg)
	if err != nil {
		t.Fatalf("NewExchange: %v", err)
	}
	return x
}

var xcIDPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

func TestNewExchangeConfig(t *testing.T) {
	ep := &TokenEndpoint{}
	for _, tt := range []struct {
		name string
		cfg  ExchangeConfig
		want []string
	}{
		{name: "minimal", cfg: ExchangeConfig{Endpoint: ep, Resource: xcUpstreamRes}},
		{name: "empty", cfg: ExchangeConfig{}, want: []string{"token endpoint is required", "resource is required"}},
		{name: "everything wrong", cfg: ExchangeConfig{Endpoint: ep, Resource: "upstream", Audience: " a", Scopes: []string{"ok", "bad scope", ""},
			RefreshMargin: -1, MaxEntries: -1},
			want: []string{`resource "upstream"`, "audience", `scope "bad scope"`, `scope ""`, "refresh margin", "max entries"}},
		{name: "resource fragment", cfg: ExchangeConfig{Endpoint: ep, Resource: xcUpstreamRes + "#x"}, want: []string{"fragment"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewExchange(tt.cfg)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestExchangeDevauth exchanges real tokens at the development server.
func TestExchangeDevauth(t *testing.T) {
	a := xcNewAS(t)
	logs := &xcLogs{}
	x := xcNewExchange(t, a.endpoint(t, func(c *TokenEndpointConfig) { c.Logger = logs.Logger() }), func(c *ExchangeConfig) {
		c.Scopes = []string{"docs:read", "mail:send", "docs:write"}
		c.Logger = logs.Logger()
	})
	alice := a.userToken(t, xcAlice, "docs:read docs:write")
	if alice.Subject != xcAliceSub || slices.Compare(alice.Scopes, []string{"docs:read", "docs:write"}) != 0 {
		t.Fatalf("inbound caller %+v", alice)
	}
	before := time.Now()
	cred, err := x.Credential(context.Background(), alice)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if cred.Header != "Authorization" || cred.Value != "Bearer "+cred.Secret || cred.Secret == alice.Token ||
		cred.ID != shortHash(cred.Secret) || !xcIDPattern.MatchString(cred.ID) {
		t.Errorf("credential %+v", cred)
	}
	if d := cred.Expiry.Sub(before); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("expiry in %v, want about devauth's 10m", d)
	}
	c := xcClaims(t, cred.Secret)
	if c["aud"] != xcUpstreamRes || c["sub"] != xcAliceSub || c["client_id"] != xcGateway || c["iss"] != a.issuer {
		t.Errorf("claims %v", c)
	}
	if act, _ := c["act"].(map[string]any); act["sub"] != xcGateway {
		t.Errorf("act %v, want the gateway client", c["act"])
	}
	// Requested: configured ∩ held = docs:read docs:write (mail:send not held).
	for _, s := range strings.Fields(fmt.Sprint(c["scope"])) {
		if s != "docs:read" && s != "docs:write" {
			t.Errorf("granted scope %q was not requested", s)
		}
	}
	if a.posts.Load() != 1 {
		t.Fatalf("%d token requests", a.posts.Load())
	}

	// Cache hit: no second request, same token.
	again, err := x.Credential(context.Background(), alice)
	if err != nil || again != cred || a.posts.Load() != 1 {
		t.Errorf("second call: %v, same %v, %d requests", err, again == cred, a.posts.Load())
	}

	// Another user: a request of their own, a different token.
	bob := a.userToken(t, xcBob, "docs:read")
	bc, err := x.Credential(context.Background(), bob)
	if err != nil {
		t.Fatalf("bob: %v", err)
	}
	if bc.Secret == cred.Secret || xcClaims(t, bc.Secret)["sub"] != xcBob || a.posts.Load() != 2 {
		t.Errorf("bob got %v, %d requests", xcClaims(t, bc.Secret)["sub"], a.posts.Load())
	}
	if got := xcClaims(t, bc.Secret)["scope"]; got != "docs:read" {
		t.Errorf("bob's scope %v, want docs:read", got)
	}
	if x.Len() != 2 {
		t.Errorf("Len %d", x.Len())
	}

	// A refused subject token: Denied with the code only.
	revoked := alice
	revoked.Token = alice.Token[:len(alice.Token)-4] + "AAAA" // bad signature
	revoked.Subject = "someone-else"
	_, err = x.Credential(context.Background(), revoked)
	if !IsDenied(err) || !strings.Contains(err.Error(), "refused the token exchange (invalid_request)") ||
		strings.Contains(err.Error(), "not active") {
		t.Errorf("refused token: %v", err)
	}

	for _, leak := range []string{a.secret, alice.Token, bob.Token, cred.Secret, bc.Secret} {
		if strings.Contains(logs.String(), leak) || strings.Contains(err.Error(), leak) {
			t.Errorf("a secret or token (%.10s…) is in the logs or the error", leak)
		}
	}
	if !strings.Contains(logs.String(), "token_id="+cred.ID) {
		t.Errorf("the logs do not identify the issued token by hash: %s", logs.String())
	}
}

func TestExchangeForm(t *testing.T) {
	f := xcNewFakeAS(t, xcIssue(600))
	sec := xcSecret()
	caller := Caller{Token: xcFakeToken(), Issuer: "https://idp.example.test", Subject: "u1", ClientID: "app",
		Scopes: []string{"a", "c", "z"}, Expiry: time.Now().Add(time.Hour)}
	for _, tt := range []struct {
		name      string
		mod       func(*ExchangeConfig)
		wantScope string
		hasScope  bool
		audience  string
	}{
		{name: "no scopes configured", mod: func(*ExchangeConfig) {}},
		{name: "intersection sorted", mod: func(c *ExchangeConfig) { c.Scopes = []string{"z", "b", "a", "a"} }, wantScope: "a z", hasScope: true},
		{name: "audience", mod: func(c *ExchangeConfig) { c.Audience = "docs-api" }, audience: "docs-api"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x := xcNewExchange(t, f.endpoint(t, sec, nil), tt.mod)
			if _, err := x.Credential(context.Background(), caller); err != nil {
				t.Fatal(err)
			}
			form := f.lastForm()
			want := map[string]string{
				"grant_type":           "urn:ietf:params:oauth:grant-type:token-exchange",
				"subject_token":        caller.Token,
				"subject_token_type":   "urn:ietf:params:oauth:token-type:access_token",
				"requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
				"resource":             xcUpstreamRes,
				"audience":             tt.audience,
				"scope":                tt.wantScope,
			}
			for k, v := range want {
				if form.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, form.Get(k), v)
				}
			}
			if form.Has("scope") != tt.hasScope || form.Has("audience") != (tt.audience != "") {
				t.Errorf("form %v", form)
			}
		})
	}
}

func TestExchangeRefusedLocally(t *testing.T) {
	f := xcNewFakeAS(t, xcIssue(600))
	clock := xcNewClock()
	x := xcNewExchange(t, f.endpoint(t, xcSecret(), nil), func(c *ExchangeConfig) {
		c.Scopes = []string{"docs:read"}
		c.Now = clock.Now
	})
	base := Caller{Token: xcFakeToken(), Issuer: "i", Subject: "u", ClientID: "c", Scopes: []string{"docs:read"}, Expiry: clock.Now().Add(time.Hour)}
	for _, tt := range []struct {
		name string
		mod  func(*Caller)
		msg  string
	}{
		{name: "no token", mod: func(c *Caller) { c.Token = "" }, msg: "no client token"},
		{name: "expired caller", mod: func(c *Caller) { c.Expiry = clock.Now() }, msg: "has expired"},
		{name: "no needed scope", mod: func(c *Caller) { c.Scopes = []string{"mail:send"} }, msg: "none of the scopes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.mod(&c)
			_, err := x.Credential(context.Background(), c)
			if !IsDenied(err) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %v", err)
			}
		})
	}
	if f.hits.Load() != 0 {
		t.Errorf("%d requests for calls refused locally", f.hits.Load())
	}
}

// TestExchangeCacheKeys: entries are per issuer, subject, client, actor
// chain and scope set, and fields cannot run into each other.
func TestExchangeCacheKeys(t *testing.T) {
	f := xcNewFakeAS(t, xcIssue(600))
	x := xcNewExchange(t, f.endpoint(t, xcSecret(), nil), func(c *ExchangeConfig) { c.Scopes = []string{"a", "b"} })
	base := Caller{Token: xcFakeToken(), Issuer: "https://idp", Subject: "u1", ClientID: "app", Scopes: []string{"a", "b"}}
	variants := []func(*Caller){
		func(*Caller) {},
		func(c *Caller) { c.Issuer = "https://idp2" },
		func(c *Caller) { c.Issuer, c.Subject = "https://idpu", "1" }, // same concatenation
		func(c *Caller) { c.Subject = "u2" },
		func(c *Caller) { c.ClientID = "app2" },
		func(c *Caller) { c.Subject, c.ClientID = "u1a", "pp" },
		func(c *Caller) { c.Actor = []string{"svc"} },
		func(c *Caller) { c.Actor = []string{"s", "vc"} },
		func(c *Caller) { c.Scopes = []string{"a"} },
		func(c *Caller) { c.Scopes = []string{"b"} },
		func(c *Caller) { c.Subject = "" }, // keyed by token
		func(c *Caller) { c.Subject, c.Token = "", xcFakeToken() },
	}
	seen := map[exchangeKey]int{}
	for i, v := range variants {
		c := base
		v(&c)
		k := x.cacheKey(c)
		if j, dup := seen[k]; dup {
			t.Errorf("variants %d and %d share a cache key", j, i)
		}
		seen[k] = i
		if _, err := x.Credential(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	if int(f.hits.Load()) != len(variants) {
		t.Errorf("%d requests for %d distinct callers", f.hits.Load(), len(variants))
	}
	// Scopes the upstream does not need, and a new token of the same user,
	// do not change the entry.
	c := base
	c.Scopes = []string{"a", "b", "zzz"}
	c.Token = xcFakeToken()
	if x.cacheKey(c) != x.cacheKey(base) {
		t.Error("the key depends on more than the requested scope set")
	}
}

// TestExchangeSingleFlight: concurrent calls of one user share one
// request; two users never share.
func TestExchangeSingleFlight(t *testing.T) {
	a := xcNewAS(t)
	x := xcNewExchange(t, a.endpoint(t, nil), nil)
	alice := a.userToken(t, xcAlice, "docs:read")
	bob := a.userToken(t, xcBob, "docs:read")
	a.delay.Store(int64(100 * time.Millisecond))

	const n = 20
	var wg sync.WaitGroup
	start := make(chan struct{})
	got := make([]Credential, 2*n)
	errs := make([]error, 2*n)
	for i := range 2 * n {
		c := alice
		if i%2 == 1 {
			c = bob
		}
		wg.Go(func() {
			<-start
			got[i], errs[i] = x.Credential(context.Background(), c)
		})
	}
	close(start)
	wg.Wait()
	for i := range 2 * n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if got[i] != got[i%2] {
			t.Errorf("call %d got another token than call %d of the same user", i, i%2)
		}
	}
	if got[0].Secret == got[1].Secret || xcClaims(t, got[0].Secret)["sub"] != xcAliceSub || xcClaims(t, got[1].Secret)["sub"] != xcBob {
		t.Error("the two users' tokens are mixed up")
	}
	if a.posts.Load() != 2 {
		t.Errorf("%d token requests for %d concurrent calls of 2 users, want 2", a.posts.Load(), 2*n)
	}

	// A caller that gives up does not cancel the shared request.
	a.delay.Store(int64(200 * time.Millisecond))
	carol := alice
	carol.Subject = "carol-" + t.Name() // another cache key, same valid token
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var wg2 sync.WaitGroup
	var impatientErr error
	wg2.Go(func() { _, impatientErr = x.Credential(ctx, carol) }) // starts the flight
	time.Sleep(10 * time.Millisecond)
	patient, patientErr := x.Credential(context.Background(), carol)
	wg2.Wait()
	if xcKind(impatientErr) != Unavailable {
		t.Errorf("impatient caller: %v", impatientErr)
	}
	if patientErr != nil || patient.Secret == "" {
		t.Errorf("patient caller: %v", patientErr)
	}
}

// TestExchangeExpiry: an entry is served until its token's expiry minus
// the margin, and never after the caller's token expired.
func TestExchangeExpiry(t *testing.T) {
	f := xcNewFakeAS(t, xcIssue(600))
	clock := xcNewClock()
	x := xcNewExchange(t, f.endpoint(t, xcSecret(), nil), func(c *ExchangeConfig) { c.Now = clock.Now })
	t0 := clock.Now()
	first := Caller{Token: xcFakeToken(), Issuer: "i", Subject: "u", ClientID: "c", Expiry: t0.Add(2 * time.Minute)}
	call := func(c Caller) (Credential, error) { return x.Credential(context.Background(), c) }

	c1, err := call(first)
	if err != nil || !c1.Expiry.Equal(t0.Add(600*time.Second)) {
		t.Fatalf("first: %v, expiry %v", err, c1.Expiry)
	}
	clock.Advance(2*time.Minute - time.Second)
	if c, _ := call(first); c != c1 || f.hits.Load() != 1 {
		t.Fatal("not served from the cache before the caller's expiry")
	}
	// The same user with a new, longer-lived token, after the first token
	// expired: the entry bound to the first token's expiry is not served.
	clock.Advance(time.Second)
	second := first
	second.Token, second.Expiry = xcFakeToken(), t0.Add(time.Hour)
	if _, err := call(first); !IsDenied(err) {
		t.Errorf("expired caller: %v", err)
	}
	c2, err := call(second)
	if err != nil || c2 == c1 || f.hits.Load() != 2 {
		t.Fatalf("after the caller's expiry: %v, new %v, %d requests", err, c2 != c1, f.hits.Load())
	}
	// Margin: min(30s, 10% of 600s) = 30s before the token's expiry.
	clock.Advance(600*time.Second - 30*time.Second - time.Second)
	if c, _ := call(second); c != c2 {
		t.Fatal("not served before the refresh margin")
	}
	clock.Advance(time.Second)
	if c, _ := call(second); c == c2 || f.hits.Load() != 3 {
		t.Fatalf("served inside the refresh margin (%d requests)", f.hits.Load())
	}

	// A short-lived token: margin is 10% of its life (2s of 20s).
	f.set(xcIssue(20))
	third := second
	third.Subject = "short"
	c3, _ := call(third)
	clock.Advance(17 * time.Second)
	if c, _ := call(third); c != c3 {
		t.Error("short token: not cached for 90% of its life")
	}
	clock.Advance(time.Second)
	if c, _ := call(third); c == c3 {
		t.Error("short token: served inside 10% of its life")
	}
}

func TestExchangeDenialsAndFailures(t *testing.T) {
	f := xcNewFakeAS(t, xcJSON(400, map[string]string{"error": "invalid_grant", "error_description": "token revoked"}))
	clock := xcNewClock()
	x := xcNewExchange(t, f.endpoint(t, xcSecret(), nil), func(c *ExchangeConfig) { c.Now = clock.Now })
	c := Caller{Token: xcFakeToken(), Issuer: "i", Subject: "u", ClientID: "c"}
	for range 3 {
		if _, err := x.Credential(context.Background(), c); !IsDenied(err) || !strings.Contains(err.Error(), "(invalid_grant)") {
			t.Fatalf("got %v", err)
		}
	}
	if f.hits.Load() != 1 {
		t.Errorf("a refused token was sent again within the denial TTL: %d requests", f.hits.Load())
	}
	// Another token of the same user is not refused by the memory.
	f.set(xcIssue(600))
	fresh := c
	fresh.Token = xcFakeToken()
	if _, err := x.Credential(context.Background(), fresh); err != nil || f.hits.Load() != 2 {
		t.Errorf("fresh token: %v, %d requests", err, f.hits.Load())
	}
	// The refused token, after the TTL, is tried again.
	x2 := xcNewExchange(t, f.endpoint(t, xcSecret(), nil), func(cfg *ExchangeConfig) { cfg.Now = clock.Now })
	f.set(xcJSON(400, map[string]string{"error": "invalid_grant"}))
	_, _ = x2.Credential(context.Background(), c)
	clock.Advance(DefaultDenialTTL)
	f.set(xcIssue(600))
	if _, err := x2.Credential(context.Background(), c); err != nil || f.hits.Load() != 4 {
		t.Errorf("after the denial TTL: %v, %d requests", err, f.hits.Load())
	}

	// Failures are not cached: the next call tries again.
	x3 := xcNewExchange(t, f.endpoint(t, xcSecret(), nil), func(cfg *ExchangeConfig) { cfg.Now = clock.Now })
	for _, h := range []http.HandlerFunc{xcJSON(502, nil), func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("garbage")) }} {
		f.set(h)
		before := f.hits.Load()
		for range 2 {
			if _, err := x3.Credential(context.Background(), c); xcKind(err) != Unavailable {
				t.Fatalf("got %v", err)
			}
		}
		if f.hits.Load()-before != 2 {
			t.Errorf("a failure was cached")
		}
	}
	f.set(xcIssue(600))
	if _, err := x3.Credential(context.Background(), c); err != nil {
		t.Errorf("after recovery: %v", err)
	}
}

func TestExchangeEviction(t *testing.T) {
	f := xcNewFakeAS(t, xcIssue(600))
	clock := xcNewClock()
	x := xcNewExchange(t, f.endpoint(t, xcSecret(), nil), func(c *ExchangeConfig) { c.Now = clock.Now; c.MaxEntries = 3 })
	user := func(i int, life time.Duration) Caller {
		return Caller{Token: fmt.Sprintf("tok-%d", i), Issuer: "i", Subject: fmt.Sprint("u", i), ClientID: "c", Expiry: clock.Now().Add(life)}
	}
	users := []Caller{user(1, time.Hour), user(2, time.Minute), user(3, time.Hour)}
	for _, u := range users {
		if _, err := x.Credential(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
	hits := func() int64 { return f.hits.Load() }
	// u2's entry expires (its caller does); u4 takes its place, u1 stays.
	clock.Advance(2 * time.Minute)
	u4 := user(4, time.Hour)
	_, _ = x.Credential(context.Background(), u4)
	if x.Len() != 3 {
		t.Errorf("Len %d", x.Len())
	}
	h := hits()
	_, _ = x.Credential(context.Background(), users[0])
	if hits() != h {
		t.Error("an unexpired entry was evicted while an expired one was there")
	}
	// Full of live entries: the oldest (u1) goes.
	_, _ = x.Credential(context.Background(), user(5, time.Hour))
	h = hits()
	_, _ = x.Credential(context.Background(), users[2])
	if hits() != h {
		t.Error("u3 was evicted before u1")
	}
	_, _ = x.Credential(context.Background(), users[0])
	if hits() != h+1 {
		t.Error("the oldest entry was not evicted")
	}
	if x.Len() > 3 {
		t.Errorf("Len %d > MaxEntries", x.Len())
	}
}

// BenchmarkExchangeCached is the per-call cost of a cache hit.
func BenchmarkExchangeCached(b *testing.B) {
	f := xcNewFakeAS(b, xcIssue(3600))
	x := xcNewExchange(b, f.endpoint(b, xcSecret(), nil), func(c *ExchangeConfig) { c.Scopes = []string{"docs:read", "docs:write"} })
	c := Caller{Token: xcFakeToken(), Issuer: "https://idp.example.test", Subject: "user-1234", ClientID: "client-app",
		Scopes: []string{"docs:read", "mail:send"}, Expiry: time.Now().Add(time.Hour)}
	ctx := context.Background()
	if _, err := x.Credential(ctx, c); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Credential(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	if f.hits.Load() != 1 {
		b.Fatalf("%d requests", f.hits.Load())
	}
}

// TestExchangeDevauthFaults: faults injected in front of the real server
// are Unavailable and not cached; the server's own answer follows.
func TestExchangeDevauthFaults(t *testing.T) {
	a := xcNewAS(t)
	x := xcNewExchange(t, a.endpoint(t, func(c *TokenEndpointConfig) { c.Timeout = 100 * time.Millisecond }), nil)
	alice := a.userToken(t, xcAlice, "docs:read")
	for name, h := range map[string]http.HandlerFunc{
		"503":     xcJSON(503, map[string]string{"error": "temporarily_unavailable"}),
		"garbage": func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")) },
		"timeout": func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm() // a server notices a closed connection only once the body is read
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
		},
	} {
		a.setFault(h)
		if _, err := x.Credential(context.Background(), alice); xcKind(err) != Unavailable {
			t.Errorf("%s: %v", name, err)
		}
	}
	a.setFault(nil)
	cred, err := x.Credential(context.Background(), alice)
	if err != nil || xcClaims(t, cred.Secret)["sub"] != xcAliceSub {
		t.Fatalf("after the faults: %v", err)
	}
	if a.posts.Load() != 4 {
		t.Errorf("%d requests, want 4", a.posts.Load())
	}
}
