package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/mcpgate/mcpgate/internal/egress"
	ti "github.com/mcpgate/mcpgate/internal/testissuer"
)

// hookRec records the observability hooks.
type hookRec struct {
	mu      sync.Mutex
	calls   []callRec
	stale   []string
	refresh []string
	notify  chan struct{} // closed and replaced on every hook call
}

type callRec struct {
	issuer, call string
	d            time.Duration
	err          error
}

func newHookRec() *hookRec { return &hookRec{notify: make(chan struct{})} }

func (h *hookRec) noteLocked() {
	close(h.notify)
	h.notify = make(chan struct{})
}

func (h *hookRec) install(d *Deps) {
	d.OnCall = func(issuer, call string, dur time.Duration, err error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.calls = append(h.calls, callRec{issuer, call, dur, err})
		h.noteLocked()
	}
	d.OnStaleDenial = func(issuer string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.stale = append(h.stale, issuer)
		h.noteLocked()
	}
	d.OnRefreshFailure = func(issuer string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.refresh = append(h.refresh, issuer)
		h.noteLocked()
	}
}

func (h *hookRec) snapshot() (calls []callRec, stale, refresh []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]callRec(nil), h.calls...), append([]string(nil), h.stale...), append([]string(nil), h.refresh...)
}

// waitFor blocks until cond holds, failing after 10s. It waits on hook
// notifications, not by sleeping.
func (h *hookRec) waitFor(t testing.TB, what string, cond func(calls []callRec, stale, refresh []string) bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		ok, ch := cond(h.calls, h.stale, h.refresh), h.notify
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// lastCall returns the last recorded call named call.
func (h *hookRec) lastCall(t testing.TB, call string) callRec {
	t.Helper()
	calls, _, _ := h.snapshot()
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].call == call {
			return calls[i]
		}
	}
	t.Fatalf("no %s call recorded", call)
	return callRec{}
}

