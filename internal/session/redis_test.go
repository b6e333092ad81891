package session_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/mcpgate/mcpgate/internal/redisconn"
	"github.com/mcpgate/mcpgate/internal/redistest"
	"github.com/mcpgate/mcpgate/internal/session"
	"github.com/mcpgate/mcpgate/internal/session/sessiontest"
)

var (
	alice = session.Principal{Issuer: "https://as", Subject: "alice", ClientID: "client-1"}
	bob   = session.Principal{Issuer: "https://as", Subject: "bob", ClientID: "client-1"}
)

// newConn opens a connection (a replica's) to srv with key prefix prefix.
func newConn(t testing.TB, srv *redistest.Server, prefix string, timeout time.Duration) *redisconn.Conn {
	t.Helper()
	c, err := redisconn.Open(redisconn.Config{URL: srv.URL(), PasswordFile: srv.PasswordFile, KeyPrefix: prefix,
		Timeout: timeout, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newRedis returns a store on conn configured like cfg.
func newRedis(t testing.TB, conn *redisconn.Conn, cfg session.Config) *session.Redis {
	t.Helper()
	r, err := session.NewRedis(session.RedisConfig{Conn: conn, MaxSessions: cfg.MaxSessions, MaxPerPrincipal: cfg.MaxPerPrincipal,
		IdleTimeout: cfg.IdleTimeout, MaxPending: cfg.MaxPending, TaskTTL: cfg.TaskTTL, Now: cfg.Now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rawClient is a plain client for inspecting and disturbing the server.
func rawClient(t testing.TB, srv *redistest.Server) rueidis.Client {
	t.Helper()
	return srv.Client(t)
}

// settle makes a round trip on every connection of each conn's client:
// whatever Redis sent a connection before (an invalidation) has then been
// read. A client's next request reaches a replica at least a network
// round trip after the previous answer, which is what this stands for.
// rueidis spreads a client's cached reads over up to four connections by
// key slot, so settle reads a fresh key in a slot for each.
func settle(t testing.TB, conns ...*redisconn.Conn) {
	t.Helper()
	for _, c := range conns {
		cl := c.Client()
		for _, tag := range slotTags() {
			key := c.Key("settle:" + redisconn.NewID() + ":{" + tag + "}")
			if err := cl.DoCache(context.Background(), cl.B().Get().Key(key).Cache(), time.Second).Error(); err != nil && !rueidis.IsRedisNil(err) {
				t.Fatal(err)
			}
		}
	}
}

// slotTags returns hash tags whose key slots are 0, 1, 2 and 3 modulo 4.
func slotTags() []string {
	tags := make([]string, 4)
	for i, found := 0, 0; found < 4; i++ {
		tag := strconv.Itoa(i)
		if m := crc16(tag) % 16384 % 4; tags[m] == "" {
			tags[m] = tag
			found++
		}
	}
	return tags
}

// crc16 is Redis Cluster's key slot hash (CRC-16/XMODEM).
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

func bind(t testing.TB, b session.Bindings, id string, p session.Principal, route string) {
	t.Helper()
	s, err := b.Reserve(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(context.Background(), id, session.Binding{Principal: p, Route: route, Version: "2025-11-25"}); err != nil {
		t.Fatal(err)
	}
}

func TestRedisSuite(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	sessiontest.Run(t, func(t *testing.T, _ *sessiontest.Clock, cfg session.Config) session.Bindings {
		return newRedis(t, newConn(t, srv, fmt.Sprintf("suite%d:", n.Add(1)), 2*time.Second), cfg)
	})
}

// TestRedisSuiteTwoReplicas runs the conformance suite with the calls
// going alternately to two stores (two replicas) on one server.
func TestRedisSuiteTwoReplicas(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	sessiontest.Run(t, func(t *testing.T, _ *sessiontest.Clock, cfg session.Config) session.Bindings {
		prefix := fmt.Sprintf("pair%d:", n.Add(1))
		a := &replicas{t: t}
		for range 2 {
			c := newConn(t, srv, prefix, 2*time.Second)
			a.conns = append(a.conns, c)
			a.stores = append(a.stores, newRedis(t, c, cfg))
		}
		return a
	})
}

// replicas sends each call to the next of several stores, as a load
// balancer does, and settles every connection after each call.
type replicas struct {
	t      testing.TB
	stores []session.Bindings
	conns  []*redisconn.Conn
	n      atomic.Uint64
}

func (a *replicas) next() session.Bindings {
	return a.stores[a.n.Add(1)%uint64(len(a.stores))]
}

func (a *replicas) settle() { settle(a.t, a.conns...) }

func (a *replicas) Lookup(ctx context.Context, id string, p session.Principal, route string) (session.Binding, error) {
	defer a.settle()
	return a.next().Lookup(ctx, id, p, route)
}

func (a *replicas) Reserve(ctx context.Context, p session.Principal) (session.Slot, error) {
	defer a.settle()
	s, err := a.next().Reserve(ctx, p)
	if err != nil {
		return nil, err
	}
	return settlingSlot{s, a}, nil
}

type settlingSlot struct {
	session.Slot
	a *replicas
}

func (s settlingSlot) Commit(ctx context.Context, id string, b session.Binding) error {
	defer s.a.settle()
	return s.Slot.Commit(ctx, id, b)
}

func (s settlingSlot) Release() {
	defer s.a.settle()
	s.Slot.Release()
}

func (a *replicas) Delete(ctx context.Context, id string, p session.Principal) error {
	defer a.settle()
	return a.next().Delete(ctx, id, p)
}

func (a *replicas) SetVersion(ctx context.Context, id string, p session.Principal, v string) error {
	defer a.settle()
	return a.next().SetVersion(ctx, id, p, v)
}

func (a *replicas) AddPending(ctx context.Context, id, reqID string) error {
	defer a.settle()
	return a.next().AddPending(ctx, id, reqID)
}

func (a *replicas) TakePending(ctx context.Context, id, reqID string) (bool, error) {
	defer a.settle()
	return a.next().TakePending(ctx, id, reqID)
}

func (a *replicas) BindTask(ctx context.Context, route, taskID string, p session.Principal) error {
	defer a.settle()
	return a.next().BindTask(ctx, route, taskID, p)
}

func (a *replicas) TaskOwnedBy(ctx context.Context, route, taskID string, p session.Principal) (bool, error) {
	defer a.settle()
	return a.next().TaskOwnedBy(ctx, route, taskID, p)
}

// commandCalls counts the commands the server ran, except the INFO that
// asks and keep-alive PINGs.
func commandCalls(t testing.TB, raw rueidis.Client) map[string]int {
	t.Helper()
	s, err := raw.Do(context.Background(), raw.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok || name == "cmdstat_info" || name == "cmdstat_ping" {
			continue
		}
		n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		calls[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return calls
}

func callsSince(before, after map[string]int) (int, map[string]int) {
	diff, total := map[string]int{}, 0
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			diff[k] = d
			total += d
		}
	}
	return total, diff
}

// TestRedisDeleteSeenByOtherReplica: replica B answers a session from its
// cache until replica A deletes it; B's next lookup is refused.
func TestRedisDeleteSeenByOtherReplica(t *testing.T) {
	srv := redistest.Start(t)
	ca, cb := newConn(t, srv, "p:", time.Second), newConn(t, srv, "p:", time.Second)
	a, b := newRedis(t, ca, session.Config{}), newRedis(t, cb, session.Config{})
	ctx := t.Context()
	raw := rawClient(t, srv)
	for i := range 20 {
		id := fmt.Sprint("sess-", i)
		bind(t, a, id, alice, "docs")
		for range 2 { // the second from B's cache
			if _, err := b.Lookup(ctx, id, alice, "docs"); err != nil {
				t.Fatal(err)
			}
		}
		before := commandCalls(t, raw)
		if _, err := b.Lookup(ctx, id, alice, "docs"); err != nil {
			t.Fatal(err)
		}
		if n, d := callsSince(before, commandCalls(t, raw)); n != 0 {
			t.Fatalf("B's lookup was not answered from its cache: %v", d)
		}
		if err := a.SetVersion(ctx, id, alice, "2026-01-01"); err != nil {
			t.Fatal(err)
		}
		settle(t, cb)
		if got, err := b.Lookup(ctx, id, alice, "docs"); err != nil || got.Version != "2026-01-01" {
			t.Fatalf("B after A's SetVersion: %+v %v", got, err)
		}
		if err := a.Delete(ctx, id, alice); err != nil {
			t.Fatal(err)
		}
		settle(t, cb)
		if _, err := b.Lookup(ctx, id, alice, "docs"); !errors.Is(err, session.ErrUnknown) {
			t.Fatalf("B after A's Delete: %v, want ErrUnknown", err)
		}
	}
	// Without the client's round trip in between, B still learns of the
	// Delete within moments (Redis pushes the invalidation to B before it
	// answers A).
	bind(t, a, "sess-x", alice, "docs")
	b.Lookup(ctx, "sess-x", alice, "docs")
	if err := a.Delete(ctx, "sess-x", alice); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		_, err := b.Lookup(ctx, "sess-x", alice, "docs")
		if errors.Is(err, session.ErrUnknown) {
			break
		}
		if err != nil || time.Since(start) > time.Second {
			t.Fatalf("B still answers a deleted session after %v: %v", time.Since(start), err)
		}
	}
	t.Logf("B refused the deleted session %v after A's Delete returned", time.Since(start))
}

// TestRedisReadYourWrites: a replica's own write is seen by its next
// lookup at once, although Redis sends the invalidation of its cache after
// the write's reply.
func TestRedisReadYourWrites(t *testing.T) {
	srv := redistest.Start(t)
	st := newRedis(t, newConn(t, srv, "p:", time.Second), session.Config{})
	ctx := t.Context()
	for i := range 300 {
		id := fmt.Sprint("sess-", i)
		if _, err := st.Lookup(ctx, id, alice, "docs"); !errors.Is(err, session.ErrUnknown) { // cached: absent
			t.Fatal(err)
		}
		bind(t, st, id, alice, "docs")
		if _, err := st.Lookup(ctx, id, alice, "docs"); err != nil {
			t.Fatalf("iteration %d: lookup right after commit: %v", i, err)
		}
		if err := st.SetVersion(ctx, id, alice, "v2"); err != nil {
			t.Fatal(err)
		}
		if got, err := st.Lookup(ctx, id, alice, "docs"); err != nil || got.Version != "v2" {
			t.Fatalf("iteration %d: lookup right after SetVersion: %+v %v", i, got, err)
		}
		if err := st.Delete(ctx, id, alice); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Lookup(ctx, id, alice, "docs"); !errors.Is(err, session.ErrUnknown) {
			t.Fatalf("iteration %d: lookup right after delete: %v", i, err)
		}
	}
}

// TestRedisLookupCached: a lookup of a session this replica has read
// before costs the server no command, refused lookups included.
func TestRedisLookupCached(t *testing.T) {
	srv := redistest.Start(t)
	c := sessiontest.NewClock()
	st := newRedis(t, newConn(t, srv, "p:", time.Second), session.Config{Now: c.Now})
	raw := rawClient(t, srv)
	ctx := t.Context()
	bind(t, st, "sess-1", alice, "docs")
	if _, err := st.Lookup(ctx, "sess-1", alice, "docs"); err != nil { // fills the cache
		t.Fatal(err)
	}
	before := commandCalls(t, raw)
	for range 100 {
		if _, err := st.Lookup(ctx, "sess-1", alice, "docs"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Lookup(ctx, "sess-1", bob, "docs"); !errors.Is(err, session.ErrUnknown) {
			t.Fatal(err)
		}
	}
	if n, d := callsSince(before, commandCalls(t, raw)); n != 0 {
		t.Errorf("200 cached lookups ran %d commands: %v", n, d)
	}
}

// TestRedisTouchBounded: Lookup records a session's use at most once per
// IdleTimeout/4, and that keeps the session alive.
func TestRedisTouchBounded(t *testing.T) {
	srv := redistest.Start(t)
	c := sessiontest.NewClock()
	st := newRedis(t, newConn(t, srv, "p:", time.Second), session.Config{IdleTimeout: time.Minute, Now: c.Now})
	raw := rawClient(t, srv)
	bind(t, st, "sess-1", alice, "docs")
	before := commandCalls(t, raw)
	for range 300 { // 5 minutes, 5 times the idle timeout
		c.Advance(time.Second)
		if _, err := st.Lookup(t.Context(), "sess-1", alice, "docs"); err != nil {
			t.Fatalf("a session in use expired: %v", err)
		}
	}
	_, d := callsSince(before, commandCalls(t, raw))
	if w := d["evalsha"] + d["eval"]; w < 18 || w > 21 {
		t.Errorf("300 lookups over 5 minutes wrote %d times, want one per 15s (20): %v", w, d)
	}
}

// TestRedisKeysHashedWithTTL: no session id, request id, task id or
// identity appears in a key or a value, and every key expires.
func TestRedisKeysHashedWithTTL(t *testing.T) {
	srv := redistest.Start(t)
	idle, taskTTL := 10*time.Minute, 2*time.Hour
	st := newRedis(t, newConn(t, srv, "mcpgate:", time.Second), session.Config{IdleTimeout: idle, TaskTTL: taskTTL})
	raw := rawClient(t, srv)
	ctx := t.Context()
	p := session.Principal{Issuer: "https://idp.example", Subject: "alice@example.com", ClientID: "client-7f3e"}
	const sessID, reqID, taskID = "sess-3f9a1c77d2", "req-4411", "task-9d0e55"
	bind(t, st, sessID, p, "docs")
	if err := st.AddPending(ctx, sessID, reqID); err != nil {
		t.Fatal(err)
	}
	if err := st.BindTask(ctx, "docs", taskID, p); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Reserve(ctx, p); err != nil { // a reservation held
		t.Fatal(err)
	}
	keys, err := raw.Do(ctx, raw.B().Keys().Pattern("*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 6 { // epoch, binding, pending, principal, all, task
		t.Errorf("keys = %q", keys)
	}
	secrets := []string{sessID, reqID, taskID, p.Subject, "alice", p.Issuer, "idp.example", p.ClientID}
	for _, k := range keys {
		var dump string
		switch typ, _ := raw.Do(ctx, raw.B().Type().Key(k).Build()).ToString(); typ {
		case "hash":
			m, _ := raw.Do(ctx, raw.B().Hgetall().Key(k).Build()).AsStrMap()
			dump = fmt.Sprint(m)
		case "zset":
			m, _ := raw.Do(ctx, raw.B().Zrange().Key(k).Min("0").Max("-1").Withscores().Build()).ToAny()
			dump = fmt.Sprint(m)
		default:
			dump, _ = raw.Do(ctx, raw.B().Get().Key(k).Build()).ToString()
		}
		for _, s := range secrets {
			if strings.Contains(k, s) || strings.Contains(dump, s) {
				t.Errorf("key %q (value %q) holds %q", k, dump, s)
			}
		}
		if !strings.HasPrefix(k, "mcpgate:") {
			t.Errorf("key %q lacks the prefix", k)
		}
		ttl, err := raw.Do(ctx, raw.B().Pttl().Key(k).Build()).AsInt64()
		if err != nil || ttl <= 0 {
			t.Errorf("key %q has no TTL (%d, %v)", k, ttl, err)
		}
		if k != "mcpgate:epoch" && ttl > taskTTL.Milliseconds() {
			t.Errorf("key %q TTL %dms exceeds the longest configured lifetime", k, ttl)
		}
		if strings.HasPrefix(k, "mcpgate:sess:b:") || strings.HasPrefix(k, "mcpgate:sess:q:") {
			if ttl > idle.Milliseconds() {
				t.Errorf("session key %q TTL %dms exceeds the idle timeout", k, ttl)
			}
		}
	}
}

// TestRedisUnavailable: with the server gone every method fails within
// its timeout with ErrUnavailable — never ErrUnknown or false — and the
// store works again once the server is back (empty), without a new
// connection: the sessions of the lost data are unknown.
func TestRedisUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	conn := newConn(t, srv, "p:", 300*time.Millisecond)
	st := newRedis(t, conn, session.Config{})
	ctx := t.Context()
	const id = "sess-5b1f0c"
	bind(t, st, id, alice, "docs")
	if _, err := st.Lookup(ctx, id, alice, "docs"); err != nil { // cached
		t.Fatal(err)
	}
	if err := st.BindTask(ctx, "docs", "t1", alice); err != nil {
		t.Fatal(err)
	}
	held, err := st.Reserve(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	// A cached lookup is answered without the server until the client
	// has noticed the closed connection (at once after a crash; after a
	// silent partition, when its keep-alive fails), then never again.
	start, cached := time.Now(), 0
	for {
		if _, err := st.Lookup(ctx, id, alice, "docs"); err != nil {
			break
		}
		if cached++; time.Since(start) > time.Second {
			t.Fatal("lookups still answered from the cache a second after redis died")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("%d lookups answered from the cache after the server was killed; the next failed %v after the kill", cached, time.Since(start))
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Reserve", func() error { _, err := st.Reserve(ctx, alice); return err }},
		{"Lookup", func() error { _, err := st.Lookup(ctx, id, alice, "docs"); return err }},
		{"Commit", func() error { return held.Commit(ctx, "sess-new", session.Binding{Principal: alice, Route: "docs"}) }},
		{"Delete", func() error { return st.Delete(ctx, id, alice) }},
		{"SetVersion", func() error { return st.SetVersion(ctx, id, alice, "v") }},
		{"AddPending", func() error { return st.AddPending(ctx, id, "1") }},
		{"TakePending", func() error { _, err := st.TakePending(ctx, id, "1"); return err }},
		{"BindTask", func() error { return st.BindTask(ctx, "docs", "t2", alice) }},
		{"TaskOwnedBy", func() error { _, err := st.TaskOwnedBy(ctx, "docs", "t1", alice); return err }},
	} {
		start := time.Now()
		err := tc.call()
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s took %v with redis down", tc.name, d)
		}
		if !errors.Is(err, redisconn.ErrUnavailable) || errors.Is(err, session.ErrUnknown) {
			t.Errorf("%s with redis down: %v, want ErrUnavailable", tc.name, err)
		}
		if err != nil && strings.Contains(err.Error(), id) {
			t.Errorf("%s error holds the session id: %v", tc.name, err)
		}
	}
	held.Release() // the slot died with the data; must not panic or block
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := st.Reserve(ctx, bob)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after redis came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := st.Lookup(ctx, id, alice, "docs"); !errors.Is(err, session.ErrUnknown) {
		t.Errorf("a session of the lost data: %v, want ErrUnknown", err)
	}
	if ok, err := st.TaskOwnedBy(ctx, "docs", "t1", alice); ok || err != nil {
		t.Errorf("a task of the lost data: %v %v", ok, err)
	}
	bind(t, st, "sess-after", alice, "docs")
	if _, err := st.Lookup(ctx, "sess-after", alice, "docs"); err != nil {
		t.Errorf("new session after recovery: %v", err)
	}
}

// TestRedisFlush: after a FLUSHALL the old sessions are unknown on every
// replica (the clients initialize again), the caps count from zero and
// new sessions work.
func TestRedisFlush(t *testing.T) {
	srv := redistest.Start(t)
	ca, cb := newConn(t, srv, "p:", time.Second), newConn(t, srv, "p:", time.Second)
	cfg := session.Config{MaxPerPrincipal: 2}
	a, b := newRedis(t, ca, cfg), newRedis(t, cb, cfg)
	ctx := t.Context()
	bind(t, a, "old-1", alice, "docs")
	bind(t, a, "old-2", alice, "docs")
	for _, st := range []*session.Redis{a, b} {
		if _, err := st.Lookup(ctx, "old-1", alice, "docs"); err != nil { // cached on both
			t.Fatal(err)
		}
	}
	if err := a.BindTask(ctx, "docs", "t1", alice); err != nil {
		t.Fatal(err)
	}
	first := ca.Epoch()
	raw := rawClient(t, srv)
	if err := raw.Do(ctx, raw.B().Flushall().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	settle(t, ca, cb)
	for _, st := range []*session.Redis{a, b} {
		for _, id := range []string{"old-1", "old-2"} {
			if _, err := st.Lookup(ctx, id, alice, "docs"); !errors.Is(err, session.ErrUnknown) {
				t.Errorf("%s after the flush: %v, want ErrUnknown", id, err)
			}
		}
		if ok, err := st.TaskOwnedBy(ctx, "docs", "t1", alice); ok || err != nil {
			t.Errorf("task after the flush: %v %v", ok, err)
		}
	}
	// The first script each replica runs finds the new epoch: that
	// request is refused (it was checked before the epoch began), the
	// next one goes through.
	for _, st := range []*session.Redis{a, b} {
		if _, err := st.Reserve(ctx, alice); !errors.Is(err, redisconn.ErrUnavailable) {
			t.Errorf("the first reservation after the flush: %v, want refused", err)
		}
	}
	bind(t, b, "new-1", alice, "docs") // alice's cap counts from zero
	bind(t, a, "new-2", alice, "docs")
	settle(t, ca, cb)
	for _, st := range []*session.Redis{a, b} {
		for _, id := range []string{"new-1", "new-2"} {
			if _, err := st.Lookup(ctx, id, alice, "docs"); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		}
	}
	if _, err := a.Reserve(ctx, alice); !errors.Is(err, session.ErrTooManySessions) {
		t.Errorf("cap after the flush: %v", err)
	}
	if ca.Epoch().ID == first.ID || ca.Epoch() != cb.Epoch() {
		t.Errorf("epochs after the flush: %v → a %v, b %v", first, ca.Epoch(), cb.Epoch())
	}
}

// TestRedisReservationExpires: a reservation never committed nor released
// (its replica crashed) frees its slot after a minute; committing it late
// takes a slot again only if the caps allow.
func TestRedisReservationExpires(t *testing.T) {
	srv := redistest.Start(t)
	c := sessiontest.NewClock()
	st := newRedis(t, newConn(t, srv, "p:", time.Second), session.Config{MaxPerPrincipal: 1, MaxSessions: 2, Now: c.Now})
	ctx := t.Context()
	lost, err := st.Reserve(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Reserve(ctx, alice); !errors.Is(err, session.ErrTooManySessions) {
		t.Fatalf("second reservation: %v", err)
	}
	if _, err := st.Reserve(ctx, bob); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Reserve(ctx, session.Principal{Subject: "carol"}); !errors.Is(err, session.ErrFull) {
		t.Fatalf("third reservation: %v", err)
	}
	c.Advance(61 * time.Second)
	late, err := st.Reserve(ctx, alice)
	if err != nil {
		t.Fatalf("an expired reservation still holds the slot: %v", err)
	}
	if err := lost.Commit(ctx, "sess-late", session.Binding{Principal: alice, Route: "docs"}); !errors.Is(err, session.ErrTooManySessions) {
		t.Fatalf("late commit over the cap: %v", err)
	}
	if _, err := st.Lookup(ctx, "sess-late", alice, "docs"); !errors.Is(err, session.ErrUnknown) {
		t.Fatalf("a refused late commit bound the session: %v", err)
	}
	late.Release()
	lost2, err := st.Reserve(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(61 * time.Second)
	if err := lost2.Commit(ctx, "sess-late", session.Binding{Principal: alice, Route: "docs"}); err != nil {
		t.Fatalf("late commit within the cap: %v", err)
	}
	if _, err := st.Lookup(ctx, "sess-late", alice, "docs"); err != nil {
		t.Fatal(err)
	}
}

// TestRedisCorruptValue: a malformed stored value is an error (the request
// is refused with 503), not a panic and not an unknown session.
func TestRedisCorruptValue(t *testing.T) {
	srv := redistest.Start(t)
	st := newRedis(t, newConn(t, srv, "p:", time.Second), session.Config{})
	raw := rawClient(t, srv)
	ctx := t.Context()
	for _, tc := range []struct {
		name  string
		spoil func(key string) rueidis.Completed
	}{
		{"bad time", func(k string) rueidis.Completed {
			return raw.B().Hset().Key(k).FieldValue().FieldValue("s", "12x").Build()
		}},
		{"bad owner", func(k string) rueidis.Completed {
			return raw.B().Hset().Key(k).FieldValue().FieldValue("p", "alice").Build()
		}},
		{"missing field", func(k string) rueidis.Completed { return raw.B().Hdel().Key(k).Field("g").Build() }},
		{"huge route", func(k string) rueidis.Completed {
			return raw.B().Hset().Key(k).FieldValue().FieldValue("r", strings.Repeat("r", 5000)).Build()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "sess-" + tc.name
			bind(t, st, id, alice, "docs")
			keys, _ := raw.Do(ctx, raw.B().Keys().Pattern("p:sess:b:*").Build()).AsStrSlice()
			for _, k := range keys {
				raw.Do(ctx, tc.spoil(k))
			}
			_, err := st.Lookup(ctx, id, alice, "docs")
			if !errors.Is(err, redisconn.ErrCorrupt) || !errors.Is(err, redisconn.ErrUnavailable) {
				t.Errorf("lookup of a corrupt binding: %v", err)
			}
			for _, k := range keys {
				raw.Do(ctx, raw.B().Del().Key(k).Build())
			}
		})
	}
	if err := st.BindTask(ctx, "docs", "t1", alice); err != nil {
		t.Fatal(err)
	}
	keys, _ := raw.Do(ctx, raw.B().Keys().Pattern("p:sess:t:*").Build()).AsStrSlice()
	if len(keys) != 1 {
		t.Fatalf("task keys %q", keys)
	}
	raw.Do(ctx, raw.B().Set().Key(keys[0]).Value("not a task").Build())
	if ok, err := st.TaskOwnedBy(ctx, "docs", "t1", alice); ok || !errors.Is(err, redisconn.ErrCorrupt) {
		t.Errorf("corrupt task: %v %v", ok, err)
	}
}

func TestNewRedisConfig(t *testing.T) {
	_, err := session.NewRedis(session.RedisConfig{MaxSessions: -1, MaxPerPrincipal: -2, MaxPending: -3,
		IdleTimeout: time.Millisecond, TaskTTL: -time.Hour})
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, want := range []string{"connection", "MaxSessions", "MaxPerPrincipal", "MaxPending", "IdleTimeout", "TaskTTL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func BenchmarkRedisLookupCached(b *testing.B) {
	srv := redistest.Start(b)
	c := sessiontest.NewClock()
	st := newRedis(b, newConn(b, srv, "p:", time.Second), session.Config{Now: c.Now})
	ctx := context.Background()
	bind(b, st, "sess-1", alice, "docs")
	if _, err := st.Lookup(ctx, "sess-1", alice, "docs"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Lookup(ctx, "sess-1", alice, "docs"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedisReserveCommit(b *testing.B) {
	srv := redistest.Start(b)
	st := newRedis(b, newConn(b, srv, "p:", time.Second), session.Config{MaxSessions: 1 << 30, MaxPerPrincipal: 1 << 30})
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s, err := st.Reserve(ctx, alice)
		if err != nil {
			b.Fatal(err)
		}
		i++
		if err := s.Commit(ctx, "sess-"+strconv.Itoa(i), session.Binding{Principal: alice, Route: "docs"}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRedisCount counts the live sessions of every replica, and not the
// expired ones.
func TestRedisCount(t *testing.T) {
	srv := redistest.Start(t)
	c := sessiontest.NewClock()
	cfg := session.Config{IdleTimeout: time.Hour, Now: c.Now}
	a := newRedis(t, newConn(t, srv, "p:", time.Second), cfg)
	b := newRedis(t, newConn(t, srv, "p:", time.Second), cfg)
	ctx := t.Context()
	for i, st := range []*session.Redis{a, b, b} {
		slot, err := st.Reserve(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		if err := slot.Commit(ctx, "sess-"+strconv.Itoa(i), session.Binding{Principal: alice, Route: "docs"}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := a.Count(ctx); err != nil || n != 3 {
		t.Errorf("Count = %d, %v; want 3 (both replicas' sessions)", n, err)
	}
	c.Advance(2 * time.Hour)
	if n, err := b.Count(ctx); err != nil || n != 0 {
		t.Errorf("Count after the idle timeout = %d, %v; want 0", n, err)
	}
	srv.Stop()
	if _, err := a.Count(ctx); !errors.Is(err, redisconn.ErrUnavailable) {
		t.Errorf("Count with redis down: %v", err)
	}
}

// TestRedisFrozenLookupFailsClosed: with Redis frozen (connections open,
// no answers) a cached lookup is refused within about the timeout rather
// than served from a cache that can no longer be invalidated.
func TestRedisFrozenLookupFailsClosed(t *testing.T) {
	srv := redistest.Start(t)
	st := newRedis(t, newConn(t, srv, "p:", 200*time.Millisecond), session.Config{})
	ctx := t.Context()
	slot, err := st.Reserve(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := slot.Commit(ctx, "sess-frozen", session.Binding{Principal: alice, Route: "docs"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Lookup(ctx, "sess-frozen", alice, "docs"); err != nil {
		t.Fatal(err)
	}
	srv.Freeze()
	defer srv.Thaw()
	deadline := time.Now().Add(2 * time.Second) // under the client's own detection (5s)
	for err == nil && time.Now().Before(deadline) {
		_, err = st.Lookup(ctx, "sess-frozen", alice, "docs")
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(err, redisconn.ErrUnavailable) {
		t.Fatalf("lookup with redis frozen: %v, want ErrUnavailable", err)
	}
}
