package tokencache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/mcpgate/mcpgate/internal/credential"
	"github.com/mcpgate/mcpgate/internal/redisconn"
	"github.com/mcpgate/mcpgate/internal/redistest"
)

// tcConn opens a connection (a replica) to srv with the given prefix.
func tcConn(t testing.TB, srv *redistest.Server, prefix string, timeout time.Duration) *redisconn.Conn {
	t.Helper()
	c, err := redisconn.Open(redisconn.Config{URL: srv.URL(), PasswordFile: srv.PasswordFile, KeyPrefix: prefix,
		Timeout: timeout, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tcRaw is a plain client for inspecting and disturbing the server.
func tcRaw(t testing.TB, srv *redistest.Server) rueidis.Client {
	t.Helper()
	return srv.Client(t)
}

func tcNew(t testing.TB, conn *redisconn.Conn, keysFile string, mod func(*Config)) *Cache {
	t.Helper()
	cfg := Config{Conn: conn, KeysFile: keysFile, Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tcCacheKey is a random cache key (an Exchange's is a SHA-256).
func tcCacheKey() [32]byte { return sha256.Sum256([]byte(rand.Text())) }

func tcKeysFile(t testing.TB, keys ...tcKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys")
	tcWriteKeys(t, path, keys...)
	return path
}

func TestNewConfig(t *testing.T) {
	dir := t.TempDir()
	k := tcNewKey(t, "k1")
	loose := filepath.Join(dir, "loose")
	tcWriteFile(t, loose, k.line(), 0o644)
	srv := redistest.Start(t)
	conn := tcConn(t, srv, "cfg:", time.Second)
	for _, tt := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "empty", cfg: Config{}, want: []string{"conn is required", "keys file is required"}},
		{name: "no conn, world-readable file", cfg: Config{KeysFile: loose}, want: []string{"conn is required", "readable by everyone"}},
		{name: "missing file", cfg: Config{Conn: conn, KeysFile: filepath.Join(dir, "none")}, want: []string{"no such file"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, s := range tcKeyMaterial(k) {
				if strings.Contains(err.Error(), s) {
					t.Error("the error shows the key")
				}
			}
		})
	}
}

// TestRoundTripAndReplicas: what one replica puts, it and another
// replica (another Conn, another Cache, the same key file) get back.
func TestRoundTripAndReplicas(t *testing.T) {
	srv := redistest.Start(t)
	keys := tcKeysFile(t, tcNewKey(t, "k1"))
	a := tcNew(t, tcConn(t, srv, "rt:", time.Second), keys, nil)
	b := tcNew(t, tcConn(t, srv, "rt:", time.Second), keys, nil)
	other := tcNew(t, tcConn(t, srv, "other:", time.Second), keys, nil)
	ctx := context.Background()
	key := tcCacheKey()
	cred := tcCred(tcToken(t, "user-alice"), time.Now().Add(10*time.Minute))
	until := time.Now().Add(9 * time.Minute)

	if _, _, ok, err := a.Get(ctx, key); ok || err != nil {
		t.Fatalf("empty cache: ok %v, %v", ok, err)
	}
	if err := a.Put(ctx, key, cred, until); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*Cache{"same replica": a, "other replica": b} {
		got, vu, ok, err := c.Get(ctx, key)
		if err != nil || !ok || got.Secret != cred.Secret || got.Value != cred.Value || got.Header != cred.Header ||
			got.ID != cred.ID || !got.Expiry.Equal(cred.Expiry) || !vu.Equal(until) {
			t.Errorf("%s: ok %v, %v, %+v until %v", name, ok, err, got.ID, vu)
		}
	}
	if _, _, ok, _ := b.Get(ctx, tcCacheKey()); ok {
		t.Error("another cache key hit")
	}
	if _, _, ok, _ := other.Get(ctx, key); ok {
		t.Error("a cache under another key prefix hit")
	}
	// A later Put replaces.
	cred2 := tcCred(tcToken(t, "user-alice"), time.Now().Add(10*time.Minute))
	if err := b.Put(ctx, key, cred2, until); err != nil {
		t.Fatal(err)
	}
	if got, _, ok, _ := a.Get(ctx, key); !ok || got.Secret != cred2.Secret {
		t.Error("the later Put was not read")
	}
}

// TestExpiry: the Redis key's TTL is at most the time to validUntil; an
// entry already past it is not stored, and one read after it is a miss.
func TestExpiry(t *testing.T) {
	srv := redistest.Start(t)
	raw := tcRaw(t, srv)
	clock := tcNewClock()
	c := tcNew(t, tcConn(t, srv, "ttl:", time.Second), tcKeysFile(t, tcNewKey(t, "k1")), func(c *Config) { c.Now = clock.Now })
	ctx := context.Background()
	cred := tcCred(tcToken(t, "u"), clock.Now().Add(time.Hour))
	pttl := func(key [32]byte) int64 {
		n, err := raw.Do(ctx, raw.B().Pttl().Key(c.redisKey(key)).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tt := range []struct {
		in      time.Duration
		wantMax int64 // ms; -2: not stored
	}{
		{in: 10 * time.Minute, wantMax: 600_000},
		{in: 1500*time.Millisecond + 900*time.Microsecond, wantMax: 1500},
		{in: time.Millisecond, wantMax: 1},
		{in: 999 * time.Microsecond, wantMax: -2},
		{in: 0, wantMax: -2},
		{in: -time.Minute, wantMax: -2},
	} {
		key := tcCacheKey()
		if err := c.Put(ctx, key, cred, clock.Now().Add(tt.in)); err != nil {
			t.Fatal(err)
		}
		got := pttl(key)
		switch {
		case tt.wantMax == -2 && got != -2:
			t.Errorf("validUntil in %v: stored with PTTL %d", tt.in, got)
		case tt.wantMax > 0 && got > tt.wantMax:
			t.Errorf("validUntil in %v: PTTL %d ms, want ≤ %d", tt.in, got, tt.wantMax)
		case tt.wantMax >= 1000 && (got <= 0 || got < tt.wantMax-500):
			// (A 1 ms value may be gone by the time PTTL reads it.)
			t.Errorf("validUntil in %v: PTTL %d ms, want about %d", tt.in, got, tt.wantMax)
		}
	}
	// Read at validUntil (by this process's clock, before Redis expires
	// the key): a miss.
	key := tcCacheKey()
	if err := c.Put(ctx, key, cred, clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute - time.Millisecond)
	if _, _, ok, _ := c.Get(ctx, key); !ok {
		t.Fatal("not served before validUntil")
	}
	clock.Advance(time.Millisecond)
	if _, _, ok, err := c.Get(ctx, key); ok || err != nil {
		t.Errorf("served at validUntil (%v)", err)
	}
}

// TestRotation: with [k2, k1], values under k1 are read and new ones are
// written under k2; after k1 is removed, its values are misses (logged
// once); a replica still on [k1] misses k2 values. The file is picked up
// without a restart, and a broken file keeps the keys in use.
func TestRotation(t *testing.T) {
	srv := redistest.Start(t)
	raw := tcRaw(t, srv)
	ctx := context.Background()
	k1, k2 := tcNewKey(t, "k1"), tcNewKey(t, "k2")
	path := tcKeysFile(t, k1)
	oldFile := tcKeysFile(t, k1) // a replica that never gets the new file
	clock := tcNewClock()
	logs := &tcLogs{}
	c := tcNew(t, tcConn(t, srv, "rot:", time.Second), path, func(c *Config) { c.Now = clock.Now; c.Logger = logs.Logger() })
	lagging := tcNew(t, tcConn(t, srv, "rot:", time.Second), oldFile, func(c *Config) { c.Now = clock.Now })
	until := func() time.Time { return clock.Now().Add(time.Hour) }
	keyID := func(key [32]byte) string {
		v, err := raw.Do(ctx, raw.B().Get().Key(c.redisKey(key)).Build()).AsBytes()
		if err != nil || len(v) < 2 || len(v) < 2+int(v[1]) {
			t.Fatalf("raw value: %v", err)
		}
		return string(v[2 : 2+int(v[1])])
	}
	put := func(key [32]byte) credential.Credential {
		t.Helper()
		cred := tcCred(tcToken(t, "u"), clock.Now().Add(2*time.Hour))
		if err := c.Put(ctx, key, cred, until()); err != nil {
			t.Fatal(err)
		}
		return cred
	}
	hit := func(c *Cache, key [32]byte, want credential.Credential) bool {
		got, _, ok, err := c.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return ok && got.Secret == want.Secret
	}

	old1, old2 := tcCacheKey(), tcCacheKey()
	v1, v2 := put(old1), put(old2)
	if keyID(old1) != "k1" {
		t.Fatalf("written under %q", keyID(old1))
	}

	// Rotate: k2 on top. Not read before a second has passed.
	tcWriteKeys(t, path, k2, k1)
	fresh := tcCacheKey()
	put(fresh)
	if keyID(fresh) != "k1" {
		t.Fatalf("the key file was read again within a second")
	}
	clock.Advance(reloadInterval)
	vf := put(fresh)
	if keyID(fresh) != "k2" {
		t.Fatalf("after the rotation, written under %q", keyID(fresh))
	}
	if !hit(c, old1, v1) || !hit(c, fresh, vf) {
		t.Error("[k2, k1] does not read both keys' values")
	}
	if hit(lagging, fresh, vf) {
		t.Error("a replica without k2 read a k2 value")
	}
	if !strings.Contains(logs.String(), "key_ids=k2,k1") || !strings.Contains(logs.String(), "encrypt_with=k2") {
		t.Errorf("the rotation is not logged: %s", logs.String())
	}

	// A broken file: the keys in use stay, one error is logged.
	tcWriteFile(t, path, k2.line()+"\nk1 "+k1.b64[:20]+"\n", 0o400)
	for range 3 {
		clock.Advance(reloadInterval)
		if !hit(c, old1, v1) {
			t.Fatal("a broken key file dropped the keys in use")
		}
	}
	if n := strings.Count(logs.String(), "the key file is refused"); n != 1 {
		t.Errorf("the broken file was logged %d times, want once", n)
	}
	tcWriteFile(t, path, k2.line()+"\n"+k1.line()+"\n", 0o644)
	clock.Advance(reloadInterval)
	if !hit(c, old1, v1) || !strings.Contains(logs.String(), "readable by everyone") {
		t.Error("a world-readable file was not refused (keeping the keys)")
	}

	// k1 removed: its values are misses, logged once per key id.
	tcWriteKeys(t, path, k2)
	clock.Advance(reloadInterval)
	if hit(c, old1, v1) || hit(c, old2, v2) || hit(c, old1, v1) {
		t.Error("a value under a removed key was read")
	}
	if !hit(c, fresh, vf) {
		t.Error("a k2 value is not read")
	}
	if n := strings.Count(logs.String(), "key_id=k1"); n != 1 {
		t.Errorf("the unknown key id was logged %d times, want once: %s", n, logs.String())
	}
	// Reload on demand.
	k3 := tcNewKey(t, "k3")
	tcWriteKeys(t, path, k3, k2)
	if err := c.Reload(); err != nil || c.ring.Load().enc.id != "k3" {
		t.Errorf("Reload: %v", err)
	}
	// New keys, new warnings: an unreadable k1 value is logged again.
	if hit(c, old1, v1) || strings.Count(logs.String(), "key_id=k1") != 2 {
		t.Errorf("after a reload, the unknown key id is not logged again")
	}
	for _, s := range tcKeyMaterial(k1, k2, k3) {
		if strings.Contains(logs.String(), s) {
			t.Error("key material in the logs")
		}
	}
}

// TestTampered: a value with any byte changed, truncated, or moved to
// another key is a miss, never an error or a panic.
func TestTampered(t *testing.T) {
	srv := redistest.Start(t)
	raw := tcRaw(t, srv)
	ctx := context.Background()
	logs := &tcLogs{}
	c := tcNew(t, tcConn(t, srv, "tam:", time.Second), tcKeysFile(t, tcNewKey(t, "k1")), func(c *Config) { c.Logger = logs.Logger() })
	key := tcCacheKey()
	cred := tcCred(tcToken(t, "u"), time.Now().Add(time.Hour))
	if err := c.Put(ctx, key, cred, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	name := c.redisKey(key)
	orig, err := raw.Do(ctx, raw.B().Get().Key(name).Build()).AsBytes()
	if err != nil {
		t.Fatal(err)
	}
	set := func(k string, v []byte) {
		if err := raw.Do(ctx, raw.B().Set().Key(k).Value(rueidis.BinaryString(v)).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	// Moved to another key: a miss there; the original still reads.
	moved := tcCacheKey()
	set(c.redisKey(moved), orig)
	if _, _, ok, err := c.Get(ctx, moved); ok || err != nil {
		t.Errorf("a value moved to another key was read (%v)", err)
	}
	if got, _, ok, _ := c.Get(ctx, key); !ok || got.Secret != cred.Secret {
		t.Fatal("the original is not read")
	}
	variants := map[string][]byte{"empty": {}, "truncated": orig[:len(orig)-1], "header only": orig[:4], "appended": append(append([]byte{}, orig...), 0)}
	for _, pos := range []int{0, 1, 2, 3, 4, 10, 16, 17, len(orig) / 2, len(orig) - 17, len(orig) - 1} {
		v := append([]byte{}, orig...)
		v[pos] ^= 0x40
		variants[fmt.Sprintf("byte %d flipped", pos)] = v
	}
	for name2, v := range variants {
		set(name, v)
		if _, _, ok, err := c.Get(ctx, key); ok || err != nil {
			t.Errorf("%s: read (ok %v, %v)", name2, ok, err)
		}
	}
	set(name, orig)
	if _, _, ok, _ := c.Get(ctx, key); !ok {
		t.Error("the restored value is not read")
	}
	if !strings.Contains(logs.String(), "does not authenticate") || !strings.Contains(logs.String(), "malformed") {
		t.Errorf("the unreadable values are not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), cred.Secret) {
		t.Error("the token is in the logs")
	}
}

// TestNothingInClear: neither the tokens nor anything identifying the
// callers is in Redis (keys or values) or in the logs.
func TestNothingInClear(t *testing.T) {
	srv := redistest.Start(t)
	raw := tcRaw(t, srv)
	ctx := context.Background()
	logs := &tcLogs{}
	k := tcNewKey(t, "k1")
	a := tcNew(t, tcConn(t, srv, "clr:", time.Second), tcKeysFile(t, k), func(c *Config) { c.Logger = logs.Logger() })
	b := tcNew(t, tcConn(t, srv, "clr:", time.Second), tcKeysFile(t, k), func(c *Config) { c.Logger = logs.Logger() })
	var secrets []string
	for i := range 5 {
		tok := tcToken(t, "user-"+rand.Text())
		parts := strings.Split(tok, ".")
		secrets = append(secrets, tok, parts[1], parts[2][:40])
		key := sha256.Sum256([]byte("caller " + rand.Text()))
		if err := a.Put(ctx, key, tcCred(tok, time.Now().Add(time.Hour)), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, _, ok, _ := b.Get(ctx, key); !ok {
			t.Fatalf("entry %d not shared", i)
		}
		secrets = append(secrets, strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(tok))[:40], "="))
	}
	keys, err := raw.Do(ctx, raw.B().Keys().Pattern("*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range keys {
		if !strings.HasPrefix(name, "clr:tok:") {
			continue
		}
		n++
		if len(strings.TrimPrefix(name, "clr:tok:")) != 43 {
			t.Errorf("key %q is not prefix + base64url(SHA-256)", name)
		}
		v, err := raw.Do(ctx, raw.B().Get().Key(name).Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(v, s) || strings.Contains(name, s) {
				t.Errorf("a token (%.8s…) is in Redis in clear", s)
			}
		}
		for _, s := range []string{"Bearer", "Authorization", "user-", "https://"} {
			if strings.Contains(v, s) {
				t.Errorf("%q is in a value in clear", s)
			}
		}
	}
	if n != 5 {
		t.Errorf("%d token keys in Redis, want 5", n)
	}
	for _, s := range append(secrets, tcKeyMaterial(k)...) {
		if strings.Contains(logs.String(), s) {
			t.Errorf("a secret (%.8s…) is in the logs", s)
		}
	}
}

// TestRedisDown: with Redis stopped, Get and Put fail quickly with
// ErrUnavailable, showing no token; after a restart (empty) they work.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 500 * time.Millisecond
	c := tcNew(t, tcConn(t, srv, "down:", timeout), tcKeysFile(t, tcNewKey(t, "k1")), nil)
	ctx := context.Background()
	key := tcCacheKey()
	cred := tcCred(tcToken(t, "u"), time.Now().Add(time.Hour))
	if err := c.Put(ctx, key, cred, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for range 3 {
		start := time.Now()
		_, _, ok, err := c.Get(ctx, key)
		if !errors.Is(err, redisconn.ErrUnavailable) || ok {
			t.Errorf("Get with Redis down: ok %v, %v", ok, err)
		}
		err2 := c.Put(ctx, key, cred, time.Now().Add(time.Hour))
		if !errors.Is(err2, redisconn.ErrUnavailable) {
			t.Errorf("Put with Redis down: %v", err2)
		}
		if d := time.Since(start); d > 2*timeout+200*time.Millisecond {
			t.Errorf("Get and Put took %v with Redis down (timeout %v)", d, timeout)
		}
		for _, e := range []error{err, err2} {
			if e != nil && strings.Contains(e.Error(), cred.Secret) {
				t.Error("the token is in the error")
			}
		}
	}
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Put(ctx, key, cred, time.Now().Add(time.Hour))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Put after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, _, ok, err := c.Get(ctx, key); err != nil || !ok || got.Secret != cred.Secret {
		t.Errorf("Get after the restart: ok %v, %v", ok, err)
	}
}

// BenchmarkGetHit: one GET round trip to a local redis-server, decrypt
// and decode.
func BenchmarkGetHit(b *testing.B) {
	srv := redistest.Start(b)
	c := tcNew(b, tcConn(b, srv, "bench:", time.Second), tcKeysFile(b, tcNewKey(b, "k1")), nil)
	ctx := context.Background()
	key := tcCacheKey()
	if err := c.Put(ctx, key, tcCred(tcToken(b, "u"), time.Now().Add(time.Hour)), time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok, err := c.Get(ctx, key); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkPut: seal and one SET PX round trip.
func BenchmarkPut(b *testing.B) {
	srv := redistest.Start(b)
	c := tcNew(b, tcConn(b, srv, "bench:", time.Second), tcKeysFile(b, tcNewKey(b, "k1")), nil)
	ctx := context.Background()
	key := tcCacheKey()
	cred := tcCred(tcToken(b, "u"), time.Now().Add(time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Put(ctx, key, cred, time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
}
