package revoke

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/mcpgate/mcpgate/internal/redisconn"
	"github.com/mcpgate/mcpgate/internal/redistest"
)

const sharedIss = "https://idp.example"

func sharedConn(t *testing.T, srv *redistest.Server, timeout time.Duration) *redisconn.Conn {
	t.Helper()
	c, err := redisconn.Open(redisconn.Config{URL: srv.URL(), PasswordFile: srv.PasswordFile, Timeout: timeout,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sharedList(t *testing.T, c *redisconn.Conn) *List {
	t.Helper()
	l, err := New(Config{Redis: c, SyncInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func rawRedis(t *testing.T, srv *redistest.Server) rueidis.Client {
	t.Helper()
	return srv.Client(t)
}

// A revocation made on replica A is refused on B on B's very next check,
// and a removal on A is seen there too.
func TestSharedNextRequest(t *testing.T) {
	srv := redistest.Start(t)
	a, b := sharedList(t, sharedConn(t, srv, time.Second)), sharedList(t, sharedConn(t, srv, time.Second))
	tok := Token{Issuer: sharedIss, JTI: "tok-1", Subject: "alice", IssuedAt: time.Now()}
	// B reads the shared version through client-side caching; Redis
	// pushes the invalidation as A writes and it lands within a
	// millisecond (the gateway's next request is later than that). The
	// test allows it a bounded moment rather than racing it.
	check := func(l *List, want bool) bool {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
			if err := l.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			if _, revoked := l.Check(tok); revoked == want || time.Now().After(deadline) {
				return revoked
			}
		}
	}
	if _, revoked := b.Check(tok); revoked {
		t.Fatal("revoked before any revocation")
	}
	if _, err := a.Add(Entry{Kind: KindJTI, Issuer: sharedIss, Value: "tok-1", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if !check(b, true) {
		t.Fatal("B accepted a token revoked on A")
	}
	if found, err := a.Remove(KindJTI, sharedIss, "tok-1"); err != nil || !found {
		t.Fatalf("remove: %v %v", found, err)
	}
	if check(b, false) {
		t.Error("B still refuses a token whose revocation A removed")
	}
}

// Concurrent writes on two replicas lose none.
func TestSharedConcurrentWrites(t *testing.T) {
	srv := redistest.Start(t)
	conns := []*redisconn.Conn{sharedConn(t, srv, time.Second), sharedConn(t, srv, time.Second)}
	first := conns[0].Epoch().ID
	lists := []*List{sharedList(t, conns[0]), sharedList(t, conns[1])}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if _, err := lists[i%2].Add(Entry{Kind: KindJTI, Issuer: sharedIss, Value: fmt.Sprint("j", i), Until: time.Now().Add(time.Hour)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, l := range lists {
		for deadline := time.Now().Add(2 * time.Second); len(l.List()) != 40 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if err := l.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(l.List()); n != 40 {
			t.Errorf("a replica lists %d revocations, want 40", n)
		}
	}
	for _, c := range conns {
		if c.Epoch().ID != first {
			t.Error("concurrent writes started a new epoch")
		}
	}
}

// The background sync tells B's subscribers (the gateway ends open
// streams) without any request on B.
func TestSharedSubscribersWithoutRequests(t *testing.T) {
	srv := redistest.Start(t)
	a, b := sharedList(t, sharedConn(t, srv, time.Second)), sharedList(t, sharedConn(t, srv, time.Second))
	got := make(chan Entry, 4)
	b.Subscribe(func(e Entry) { got <- e })
	if _, err := a.Add(Entry{Kind: KindSubject, Issuer: sharedIss, Value: "mallory"}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Kind != KindSubject || e.Value != "mallory" {
			t.Errorf("notified of %+v", e)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("B's subscribers were not told")
	}
}

// An unchanged list costs no round trip: the version is read from the
// client-side cache.
func TestSharedSyncCached(t *testing.T) {
	srv := redistest.Start(t)
	l, err := New(Config{Redis: sharedConn(t, srv, time.Second), SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	raw := rawRedis(t, srv)
	calls := func() int {
		s, _ := raw.Do(t.Context(), raw.B().Info().Section("stats").Build()).ToString()
		for _, line := range strings.Split(s, "\n") {
			if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				return n
			}
		}
		t.Fatal("no total_commands_processed")
		return 0
	}
	l.Sync(t.Context()) // fills the cache
	before := calls()
	for range 50 {
		if err := l.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls() - before - 1; n != 0 { // -1: the INFO itself
		t.Errorf("50 syncs of an unchanged list sent %d commands, want 0", n)
	}
}

// With Redis down, Sync and Add fail (the gateway refuses); when it comes
// back empty, tokens issued before the new epoch are refused, later ones
// are not, and no restart is needed.
func TestSharedUnavailableThenNewEpoch(t *testing.T) {
	srv := redistest.Start(t)
	l := sharedList(t, sharedConn(t, srv, 300*time.Millisecond))
	old := Token{Issuer: sharedIss, JTI: "old", Subject: "bob", IssuedAt: time.Now().Add(-time.Minute).Truncate(time.Second)}
	if _, err := l.Add(Entry{Kind: KindJTI, Issuer: sharedIss, Value: "old", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if err := l.Sync(t.Context()); !errors.Is(err, redisconn.ErrUnavailable) {
		t.Fatalf("Sync with redis down: %v", err)
	}
	if _, err := l.Add(Entry{Kind: KindJTI, Issuer: sharedIss, Value: "x", Until: time.Now().Add(time.Hour)}); !errors.Is(err, redisconn.ErrUnavailable) {
		t.Fatalf("Add with redis down: %v", err)
	}
	srv.Restart() // empty: the revocation of "old" is gone with the data
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = l.Sync(t.Context()); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no recovery: %v", err)
	}
	e, revoked := l.Check(old)
	if !revoked || e.Kind != KindEpoch {
		t.Errorf("a token issued before the data loss: revoked %v by %+v, want refused by the epoch", revoked, e)
	}
	time.Sleep(1100 * time.Millisecond) // iat has whole seconds
	fresh := Token{Issuer: sharedIss, JTI: "new", Subject: "bob", IssuedAt: time.Now().Truncate(time.Second)}
	if e, revoked := l.Check(fresh); revoked {
		t.Errorf("a token issued after the new epoch refused by %+v", e)
	}
}

// A FLUSHALL is noticed by the sync before the empty list is believed: a
// token revoked before the flush stays refused.
func TestSharedFlushKeepsRefusing(t *testing.T) {
	srv := redistest.Start(t)
	a, b := sharedList(t, sharedConn(t, srv, time.Second)), sharedList(t, sharedConn(t, srv, time.Second))
	tok := Token{Issuer: sharedIss, JTI: "leaked", IssuedAt: time.Now().Add(-time.Minute)}
	if _, err := a.Add(Entry{Kind: KindJTI, Issuer: sharedIss, Value: "leaked", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	raw := rawRedis(t, srv)
	if err := raw.Do(t.Context(), raw.B().Flushall().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*List{a, b} {
		if err := l.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
		// The jti entry is gone with the data; the epoch refuses the token.
		if e, revoked := l.Check(tok); !revoked || e.Kind != KindEpoch {
			t.Errorf("after a flush: revoked %v by %+v, want refused by the new epoch", revoked, e)
		}
	}
}

// A list that goes back to an older version in the same epoch (a
// failover to a replica that missed the latest writes, a restored backup)
// is detected: a new epoch refuses the tokens a lost revocation covered.
func TestSharedRollbackDetected(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rollback func(t *testing.T, raw rueidis.Client, saved map[string]string)
	}{
		{"older version", func(t *testing.T, raw rueidis.Client, saved map[string]string) {
			for k, v := range saved {
				raw.Do(t.Context(), raw.B().Set().Key(k).Value(v).Build())
			}
		}},
		{"list gone", func(t *testing.T, raw rueidis.Client, saved map[string]string) {
			for k := range saved {
				raw.Do(t.Context(), raw.B().Del().Key(k).Build())
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			ca, cb := sharedConn(t, srv, time.Second), sharedConn(t, srv, time.Second)
			a, b := sharedList(t, ca), sharedList(t, cb)
			raw := rawRedis(t, srv)
			first := cb.Epoch()
			if _, err := a.Add(Entry{Kind: KindJTI, Issuer: sharedIss, Value: "first", Until: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			saved := map[string]string{}
			for _, k := range []string{"mcpgate:rev:doc", "mcpgate:rev:ver", "mcpgate:stamp"} {
				v, err := raw.Do(t.Context(), raw.B().Get().Key(k).Build()).ToString()
				if err != nil {
					t.Fatalf("%s: %v", k, err)
				}
				saved[k] = v
			}
			if _, err := a.Add(Entry{Kind: KindJTI, Issuer: sharedIss, Value: "second", Until: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			tok := Token{Issuer: sharedIss, JTI: "second", IssuedAt: time.Now().Add(-time.Minute)}
			for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
				if err := b.Sync(t.Context()); err != nil {
					t.Fatal(err)
				}
				if _, revoked := b.Check(tok); revoked || time.Now().After(deadline) {
					break
				}
			}
			tc.rollback(t, raw, saved)
			for deadline := time.Now().Add(2 * time.Second); cb.Epoch().ID == first.ID && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if err := b.Sync(t.Context()); err != nil && !errors.Is(err, redisconn.ErrRolledBack) {
					t.Fatal(err)
				}
			}
			if cb.Epoch().ID == first.ID {
				t.Fatal("the rollback was not noticed: no new epoch")
			}
			b.Sync(t.Context()) // the sync that found the rollback was refused; this one loads the list
			if e, revoked := b.Check(tok); !revoked || e.Kind != KindEpoch {
				t.Errorf("the token whose revocation was rolled back: revoked %v by %+v, want refused by the new epoch", revoked, e)
			}
			// A adopts the new epoch on its next check.
			for deadline := time.Now().Add(2 * time.Second); ca.Epoch().ID != cb.Epoch().ID && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				a.Sync(t.Context())
			}
			if ca.Epoch() != cb.Epoch() {
				t.Errorf("replica A stayed in epoch %v (B: %v)", ca.Epoch(), cb.Epoch())
			}
		})
	}
}

// A list that expires on its own (its last entry expired) is not taken
// for a rollback: no new epoch, no token refused.
func TestSharedExpiryIsNotRollback(t *testing.T) {
	srv := redistest.Start(t)
	c := sharedConn(t, srv, time.Second)
	l := sharedList(t, c)
	first := c.Epoch()
	if _, err := l.Add(Entry{Kind: KindJTI, Issuer: sharedIss, Value: "j", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	raw := rawRedis(t, srv)
	for _, k := range []string{"mcpgate:rev:doc", "mcpgate:rev:ver"} { // as their TTL does
		raw.Do(t.Context(), raw.B().Del().Key(k).Build())
	}
	for range 3 {
		if err := l.SyncStrict(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Add(Entry{Kind: KindJTI, Issuer: sharedIss, Value: "k", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if c.Epoch().ID != first.ID {
		t.Error("an expired list started a new epoch")
	}
	if _, revoked := l.Check(Token{Issuer: sharedIss, JTI: "other", IssuedAt: time.Now().Add(2 * time.Second)}); revoked {
		t.Error("an unrelated token refused after the list expired")
	}
}

// A malformed epoch value is replaced by a new epoch rather than failing
// every request until someone intervenes.
func TestSharedCorruptEpochRecovers(t *testing.T) {
	srv := redistest.Start(t)
	c := sharedConn(t, srv, time.Second)
	l := sharedList(t, c)
	first := c.Epoch()
	raw := rawRedis(t, srv)
	raw.Do(t.Context(), raw.B().Set().Key("mcpgate:epoch").Value("garbage").Build())
	raw.Do(t.Context(), raw.B().Set().Key("mcpgate:rev:ver").Value("changed").Build()) // make the list reload
	var err error
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if err = l.Sync(t.Context()); err == nil && c.Epoch().ID != first.ID {
			break
		}
	}
	if err != nil || c.Epoch().ID == first.ID {
		t.Fatalf("after a malformed epoch: %v, epoch %v (was %v)", err, c.Epoch(), first)
	}
	stored, _ := raw.Do(t.Context(), raw.B().Get().Key("mcpgate:epoch").Build()).ToString()
	if !redisconn.MatchEpoch(stored, c.Epoch()) {
		t.Errorf("stored epoch %q, adopted %v", stored, c.Epoch())
	}
}

func TestSharedConfigErrors(t *testing.T) {
	srv := redistest.Start(t)
	if _, err := New(Config{Redis: sharedConn(t, srv, time.Second), File: t.TempDir() + "/r.json"}); err == nil {
		t.Error("File and Redis together accepted")
	}
	if _, err := New(Config{Redis: sharedConn(t, srv, time.Second), SyncInterval: -1}); err == nil {
		t.Error("negative SyncInterval accepted")
	}
}

// BenchmarkSharedSyncCheck is the per-request cost on a replica of a
// shared list that did not change: a client-side cached version read and
// the snapshot lookup.
func BenchmarkSharedSyncCheck(b *testing.B) {
	srv := redistest.Start(b)
	c, err := redisconn.Open(redisconn.Config{URL: srv.URL(), PasswordFile: srv.PasswordFile, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	l, err := New(Config{Redis: c, SyncInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	tok := Token{Issuer: sharedIss, JTI: "j", Subject: "s", IssuedAt: time.Now()}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		l.Check(tok)
	}
}

// A frozen Redis (a partition: connections stay open, nothing answers)
// makes Sync fail within about the timeout, although the version is still
// in the client-side cache: a cache that cannot be invalidated is not
// trusted. It recovers when Redis answers again.
func TestSharedFrozenFailsClosed(t *testing.T) {
	srv := redistest.Start(t)
	l := sharedList(t, sharedConn(t, srv, 200*time.Millisecond))
	if err := l.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv.Freeze()
	defer srv.Thaw()
	var err error
	// Well under the client's own dead-connection detection (5s).
	deadline := time.Now().Add(2 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		err = l.Sync(t.Context())
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(err, redisconn.ErrUnavailable) {
		t.Fatalf("Sync with redis frozen: %v, want ErrUnavailable", err)
	}
	srv.Thaw()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err = l.Sync(t.Context()); err == nil {
			return
		}
	}
	t.Fatalf("no recovery after the thaw: %v", err)
}

// A replica that never saw the revocation a rollback lost still refuses
// its token on its next check, once the replica that noticed the rollback
// started a new epoch.
func TestSharedRollbackReachesReplicasThatNeverSawIt(t *testing.T) {
	srv := redistest.Start(t)
	ca, cc := sharedConn(t, srv, time.Second), sharedConn(t, srv, time.Second)
	a := sharedList(t, ca)
	c, err := New(Config{Redis: cc, SyncInterval: time.Hour}) // no background sync: only requests
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw := rawRedis(t, srv)
	if _, err := a.Add(Entry{Kind: KindJTI, Issuer: sharedIss, Value: "before", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	saved := map[string]string{}
	for _, k := range []string{"mcpgate:rev:doc", "mcpgate:rev:ver", "mcpgate:stamp"} {
		v, _ := raw.Do(t.Context(), raw.B().Get().Key(k).Build()).ToString()
		saved[k] = v
	}
	// The token is issued a second after the epoch began and a second
	// before the rollback (iat has whole seconds).
	time.Sleep(1100 * time.Millisecond)
	tok := Token{Issuer: sharedIss, JTI: "lost", IssuedAt: time.Now().Truncate(time.Second)}
	if _, revoked := c.Check(tok); revoked {
		t.Fatal("refused before any revocation")
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := a.Add(Entry{Kind: KindJTI, Issuer: sharedIss, Value: "lost", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for k, v := range saved { // the failover: c never synced after "lost"
		raw.Do(t.Context(), raw.B().Set().Key(k).Value(v).Build())
	}
	if err := a.SyncStrict(t.Context()); !errors.Is(err, redisconn.ErrRolledBack) {
		t.Fatalf("A after the rollback: %v, want the rollback noticed", err)
	}
	for deadline := time.Now().Add(2 * time.Second); cc.Epoch().ID != ca.Epoch().ID; time.Sleep(time.Millisecond) {
		c.Sync(t.Context())
		if time.Now().After(deadline) {
			t.Fatalf("C stays in epoch %s (A: %s)", cc.Epoch().ID, ca.Epoch().ID)
		}
	}
	if e, revoked := c.Check(tok); !revoked || e.Kind != KindEpoch {
		t.Errorf("C: the token whose revocation the rollback lost: revoked %v by %+v, want refused by the new epoch", revoked, e)
	}
}

// A rollback followed by other writes (raising the epoch stamp past what
// the replica saw) is still noticed: the list itself was written at a
// lower stamp than the version of it the replica saw.
func TestSharedRollbackMaskedByLaterWrites(t *testing.T) {
	srv := redistest.Start(t)
	ca := sharedConn(t, srv, time.Second)
	a, err := New(Config{Redis: ca, SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	raw := rawRedis(t, srv)
	first := ca.Epoch()
	if _, err := a.Add(Entry{Kind: KindJTI, Issuer: sharedIss, Value: "kept", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	saved := map[string]string{}
	for _, k := range []string{"mcpgate:rev:doc", "mcpgate:rev:ver", "mcpgate:rev:stamp", "mcpgate:stamp"} {
		v, _ := raw.Do(t.Context(), raw.B().Get().Key(k).Build()).ToString()
		saved[k] = v
	}
	if _, err := a.Add(Entry{Kind: KindJTI, Issuer: sharedIss, Value: "lost", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for k, v := range saved { // the failover
		raw.Do(t.Context(), raw.B().Set().Key(k).Value(v).Build())
	}
	for range 5 { // other replicas' writes (tools/calls) after the failover
		raw.Do(t.Context(), raw.B().Incr().Key("mcpgate:stamp").Build())
	}
	if err := a.SyncStrict(t.Context()); !errors.Is(err, redisconn.ErrRolledBack) {
		t.Fatalf("after a rollback masked by later writes: %v, want it noticed", err)
	}
	if ca.Epoch().ID == first.ID {
		t.Error("no new epoch")
	}
}

// After a new epoch, the list's write stamp of the old epoch is not taken
// for a rollback: revocations keep being written without more epochs.
func TestSharedNewEpochThenWrites(t *testing.T) {
	srv := redistest.Start(t)
	c := sharedConn(t, srv, time.Second)
	l, err := New(Config{Redis: c, SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 5 { // a high stamp in the old epoch
		if _, err := l.Add(Entry{Kind: KindJTI, Issuer: sharedIss, Value: fmt.Sprint("old", i), Until: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.ForceNewEpoch(t.Context(), "test"); err != nil {
		t.Fatal(err)
	}
	second := c.Epoch().ID
	for i := range 4 {
		if _, err := l.Add(Entry{Kind: KindJTI, Issuer: sharedIss, Value: fmt.Sprint("new", i), Until: time.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("write %d in the new epoch: %v", i, err)
		}
		if err := l.SyncStrict(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if c.Epoch().ID != second {
		t.Error("writes after a new epoch started another one")
	}
}
