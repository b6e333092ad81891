package inbound

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, tt := range []struct {
		name    string
		remote  string
		xff     []string // X-Forwarded-For header values, in order
		trusted []netip.Prefix
		want    string // "" → the zero Addr
	}{
		{"IPv4 peer", "192.0.2.1:1234", nil, trusted, "192.0.2.1"},
		{"IPv6 peer", "[2001:db8::1]:443", nil, trusted, "2001:db8::1"},
		{"IPv4-mapped IPv6 peer is unmapped", "[::ffff:192.0.2.1]:1234", nil, trusted, "192.0.2.1"},
		{"peer without port", "192.0.2.1", nil, trusted, "192.0.2.1"},
		{"unparsable peer", "not-an-ip:1", nil, trusted, ""},
		{"empty peer", "", nil, trusted, ""},
		{"XFF from an untrusted peer is ignored", "203.0.113.7:1", []string{"1.2.3.4"}, trusted, "203.0.113.7"},
		{"XFF ignored without trusted proxies", "10.0.0.1:1", []string{"1.2.3.4"}, nil, "10.0.0.1"},
		{"XFF from a trusted proxy", "10.0.0.1:1", []string{"198.51.100.9"}, trusted, "198.51.100.9"},
		{"trusted IPv4-mapped peer", "[::ffff:10.0.0.1]:1", []string{"198.51.100.9"}, trusted, "198.51.100.9"},
		{"right-most untrusted hop", "10.0.0.1:1", []string{"1.1.1.1, 2.2.2.2, 10.0.0.2, 10.9.9.9"}, trusted, "2.2.2.2"},
		{"spoofed left-most entry is not used", "10.0.0.1:1", []string{"127.0.0.1, 203.0.113.5"}, trusted, "203.0.113.5"},
		{"spaces around entries", "10.0.0.1:1", []string{"  203.0.113.5  ,10.0.0.3 "}, trusted, "203.0.113.5"},
		{"IPv6 hop", "[fd00::1]:1", []string{"2001:db8::7"}, trusted, "2001:db8::7"},
		{"IPv4-mapped hop is unmapped and seen as trusted", "10.0.0.1:1", []string{"203.0.113.5, ::ffff:10.0.0.4"}, trusted, "203.0.113.5"},
		{"IPv4-mapped hop is unmapped", "10.0.0.1:1", []string{"::ffff:203.0.113.5"}, trusted, "203.0.113.5"},
		{"all hops trusted: left-most", "10.0.0.1:1", []string{"10.0.0.2, 10.0.0.3"}, trusted, "10.0.0.2"},
		{"malformed right-most entry: the proxy", "10.0.0.1:1", []string{"1.1.1.1, garbage"}, trusted, "10.0.0.1"},
		{"malformed entry after a trusted hop: that hop", "10.0.0.1:1", []string{"1.1.1.1, bad, 10.0.0.7"}, trusted, "10.0.0.7"},
		{"malformed entry left of the client is ignored", "10.0.0.1:1", []string{"bad, 198.51.100.9"}, trusted, "198.51.100.9"},
		{"entry with a port is malformed", "10.0.0.1:1", []string{"198.51.100.9:5555"}, trusted, "10.0.0.1"},
		{"empty XFF header", "10.0.0.1:1", []string{""}, trusted, "10.0.0.1"},
		{"trailing comma", "10.0.0.1:1", []string{"198.51.100.9,"}, trusted, "10.0.0.1"},
		{"multiple XFF headers read as one list", "10.0.0.1:1", []string{"198.51.100.1", "198.51.100.2, 10.0.0.5"}, trusted, "198.51.100.2"},
		{"multiple XFF headers, last one trusted", "10.0.0.1:1", []string{"198.51.100.1", "10.0.0.5"}, trusted, "198.51.100.1"},
		{"no XFF from a trusted proxy", "10.0.0.1:1", nil, trusted, "10.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got := ClientIP(r, tt.trusted)
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Errorf("ClientIP = %v, want %v", got, want)
			}
		})
	}
}

// fakeClock is a settable clock for the rate limiter.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

// allowN calls Allow n times and returns how many were allowed.
func allowN(l *RateLimiter, ip netip.Addr, n int) int {
	ok := 0
	for range n {
		if l.Allow(ip) {
			ok++
		}
	}
	return ok
}