// pollState waits until the issuer's breaker state is want. The breaker
// runs on the wall clock; this polls, it never asserts a duration.
func pollState(t testing.TB, a *Authenticator, iss, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for a.BreakerStates()[iss] != want {
		if time.Now().After(deadline) {
			t.Fatalf("breaker state %q, want %q", a.BreakerStates()[iss], want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func wantState(t testing.TB, a *Authenticator, iss, want string) {
	t.Helper()
	if got := a.BreakerStates()[iss]; got != want {
		t.Fatalf("breaker state %q, want %q", got, want)
	}
}

// TestBreakerOpensOnJWKSFailures: server-kind failures of the JWKS endpoint
// open the breaker after BreakerFailures attempts, after which no request
// reaches the server; a 4xx does not count.
func TestBreakerOpensOnJWKSFailures(t *testing.T) {
	for _, tt := range []struct {
		name   string
		setup  func(e *env)
		jwks   func(iss string) string // JWKSURI override; nil → discovered
		opens  bool
		reason string
	}{
		{name: "503", setup: func(e *env) { e.iss.SetJWKSDown(true) }, opens: true},
		{name: "garbage body", setup: func(e *env) { e.iss.SetJWKSBody([]byte("<html>oops")) }, opens: true},
		{name: "truncated json", setup: func(e *env) { e.iss.SetJWKSBody([]byte(`{"keys":[`)) }, opens: true},
		{name: "no usable key", setup: func(e *env) { e.iss.SetJWKSBody([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)) }, opens: true},
		{name: "404 proves the server up", jwks: func(iss string) string { return iss + "/no-such-jwks" }, opens: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHookRec()
			e := newEnv(t, envOpts{
				deps: h.install,
				cfg: func(c *IssuerConfig) {
					if tt.jwks != nil {
						c.JWKSURI = tt.jwks(c.Issuer)
					}
				},
			})
			if tt.setup != nil {
				tt.setup(e)
			}
			iss := e.iss.URL()
			tok := e.mint()
			hits := func() int {
				if tt.jwks != nil { // the 404 path is not the counted /jwks
					return countCalls(h, CallJWKS, func(err error) bool { return !errors.Is(err, ErrCircuitOpen) })
				}
				return e.iss.JWKSFetches()
			}
			for i := 1; i <= DefaultBreakerFailures+3; i++ {
				_, err := e.auth(tok)
				wantReject(t, err, http.StatusServiceUnavailable, "", ReasonKeysUnavailable, tok)
				wantHits := i
				if tt.opens && i > DefaultBreakerFailures {
					wantHits = DefaultBreakerFailures
					if !errors.Is(err, ErrCircuitOpen) {
						t.Fatalf("attempt %d: err %v does not match ErrCircuitOpen", i, err)
					}
				}
				if n := hits(); n != wantHits {
					t.Fatalf("attempt %d: %d server hits, want %d", i, n, wantHits)
				}
				e.clk.Advance(DefaultUnknownKIDCooldown) // let the next request fetch
			}
			want := BreakerClosed
			if tt.opens {
				want = BreakerOpen
				last := h.lastCall(t, CallJWKS)
				if last.issuer != iss || !errors.Is(last.err, ErrCircuitOpen) || !errors.Is(last.err, gobreaker.ErrOpenState) {
					t.Fatalf("last jwks call %+v, want a breaker rejection", last)
				}
			}
			wantState(t, e.a, iss, want)
			if _, ok := e.a.KeyAges()[iss]; ok {
				t.Fatal("KeyAges reports keys never fetched")
			}
			calls, _, _ := h.snapshot()
			for _, c := range calls {
				noTokenBytes(t, tok, fmt.Sprint(c.err))
			}
			noTokenBytes(t, tok, e.logs.String())
		})
	}
}

func countCalls(h *hookRec, call string, match func(error) bool) int {
	calls, _, _ := h.snapshot()
	n := 0
	for _, c := range calls {
		if c.call == call && match(c.err) {
			n++
		}
	}
	return n
}

// TestBreakerOpenWarmCacheThenStale: with the JWKS breaker open, keys
// fetched within MaxStale keep validating tokens; past MaxStale requests
// fail closed with 503 (no fetch attempted) and OnStaleDenial fires.
func TestBreakerOpenWarmCacheThenStale(t *testing.T) {
	h := newHookRec()
	e := newEnv(t, envOpts{issuer: ti.Options{Lifetime: 3 * time.Hour}, deps: h.install})
	iss := e.iss.URL()
	cached := e.mint()
	e.mustAuth(cached)
	if age, ok := e.a.KeyAges()[iss]; !ok || age != 0 {
		t.Fatalf("KeyAges %v right after a fetch", e.a.KeyAges())
	}
	e.iss.SetJWKSDown(true)

	// Unknown kids trigger refetches, one per cooldown, until the breaker
	// opens.
	for i := range DefaultBreakerFailures + 2 {
		e.clk.Advance(DefaultUnknownKIDCooldown)
		tok := e.mint(ti.WithKID(fmt.Sprintf("unknown-%d", i)))
		_, err := e.auth(tok)
		wantReject(t, err, http.StatusServiceUnavailable, "", ReasonKeysUnavailable, tok)
	}
	if n := e.iss.JWKSFetches(); n != 1+DefaultBreakerFailures {
		t.Fatalf("%d JWKS fetches, want %d", n, 1+DefaultBreakerFailures)
	}
	wantState(t, e.a, iss, BreakerOpen)

	// Open, but within MaxStale: new and cached tokens validate.
	e.mustAuth(e.mint())
	e.mustAuth(cached)
	if _, stale, _ := h.snapshot(); len(stale) != 0 {
		t.Fatalf("stale denials %v within max stale", stale)
	}
	wantAge := time.Duration(DefaultBreakerFailures+2) * DefaultUnknownKIDCooldown
	if age := e.a.KeyAges()[iss]; age != wantAge {
		t.Fatalf("key age %v, want %v", age, wantAge)
	}

	// Past MaxStale: 503 for new and cached tokens, with no server hit,
	// and each denial reported.
	e.clk.Advance(DefaultMaxStale)
	fetches := e.iss.JWKSFetches()
	for _, tok := range []string{e.mint(), cached} {
		_, err := e.auth(tok)
		wantReject(t, err, http.StatusServiceUnavailable, "", ReasonKeysUnavailable, tok)
	}
	if n := e.iss.JWKSFetches(); n != fetches {
		t.Fatalf("%d fetches while open, want %d", n, fetches)
	}
	if _, stale, _ := h.snapshot(); len(stale) != 2 || stale[0] != iss || stale[1] != iss {
		t.Fatalf("stale denials %v, want 2 for %s", stale, iss)
	}
	if e.a.Ready() {
		t.Fatal("ready past max stale")
	}
	if got := e.a.KeyAges()[iss]; got <= DefaultMaxStale {
		t.Fatalf("key age %v, want > max stale", got)
	}
	noTokenBytes(t, cached, e.logs.String())
}

// TestBreakerHalfOpenRecovery: after BreakerOpenTimeout the breaker lets
// one probe through; a failed probe reopens it, a good one closes it.
func TestBreakerHalfOpenRecovery(t *testing.T) {
	h := newHookRec()
	e := newEnv(t, envOpts{deps: h.install, cfg: func(c *IssuerConfig) {
		c.BreakerFailures = 2
		c.BreakerOpenTimeout = 50 * time.Millisecond
	}})
	iss := e.iss.URL()
	e.iss.SetJWKSDown(true)
	tok := e.mint()
	attempt := func() error {
		e.clk.Advance(DefaultUnknownKIDCooldown)
		_, err := e.auth(tok)
		return err
	}
	for range 2 {
		wantReject(t, attempt(), http.StatusServiceUnavailable, "", ReasonKeysUnavailable, tok)
	}
	wantState(t, e.a, iss, BreakerOpen)
	if n := e.iss.JWKSFetches(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}

	// Half-open, server still down: the probe hits it, fails, and reopens.
	pollState(t, e.a, iss, BreakerHalfOpen)
	wantReject(t, attempt(), http.StatusServiceUnavailable, "", ReasonKeysUnavailable, tok)
	if n := e.iss.JWKSFetches(); n != 3 {
		t.Fatalf("%d fetches after a half-open probe, want 3", n)
	}
	wantState(t, e.a, iss, BreakerOpen)
	if err := h.lastCall(t, CallJWKS).err; err == nil || errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("probe reported %v, want the server's error", err)
	}

	// Recovered: the next probe succeeds and closes the breaker.
	e.iss.SetJWKSDown(false)
	pollState(t, e.a, iss, BreakerHalfOpen)
	if err := attempt(); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	wantState(t, e.a, iss, BreakerClosed)
	if c := h.lastCall(t, CallJWKS); c.err != nil || c.d <= 0 {
		t.Fatalf("recovery call %+v", c)
	}
	if _, ok := e.a.KeyAges()[iss]; !ok {
		t.Fatal("no key age after a successful fetch")
	}
}

// TestBreakerIntrospection: a failing introspection endpoint opens its
// breaker; requests then fail closed without reaching it, while JWTs from
// the same issuer keep validating. Well-formed refusals do not count.
func TestBreakerIntrospection(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mode   ti.IntrospectionMode
		secret string // "" → the right one
		opens  bool
		status int
		reason string
	}{
		{name: "500", mode: ti.IntrospectionError, opens: true, status: http.StatusServiceUnavailable, reason: ReasonIntrospection},
		{name: "timeout", mode: ti.IntrospectionHang, opens: true, status: http.StatusServiceUnavailable, reason: ReasonIntrospection},
		{name: "active false", status: http.StatusUnauthorized, reason: ReasonInactive},
		{name: "401 invalid_client", secret: "wrong", status: http.StatusServiceUnavailable, reason: ReasonIntrospection},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHookRec()
			e := newEnv(t, envOpts{
				issuer: ti.Options{ClientID: "gw", ClientSecret: "right"},
				egress: func(c *egress.Config) { c.Timeout = 100 * time.Millisecond },
				deps:   h.install,
				cfg: func(c *IssuerConfig) {
					secret := tt.secret
					if secret == "" {
						secret = "right"
					}
					c.Introspection = &IntrospectionConfig{ClientID: "gw", ClientSecret: []byte(secret)}
				},
			})
			iss := e.iss.URL()
			e.iss.SetIntrospectionMode(tt.mode)
			code := ""
			if tt.status == http.StatusUnauthorized {
				code = CodeInvalidToken
			}
			const n = DefaultBreakerFailures + 3
			for i := range n {
				tok := fmt.Sprintf("opq_unknown_%d", i) // distinct: inactive answers are cached
				if tt.reason != ReasonInactive {
					tok = e.iss.MintOpaque(e.claims())
				}
				_, err := e.auth(tok)
				wantReject(t, err, tt.status, code, tt.reason, tok)
				if tt.opens && i >= DefaultBreakerFailures && !errors.Is(err, ErrCircuitOpen) {
					t.Fatalf("request %d: %v, want a breaker rejection", i, err)
				}
				for _, c := range mustCalls(h) {
					noTokenBytes(t, tok, fmt.Sprint(c.err))
				}
				noTokenBytes(t, tok, e.logs.String())
			}
			wantHits, want := n, BreakerClosed
			if tt.opens {
				wantHits, want = DefaultBreakerFailures, BreakerOpen
			}
			if got := e.iss.IntrospectionRequests(); got != wantHits {
				t.Fatalf("%d introspection requests, want %d", got, wantHits)
			}
			wantState(t, e.a, iss, want)
			// The JWKS breaker is separate: JWTs still validate.
			e.mustAuth(e.mint())

			// Every call was reported, by name.
			names := map[string]int{}
			for _, c := range mustCalls(h) {
				if c.issuer != iss || c.d < 0 {
					t.Fatalf("call %+v", c)
				}
				names[c.call]++
			}
			if names[CallDiscovery] != 1 || names[CallJWKS] != 1 || names[CallIntrospection] != n || len(names) != 3 {
				t.Fatalf("calls by name %v", names)
			}
			if rejected := countCalls(h, CallIntrospection, func(err error) bool { return errors.Is(err, ErrCircuitOpen) }); rejected != n-wantHits {
				t.Fatalf("%d rejections reported, want %d", rejected, n-wantHits)
			}
		})
	}
}

