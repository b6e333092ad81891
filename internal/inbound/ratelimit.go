package inbound

import (
	"container/list"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ClientIP returns the address a request came from: the TCP peer, or, when
// the peer is one of trusted proxies, the right-most X-Forwarded-For entry
// that is not itself a trusted proxy.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !inPrefixes(peer, trusted) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // malformed: do not trust anything further left
		}
		a = a.Unmap()
		if !inPrefixes(a, trusted) {
			return a
		}
		peer = a
	}
	return peer
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// RateLimiter is a token bucket per client IP (per /64 for IPv6, since a
// single host usually controls a whole /64), with a bounded number of
// tracked clients: the least recently seen is forgotten first.
type RateLimiter struct {
	rps   rate.Limit
	burst int
	max   int
	now   func() time.Time

	mu  sync.Mutex // guards m and lru
	m   map[netip.Prefix]*list.Element
	lru *list.List // of *bucket, most recent first
}

type bucket struct {
	key netip.Prefix
	lim *rate.Limiter
}

// NewRateLimiter allows rps requests per second with the given burst per
// client. rps <= 0 disables limiting (Allow always true). maxClients bounds
// memory (0 → 65536). now nil → time.Now.
func NewRateLimiter(rps float64, burst, maxClients int, now func() time.Time) *RateLimiter {
	if maxClients <= 0 {
		maxClients = 65536
	}
	if now == nil {
		now = time.Now
	}
	return &RateLimiter{rps: rate.Limit(rps), burst: burst, max: maxClients, now: now,
		m: map[netip.Prefix]*list.Element{}, lru: list.New()}
}

// Allow reports whether a request from ip may proceed now.
func (l *RateLimiter) Allow(ip netip.Addr) bool {
	if l == nil || l.rps <= 0 {
		return true
	}
	ip = ip.Unmap() // an IPv4-mapped address is its IPv4 client, not ::/64
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	key, _ := ip.Prefix(bits)
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if el, ok := l.m[key]; ok {
		l.lru.MoveToFront(el)
		b = el.Value.(*bucket)
	} else {
		b = &bucket{key: key, lim: rate.NewLimiter(l.rps, l.burst)}
		l.m[key] = l.lru.PushFront(b)
		for l.lru.Len() > l.max {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.m, old.Value.(*bucket).key)
		}
	}
	return b.lim.AllowN(l.now(), 1)
}
