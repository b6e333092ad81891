package state_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/mcpgate/mcpgate/internal/redisconn"
	"github.com/mcpgate/mcpgate/internal/redistest"
	"github.com/mcpgate/mcpgate/internal/state"
	"github.com/mcpgate/mcpgate/internal/state/statetest"
)

// newConn opens a connection to srv with its own key prefix.
func newConn(t *testing.T, srv *redistest.Server, prefix string, timeout time.Duration) *redisconn.Conn {
	t.Helper()
	c, err := redisconn.Open(redisconn.Config{URL: srv.URL(), PasswordFile: srv.PasswordFile, KeyPrefix: prefix,
		Timeout: timeout, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newRedis opens a store (a replica) on srv with its own key prefix.
func newRedis(t *testing.T, srv *redistest.Server, prefix string, mod func(*state.RedisConfig)) *state.Redis {
	t.Helper()
	cfg := state.RedisConfig{Conn: newConn(t, srv, prefix, 2*time.Second)}
	if mod != nil {
		mod(&cfg)
	}
	r, err := state.NewRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// rawClient is a plain client for inspecting and disturbing the server.
func rawClient(t *testing.T, srv *redistest.Server) rueidis.Client {
	t.Helper()
	return srv.Client(t)
}

func TestRedis(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	statetest.Run(t, func(t *testing.T, c *statetest.Clock, maxEntries int, idle time.Duration) state.Store {
		return newRedis(t, srv, fmt.Sprintf("suite%d:", n.Add(1)), func(cfg *state.RedisConfig) {
			cfg.MaxEntries, cfg.IdleTimeout, cfg.Now = maxEntries, idle, c.Now
		})
	})
}

// TestRedisSuiteTwoReplicas runs the conformance suite with every
// Update going alternately through two stores (two replicas) on one
// server.
func TestRedisSuiteTwoReplicas(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	statetest.Run(t, func(t *testing.T, c *statetest.Clock, maxEntries int, idle time.Duration) state.Store {
		prefix := fmt.Sprintf("pair%d:", n.Add(1))
		mod := func(cfg *state.RedisConfig) { cfg.MaxEntries, cfg.IdleTimeout, cfg.Now = maxEntries, idle, c.Now }
		return &alternating{stores: []state.Store{newRedis(t, srv, prefix, mod), newRedis(t, srv, prefix, mod)}}
	})
}

// alternating sends each call to the next of several stores, as a load
// balancer does with replicas.
type alternating struct {
	stores []state.Store
	n      atomic.Uint64
}

func (a *alternating) next() state.Store { return a.stores[a.n.Add(1)%uint64(len(a.stores))] }

func (a *alternating) Update(ctx context.Context, h state.Key, c []state.Key, fn func(*state.History, []*state.Counter) error) error {
	return a.next().Update(ctx, h, c, fn)
}

func (a *alternating) AddTaint(ctx context.Context, h state.Key, labels []string) error {
	return a.next().AddTaint(ctx, h, labels)
}

// TestRedisReplicasSerialise: concurrent calls of one run on two
// replicas lose no history and overrun no budget.
func TestRedisReplicasSerialise(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newRedis(t, srv, "p:", nil), newRedis(t, srv, "p:", nil)
	h, c := state.NewKey("h", "run"), state.NewKey("c", "budget")
	const budget = 60
	var granted atomic.Int64
	var wg sync.WaitGroup
	for i := range 6 {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Go(func() {
			for range 20 {
				err := st.Update(t.Context(), h, []state.Key{c}, func(hist *state.History, cs []*state.Counter) error {
					if len(cs[0].Times) >= budget {
						return errors.New("over budget")
					}
					hist.Entries = append(hist.Entries, state.Entry{Tool: "x", At: time.Now()})
					cs[0].Times = append(cs[0].Times, time.Now())
					return nil
				})
				switch {
				case err == nil:
					granted.Add(1)
				case err.Error() != "over budget":
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	var entries, times int
	read := errors.New("read")
	for _, st := range []*state.Redis{a, b} {
		st.Update(t.Context(), h, []state.Key{c}, func(hist *state.History, cs []*state.Counter) error {
			entries, times = len(hist.Entries), len(cs[0].Times)
			return read
		})
		if granted.Load() != budget || entries != budget || times != budget {
			t.Errorf("granted %d, history %d, counter %d; want %d each", granted.Load(), entries, times, budget)
		}
	}
}

// TestRedisStaleRefusalRechecked: a replica whose cached history is stale
// does not refuse a call on it; it reads the current history first.
func TestRedisStaleRefusalRechecked(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newRedis(t, srv, "p:", nil), newRedis(t, srv, "p:", nil)
	h := state.NewKey("h", "run")
	add := func(tool string) func(*state.History, []*state.Counter) error {
		return func(hist *state.History, _ []*state.Counter) error {
			hist.Entries = append(hist.Entries, state.Entry{Tool: tool})
			return nil
		}
	}
	if err := a.Update(t.Context(), h, nil, add("first")); err != nil { // a caches the history
		t.Fatal(err)
	}
	if err := b.Update(t.Context(), h, nil, add("open")); err != nil {
		t.Fatal(err)
	}
	needsOpen := func(hist *state.History, _ []*state.Counter) error {
		for _, e := range hist.Entries {
			if e.Tool == "open" {
				hist.Entries = append(hist.Entries, state.Entry{Tool: "search"})
				return nil
			}
		}
		return errors.New("open first")
	}
	if err := a.Update(t.Context(), h, nil, needsOpen); err != nil {
		t.Fatalf("a decided on its stale copy: %v", err)
	}
	var tools []string
	b.Update(t.Context(), h, nil, func(hist *state.History, _ []*state.Counter) error {
		tools = tools[:0] // fn runs again when b's copy is stale
		for _, e := range hist.Entries {
			tools = append(tools, e.Tool)
		}
		return errors.New("read")
	})
	if strings.Join(tools, ",") != "first,open,search" {
		t.Errorf("history seen by b = %v", tools)
	}
}

// TestRedisOneRoundTrip: a call on a replica that holds the current
// records costs the server one command (the update script); a refusal on
// current records one too.
func TestRedisOneRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	st := newRedis(t, srv, "p:", nil)
	raw := rawClient(t, srv)
	h, c := state.NewKey("h", "run"), state.NewKey("c", "b")
	call := func(hist *state.History, cs []*state.Counter) error {
		hist.Entries = append(hist.Entries, state.Entry{Tool: "x"})
		cs[0].Times = append(cs[0].Times, time.Now())
		return nil
	}
	if err := st.Update(t.Context(), h, []state.Key{c}, call); err != nil { // first call: cache filled
		t.Fatal(err)
	}
	evals := func() int {
		s, err := raw.Do(t.Context(), raw.B().Info().Section("commandstats").Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, line := range strings.Split(s, "\n") {
			if !strings.HasPrefix(line, "cmdstat_eval") { // evalsha, eval
				continue
			}
			_, rest, _ := strings.Cut(line, "calls=")
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			total += n
		}
		return total
	}
	before := evals()
	for range 10 {
		if err := st.Update(t.Context(), h, []state.Key{c}, call); err != nil {
			t.Fatal(err)
		}
	}
	if got := evals() - before; got != 10 {
		t.Errorf("10 calls ran %d scripts, want 10 (one round trip each)", got)
	}
	before = evals()
	st.Update(t.Context(), h, []state.Key{c}, func(*state.History, []*state.Counter) error { return errors.New("no") })
	if got := evals() - before; got != 1 {
		t.Errorf("a refusal ran %d scripts, want 1", got)
	}
}

// TestRedisKeysHashedWithTTL: no raw identifier becomes a key, and every
// key expires.
func TestRedisKeysHashedWithTTL(t *testing.T) {
	srv := redistest.Start(t)
	st := newRedis(t, srv, "mcpgate:", func(c *state.RedisConfig) { c.IdleTimeout = 10 * time.Minute })
	raw := rawClient(t, srv)
	const subject, session = "alice@example.com", "sess-3f9a1c"
	h, c := state.NewKey("principal", "https://idp", subject, session), state.NewKey("budget", subject)
	if err := st.Update(t.Context(), h, []state.Key{c}, func(hist *state.History, cs []*state.Counter) error {
		hist.Entries = append(hist.Entries, state.Entry{Tool: "read"})
		hist.AddTaint("private_data")
		cs[0].Times = append(cs[0].Times, time.Now())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	keys, err := raw.Do(t.Context(), raw.B().Keys().Pattern("*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 6 { // epoch, write stamp, history header, entries, counter header, counter times
		t.Errorf("keys = %q", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "mcpgate:") || strings.Contains(k, "alice") || strings.Contains(k, "sess-") {
			t.Errorf("key %q is not a prefixed hash", k)
		}
		ttl, err := raw.Do(t.Context(), raw.B().Pttl().Key(k).Build()).AsInt64()
		if err != nil || ttl <= 0 {
			t.Errorf("key %q has no TTL (%d, %v)", k, ttl, err)
		}
		if k != "mcpgate:epoch" && k != "mcpgate:stamp" && ttl > (10*time.Minute).Milliseconds() {
			t.Errorf("key %q TTL %dms exceeds the idle timeout", k, ttl)
		}
	}
}

// TestRedisUnavailableFailsThenRecovers: with the server gone, Update
// fails within its timeout with ErrUnavailable; when the server is back
// (empty, as after a failover that lost the data) the same store works
// again without a restart and reports the new epoch.
func TestRedisUnavailableFailsThenRecovers(t *testing.T) {
	srv := redistest.Start(t)
	var epochs atomic.Int64
	conn := newConn(t, srv, "p:", 300*time.Millisecond)
	conn.OnEpoch(func(redisconn.Epoch) { epochs.Add(1) })
	st, err := state.NewRedis(state.RedisConfig{Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	first := conn.Epoch()
	h := state.NewKey("h", "run")
	taint := func(hist *state.History, _ []*state.Counter) error {
		hist.Entries = append(hist.Entries, state.Entry{Tool: "read"})
		hist.AddTaint("private_data")
		return nil
	}
	if err := st.Update(t.Context(), h, nil, taint); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	err = st.Update(t.Context(), h, nil, taint)
	if !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("with redis down: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the failure took %v", d)
	}
	// A refusal is not decided from the cache either: it needs the store.
	if err := st.Update(t.Context(), h, nil, func(*state.History, []*state.Counter) error { return errors.New("no") }); !errors.Is(err, state.ErrUnavailable) {
		t.Errorf("refusal with redis down: %v, want ErrUnavailable", err)
	}
	srv.Restart()
	var tainted bool
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = st.Update(t.Context(), h, nil, func(hist *state.History, _ []*state.Counter) error {
			tainted = hist.HasTaint("private_data")
			hist.Entries = append(hist.Entries, state.Entry{Tool: "after"})
			return nil
		})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no recovery after redis came back: %v", err)
	}
	if tainted {
		t.Error("the history of the lost data set was used")
	}
	if epochs.Load() != 1 || conn.Epoch().ID == first.ID {
		t.Errorf("epoch changes reported %d (epoch %s → %s), want 1", epochs.Load(), first.ID, conn.Epoch().ID)
	}
}

// TestRedisFlushDetected: a FLUSHALL is noticed on the next call (a new
// epoch), by every replica, and the replicas agree on one new epoch.
func TestRedisFlushDetected(t *testing.T) {
	srv := redistest.Start(t)
	var mu sync.Mutex
	seen := map[string]int{}
	ca, cb := newConn(t, srv, "p:", time.Second), newConn(t, srv, "p:", time.Second)
	for _, c := range []*redisconn.Conn{ca, cb} {
		c.OnEpoch(func(e redisconn.Epoch) { mu.Lock(); seen[e.ID]++; mu.Unlock() })
	}
	a, _ := state.NewRedis(state.RedisConfig{Conn: ca})
	b, _ := state.NewRedis(state.RedisConfig{Conn: cb})
	if ca.Epoch() != cb.Epoch() {
		t.Fatalf("replicas started in different epochs: %v %v", ca.Epoch(), cb.Epoch())
	}
	h := state.NewKey("h", "run")
	add := func(hist *state.History, _ []*state.Counter) error {
		hist.Entries = append(hist.Entries, state.Entry{Tool: "x"})
		return nil
	}
	for _, st := range []*state.Redis{a, b} {
		if err := st.Update(t.Context(), h, nil, add); err != nil {
			t.Fatal(err)
		}
	}
	raw := rawClient(t, srv)
	if err := raw.Do(t.Context(), raw.B().Flushall().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	var n int
	for _, st := range []*state.Redis{a, b} {
		call := func(hist *state.History, cs []*state.Counter) error {
			n = len(hist.Entries)
			return add(hist, cs)
		}
		// The call that finds the new epoch is refused (it was
		// authenticated before it); the next one goes through.
		if err := st.Update(t.Context(), h, nil, call); !errors.Is(err, state.ErrUnavailable) {
			t.Fatalf("the call that found the flush: %v, want refused", err)
		}
		if err := st.Update(t.Context(), h, nil, call); err != nil {
			t.Fatal(err)
		}
	}
	if n != 1 {
		t.Errorf("after the flush the second replica saw %d entries, want 1 (the first replica's call)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || ca.Epoch() != cb.Epoch() {
		t.Errorf("epochs reported %v; a %v, b %v: want one new epoch, seen by both", seen, ca.Epoch(), cb.Epoch())
	}
	for id, k := range seen {
		if k != 2 {
			t.Errorf("epoch %s reported %d times, want once per replica", id, k)
		}
	}
}

// TestRedisCorruptValueRefused: a malformed stored record is an error
// (the call is refused), not a panic and not an empty history.
func TestRedisCorruptValueRefused(t *testing.T) {
	srv := redistest.Start(t)
	st := newRedis(t, srv, "p:", nil)
	raw := rawClient(t, srv)
	h := state.NewKey("h", "run")
	if err := st.Update(t.Context(), h, nil, func(hist *state.History, _ []*state.Counter) error {
		hist.AddTaint("secrets")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	keys, _ := raw.Do(t.Context(), raw.B().Keys().Pattern("p:h:*").Build()).AsStrSlice()
	if len(keys) != 1 {
		t.Fatalf("keys %q", keys)
	}
	raw.Do(t.Context(), raw.B().Hset().Key(keys[0]).FieldValue().FieldValue("v", "other").FieldValue("d", "{not json").Build())
	err := st.Update(t.Context(), h, nil, func(*state.History, []*state.Counter) error { return nil })
	if err == nil {
		t.Fatal("a corrupt history was accepted")
	}
}

// TestRedisCounterSkewedClocks: a replica whose clock is behind records
// its event at the newest time already there (Counter's contract: events
// only drop from the front and are appended), and both replicas read what
// Redis holds — the copy decoded from Redis, whose array the attempt
// appends into, is left as it was.
func TestRedisCounterSkewedClocks(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newRedis(t, srv, "p:", nil), newRedis(t, srv, "p:", nil)
	h, c := state.NewKey("h", "run"), state.NewKey("c", "b")
	t0 := time.Unix(1_800_000_000, 0)
	at := func(ts ...time.Time) func(*state.History, []*state.Counter) error {
		return func(_ *state.History, cs []*state.Counter) error {
			for _, x := range ts {
				if n := len(cs[0].Times); n > 0 && cs[0].Times[n-1].After(x) {
					x = cs[0].Times[n-1]
				}
				cs[0].Times = append(cs[0].Times, x)
			}
			return nil
		}
	}
	// b (clock ahead) records two events; a (behind) reads them from
	// Redis on its first attempt's retry and records one.
	if err := b.Update(t.Context(), h, []state.Key{c}, at(t0.Add(-time.Second), t0.Add(10*time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(t.Context(), h, []state.Key{c}, at(t0)); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(t.Context(), h, []state.Key{c}, func(*state.History, []*state.Counter) error { return errors.New("refused") }); err == nil {
		t.Fatal("a refusal was not returned")
	}
	want := []time.Time{t0.Add(-time.Second), t0.Add(10 * time.Millisecond), t0.Add(10 * time.Millisecond)}
	for name, st := range map[string]*state.Redis{"a": a, "b": b} {
		var got []time.Time
		st.Update(t.Context(), h, []state.Key{c}, func(_ *state.History, cs []*state.Counter) error {
			got = slices.Clone(cs[0].Times)
			return errors.New("read")
		})
		if !slices.EqualFunc(got, want, time.Time.Equal) {
			t.Errorf("replica %s reads %v, want %v", name, got, want)
		}
	}
}

// TestRedisLargeCounter: a budget at its largest (10000 events in the
// window) is written and read back, whatever the script's argument limits.
func TestRedisLargeCounter(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newRedis(t, srv, "p:", nil), newRedis(t, srv, "p:", nil)
	h, c := state.NewKey("h", "big"), state.NewKey("c", "big")
	t0 := time.Unix(1_800_000_000, 0)
	err := a.Update(t.Context(), h, []state.Key{c}, func(_ *state.History, cs []*state.Counter) error {
		for i := range 10000 {
			cs[0].Times = append(cs[0].Times, t0.Add(time.Duration(i)*time.Microsecond))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	b.Update(t.Context(), h, []state.Key{c}, func(_ *state.History, cs []*state.Counter) error {
		n = len(cs[0].Times)
		return errors.New("read")
	})
	if n != 10000 {
		t.Errorf("another replica reads %d events, want 10000", n)
	}
}

// TestRedisHistoryRollbackDetected: a history that goes back to an older
// version within the same epoch (a failover to a lagging replica, a
// restored backup) is noticed by the replica that had the newer one: the
// call is refused and a new epoch begins.
func TestRedisHistoryRollbackDetected(t *testing.T) {
	srv := redistest.Start(t)
	conn := newConn(t, srv, "p:", time.Second)
	a, err := state.NewRedis(state.RedisConfig{Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	b := newRedis(t, srv, "p:", nil)
	raw := rawClient(t, srv)
	h := state.NewKey("h", "run")
	add := func(label string) func(*state.History, []*state.Counter) error {
		return func(hist *state.History, _ []*state.Counter) error {
			hist.Entries = append(hist.Entries, state.Entry{Tool: "x"})
			hist.AddTaint(label)
			return nil
		}
	}
	if err := a.Update(t.Context(), h, nil, add("first")); err != nil {
		t.Fatal(err)
	}
	// A snapshot of the history's keys, as a lagging replica holds them.
	keys, _ := raw.Do(t.Context(), raw.B().Keys().Pattern("p:*").Build()).AsStrSlice()
	keys = slices.DeleteFunc(keys, func(k string) bool { return k == "p:epoch" })
	dumps := map[string]string{}
	for _, k := range keys {
		d, err := raw.Do(t.Context(), raw.B().Dump().Key(k).Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		dumps[k] = d
	}
	if err := a.Update(t.Context(), h, nil, add("private_data")); err != nil {
		t.Fatal(err)
	}
	// b writes once on top, so a's copy is stale and a reads the store.
	if err := b.Update(t.Context(), h, nil, add("more")); err != nil {
		t.Fatal(err)
	}
	for k, d := range dumps { // the failover: back to the snapshot
		if err := raw.Do(t.Context(), raw.B().Restore().Key(k).Ttl(0).SerializedValue(d).Replace().Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 { // other runs' writes after the failover raise the epoch stamp again
		raw.Do(t.Context(), raw.B().Incr().Key("p:stamp").Build())
	}
	first := conn.Epoch()
	// a's cached copy (2 writes) is newer than the snapshot (1 write).
	err = a.Update(t.Context(), h, nil, add("after"))
	if !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("a call on the rolled-back history: %v, want refused", err)
	}
	ep := conn.Epoch()
	for deadline := time.Now().Add(2 * time.Second); ep.ID == first.ID && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		conn.CheckEpoch(t.Context())
		ep = conn.Epoch()
	}
	if ep.ID == first.ID {
		t.Error("no new epoch after the rollback")
	}
}

// TestRedisConcurrencyIsNotRollback: many concurrent calls on one replica
// (their write stamps answered in any order) never look like a rollback.
func TestRedisConcurrencyIsNotRollback(t *testing.T) {
	srv := redistest.Start(t)
	conn := newConn(t, srv, "p:", 5*time.Second)
	var epochs atomic.Int64
	conn.OnEpoch(func(redisconn.Epoch) { epochs.Add(1) })
	st, err := state.NewRedis(state.RedisConfig{Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := range 32 {
		wg.Go(func() {
			h := state.NewKey("h", strconv.Itoa(g%8)) // some runs shared, most calls in parallel
			for range 30 {
				err := st.Update(t.Context(), h, nil, func(hist *state.History, _ []*state.Counter) error {
					hist.Entries = append(hist.Entries, state.Entry{Tool: "x"})
					return nil
				})
				if err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if epochs.Load() != 0 || failed.Load() != 0 {
		t.Errorf("%d new epochs, %d calls refused; want none", epochs.Load(), failed.Load())
	}
}