func TestRateLimiterBurstAndRefill(t *testing.T) {
	clk := newClock()
	l := NewRateLimiter(2, 3, 0, clk.Now) // 2/s, burst 3
	ip := netip.MustParseAddr("192.0.2.1")
	if got := allowN(l, ip, 10); got != 3 {
		t.Fatalf("burst: %d allowed, want 3", got)
	}
	clk.Advance(499 * time.Millisecond)
	if l.Allow(ip) {
		t.Fatal("allowed before a token refilled")
	}
	clk.Advance(time.Millisecond)
	if !l.Allow(ip) {
		t.Fatal("refused after 500ms at 2/s")
	}
	if l.Allow(ip) {
		t.Fatal("second request allowed after one token refilled")
	}
	clk.Advance(time.Hour)
	if got := allowN(l, ip, 10); got != 3 {
		t.Fatalf("after a long idle: %d allowed, want the burst 3", got)
	}
}

func TestRateLimiterGrouping(t *testing.T) {
	for _, tt := range []struct {
		name string
		a, b string
		same bool
	}{
		{"different IPv4 clients", "192.0.2.1", "192.0.2.2", false},
		{"same IPv6 /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"zone is ignored", "fe80::1%eth0", "fe80::2%eth1", true},
		{"different IPv6 /64", "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"IPv4 and its mapped form", "192.0.2.1", "::ffff:192.0.2.1", true},
		{"different IPv4-mapped clients", "::ffff:192.0.2.1", "::ffff:198.51.100.1", false},
		{"IPv4-mapped client and IPv6 ::/64", "::ffff:192.0.2.1", "::1", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := NewRateLimiter(1, 2, 0, newClock().Now) // the clock never moves
			a, b := netip.MustParseAddr(tt.a), netip.MustParseAddr(tt.b)
			if got := allowN(l, a, 5); got != 2 {
				t.Fatalf("%v: %d allowed, want 2", a, got)
			}
			got := allowN(l, b, 5)
			if tt.same && got != 0 {
				t.Errorf("%v shares %v's bucket but %d were allowed", b, a, got)
			}
			if !tt.same && got != 2 {
				t.Errorf("%v has its own bucket but %d were allowed, want 2", b, got)
			}
		})
	}
}

func TestRateLimiterDisabled(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.1")
	for _, rps := range []float64{0, -1} {
		l := NewRateLimiter(rps, 1, 1, nil)
		if got := allowN(l, ip, 100); got != 100 {
			t.Errorf("rps %v: %d of 100 allowed, want all", rps, got)
		}
	}
	var nilLimiter *RateLimiter
	if !nilLimiter.Allow(ip) {
		t.Error("nil limiter refused")
	}
}

func TestRateLimiterEvictsLeastRecentlyUsed(t *testing.T) {
	l := NewRateLimiter(1, 1, 2, newClock().Now) // the clock never moves: no refill
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	for _, step := range []struct {
		ip   netip.Addr
		want bool
		why  string
	}{
		{a, true, "a: new"},
		{b, true, "b: new"},
		{a, false, "a: empty, and now most recent"},
		{c, true, "c: new; evicts b, the least recent"},
		{a, false, "a: still tracked, still empty"},
		{b, true, "b: forgotten, so a fresh bucket; evicts c"},
		{c, true, "c: forgotten, fresh; evicts a"},
		{a, true, "a: forgotten, fresh"},
	} {
		if got := l.Allow(step.ip); got != step.want {
			t.Fatalf("%s: Allow = %v, want %v", step.why, got, step.want)
		}
	}
}

func TestRateLimiterBounded(t *testing.T) {
	for _, tt := range []struct {
		maxClients, want int
	}{
		{10, 10},
		{0, 65536},
		{-5, 65536},
	} {
		t.Run(fmt.Sprint(tt.maxClients), func(t *testing.T) {
			l := NewRateLimiter(1, 1, tt.maxClients, newClock().Now)
			if l.max != tt.want {
				t.Fatalf("max = %d, want %d", l.max, tt.want)
			}
			n := min(tt.want+100, 1000)
			for i := range n {
				l.Allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
			}
			want := min(n, tt.want)
			if l.lru.Len() != want || len(l.m) != want {
				t.Errorf("tracking %d (list) / %d (map) clients, want %d", l.lru.Len(), len(l.m), want)
			}
		})
	}
}

// TestRateLimiterConcurrent checks under -race that concurrent callers
// share one bucket: with a frozen clock exactly the burst is allowed,
// while other clients are added to the table.
func TestRateLimiterConcurrent(t *testing.T) {
	l := NewRateLimiter(1, 50, 16, newClock().Now) // room for all: no eviction
	ip := netip.MustParseAddr("2001:db8::1")
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
	)
	for g := range 8 {
		wg.Go(func() {
			n := allowN(l, ip, 20)
			// Other clients churn the table meanwhile.
			l.Allow(netip.AddrFrom4([4]byte{192, 0, 2, byte(g)}))
			mu.Lock()
			allowed += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if allowed != 50 {
		t.Errorf("%d allowed, want exactly the burst 50", allowed)
	}
}