// newStaticServer serves h over plain HTTP until the test ends and
// returns its URL.
func newStaticServer(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func mustCalls(h *hookRec) []callRec {
	c, _, _ := h.snapshot()
	return c
}

// TestBreakerDiscovery: a 500 or an unparseable document at every metadata
// location counts against the discovery breaker; metadata naming another
// issuer proves the server is up and does not.
func TestBreakerDiscovery(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int // served for every metadata location; 0 → the issuer's own
		doc    string
		opens  bool
	}{
		{name: "500", status: http.StatusInternalServerError, opens: true},
		{name: "mismatched issuer", status: http.StatusOK, doc: `{"issuer":"https://other.example.com"}`},
		{name: "not json", status: http.StatusOK, doc: `{"issuer":`, opens: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			hits := 0
			srv := newStaticServer(t, func(w http.ResponseWriter, _ *http.Request) {
				mu.Lock()
				hits++
				mu.Unlock()
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.doc))
			})
			h := newHookRec()
			var d Deps
			h.install(&d)
			clk := newClock()
			d.Now = clk.Now
			minter := ti.New(t, ti.Options{Now: clk.Now})
			tok := minter.Mint(ti.Claims{Issuer: srv, Subject: "alice", Audience: []string{resource}})
			a, err := New(Config{Issuers: []IssuerConfig{{Issuer: srv, BreakerFailures: 2,
				HTTP: mustEgress(t, egress.Config{AllowHTTPLoopback: true})}}}, d)
			if err != nil {
				t.Fatal(err)
			}
			iss := srv
			for range 4 {
				clk.Advance(DefaultUnknownKIDCooldown)
				_, err := a.Authenticate(context.Background(), Request{Header: bearer(tok), Resource: resource})
				wantReject(t, err, http.StatusServiceUnavailable, "", ReasonKeysUnavailable, tok)
			}
			mu.Lock()
			got := hits
			mu.Unlock()
			want, state := 4*2, BreakerClosed // two locations per attempt
			if tt.opens {
				want, state = 2*2, BreakerOpen
			}
			if got != want {
				t.Fatalf("%d metadata hits, want %d", got, want)
			}
			wantState(t, a, iss, state)
			if c := h.lastCall(t, CallDiscovery); c.err == nil || errors.Is(c.err, ErrCircuitOpen) != tt.opens {
				t.Fatalf("last discovery call %+v", c)
			}
		})
	}
}

// TestRefreshFailureHookAndBackgroundBreaker: failed background refreshes
// call OnRefreshFailure, and the JWKS breaker opens under Run even though
// each refresh's rediscovery succeeds; then Run stops hitting the JWKS.
func TestRefreshFailureHookAndBackgroundBreaker(t *testing.T) {
	h := newHookRec()
	e := newEnv(t, envOpts{deps: h.install, cfg: func(c *IssuerConfig) { c.RefreshInterval = time.Millisecond }})
	iss := e.iss.URL()
	e.iss.SetJWKSDown(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	h.waitFor(t, "breaker rejections", func(calls []callRec, _, refresh []string) bool {
		n := 0
		for _, c := range calls {
			if c.call == CallJWKS && errors.Is(c.err, ErrCircuitOpen) {
				n++
			}
		}
		return n >= 2 && len(refresh) >= DefaultBreakerFailures+2
	})
	if n := e.iss.JWKSFetches(); n != DefaultBreakerFailures {
		t.Fatalf("%d JWKS fetches under Run, want %d", n, DefaultBreakerFailures)
	}
	wantState(t, e.a, iss, BreakerOpen)
	_, _, refresh := h.snapshot()
	for _, r := range refresh {
		if r != iss {
			t.Fatalf("refresh failure for %q", r)
		}
	}
}

// TestBreakerStatesAndKeyAges covers several issuers: one with keys, one
// introspection-only, one never fetched.
func TestBreakerStatesAndKeyAges(t *testing.T) {
	clk := newClock()
	withKeys := ti.New(t, ti.Options{Now: clk.Now})
	introOnly := ti.New(t, ti.Options{Now: clk.Now, ClientID: "gw", ClientSecret: "right",
		MetadataExtra: map[string]any{"jwks_uri": nil}})
	never := ti.New(t, ti.Options{Now: clk.Now})
	hc := mustEgress(t, egress.Config{AllowHTTPLoopback: true})
	a, err := New(Config{Issuers: []IssuerConfig{
		{Issuer: withKeys.URL(), HTTP: hc},
		{Issuer: introOnly.URL(), HTTP: hc, Introspection: &IntrospectionConfig{ClientID: "gw", ClientSecret: []byte("right")}},
		{Issuer: never.URL(), HTTP: hc},
	}}, Deps{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{withKeys.URL(): BreakerClosed, introOnly.URL(): BreakerClosed, never.URL(): BreakerClosed}
	if got := a.BreakerStates(); !mapsEqual(got, all) {
		t.Fatalf("BreakerStates %v", got)
	}
	if got := a.KeyAges(); len(got) != 0 {
		t.Fatalf("KeyAges before any fetch: %v", got)
	}
	c := ti.Claims{Subject: "alice", Audience: []string{resource}, ClientID: "client-1"}
	if _, err := a.Authenticate(context.Background(), Request{Header: bearer(withKeys.Mint(c)), Resource: resource}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(context.Background(), Request{Header: bearer(introOnly.MintOpaque(c)), Resource: resource}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(90 * time.Second)
	if got := a.KeyAges(); len(got) != 1 || got[withKeys.URL()] != 90*time.Second {
		t.Fatalf("KeyAges %v, want only %s at 90s", got, withKeys.URL())
	}
	if got := a.BreakerStates(); !mapsEqual(got, all) {
		t.Fatalf("BreakerStates %v", got)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestClassify(t *testing.T) {
	status := func(code int) error {
		return fmt.Errorf("get https://as.example.com/jwks: %w", &egress.StatusError{StatusCode: code})
	}
	syntaxErr := json.Unmarshal([]byte("<html>"), new(any))
	for _, tt := range []struct {
		name string
		err  error
		want verdict
	}{
		{"nil", nil, verdictUp},
		{"500", status(500), verdictFault},
		{"503", status(503), verdictFault},
		{"429", status(429), verdictFault},
		{"408", status(408), verdictFault},
		{"404", status(404), verdictUp},
		{"401", status(401), verdictUp},
		{"redirect", fmt.Errorf("get x: %w (status 302)", egress.ErrRedirect), verdictUp},
		{"url refused", fmt.Errorf("%w: scheme", egress.ErrURLNotAllowed), verdictExcluded},
		{"address refused", fmt.Errorf("dial: %w", egress.ErrAddressNotAllowed), verdictExcluded},
		{"timeout", fmt.Errorf("post x: %w", context.DeadlineExceeded), verdictFault},
		{"bad json", fmt.Errorf("decode json: %w", syntaxErr), verdictFault},
		{"too large", fmt.Errorf("get x: %w", egress.ErrTooLarge), verdictFault},
		{"plain", errors.New("connection refused"), verdictFault},
		{"answered", answered(errors.New("introspection answered status 400")), verdictUp},
		{"caller gone", &goneError{context.Canceled}, verdictExcluded},
		{"issuer mismatch", fmt.Errorf("metadata u: %w", errIssuerMismatch), verdictUp},
		{"join 404 and 500", errors.Join(status(404), status(500)), verdictFault},
		{"join 404 and mismatch", errors.Join(status(404), fmt.Errorf("m: %w", errIssuerMismatch)), verdictUp},
		{"join of refusals by the guard", errors.Join(egress.ErrURLNotAllowed, egress.ErrAddressNotAllowed), verdictExcluded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.err); got != tt.want {
				t.Fatalf("classify(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// BenchmarkCallASOpen is the cost of a call refused by an open breaker.
func BenchmarkCallASOpen(b *testing.B) {
	ic := IssuerConfig{Issuer: "https://as.example.com", BreakerFailures: 1, BreakerOpenTimeout: time.Hour}
	s := newIssuerState(ic, discardLogger(), time.Now, hooks{OnCall: func(string, string, time.Duration, error) {}})
	boom := errors.New("down")
	_ = s.callAS(context.Background(), CallJWKS, func(context.Context) error { return boom })
	b.ReportAllocs()
	for b.Loop() {
		if err := s.callAS(context.Background(), CallJWKS, func(context.Context) error { return nil }); !errors.Is(err, ErrCircuitOpen) {
			b.Fatal(err)
		}
	}
}

// TestBreakerIgnoresCallerGone: an introspection abandoned because the
// request's context ended says nothing about the server: even with a
// breaker that opens on the first failure, it stays closed.
func TestBreakerIgnoresCallerGone(t *testing.T) {
	h := newHookRec()
	e := newEnv(t, envOpts{
		issuer: ti.Options{ClientID: "gw", ClientSecret: "right"},
		egress: func(c *egress.Config) { c.Timeout = 5 * time.Second },
		deps:   h.install,
		cfg: func(c *IssuerConfig) {
			c.BreakerFailures = 1
			c.Introspection = &IntrospectionConfig{ClientID: "gw", ClientSecret: []byte("right")}
		},
	})
	e.mustAuth(e.mint()) // discovery and keys, outside the request below
	e.iss.SetIntrospectionMode(ti.IntrospectionHang)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	tok := e.iss.MintOpaque(e.claims())
	_, err := e.a.Authenticate(ctx, Request{Header: bearer(tok), Resource: resource})
	wantReject(t, err, http.StatusServiceUnavailable, "", ReasonIntrospection, tok)
	wantState(t, e.a, e.iss.URL(), BreakerClosed)
	if c := h.lastCall(t, CallIntrospection); c.err == nil || errors.Is(c.err, ErrCircuitOpen) {
		t.Fatalf("introspection call %+v", c)
	}
	// A real server failure with the same settings opens it at once.
	e.iss.SetIntrospectionMode(ti.IntrospectionError)
	_, err = e.auth(e.iss.MintOpaque(e.claims()))
	wantReject(t, err, http.StatusServiceUnavailable, "", ReasonIntrospection, "")
	wantState(t, e.a, e.iss.URL(), BreakerOpen)
}
