package redisconn_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/redisconn"
	"github.com/mcpgate/mcpgate/internal/redistest"
)

func open(t *testing.T, srv *redistest.Server, mod func(*redisconn.Config)) *redisconn.Conn {
	t.Helper()
	cfg := redisconn.Config{URL: srv.URL(), PasswordFile: srv.PasswordFile, KeyPrefix: "t:", Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&cfg)
	}
	c, err := redisconn.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestEpochSharedAndRenewed: replicas adopt one epoch; a flush is noticed
// by the periodic refresh even with no traffic, once per replica, and
// both adopt the same new epoch, whose Since is after the flush.
func TestEpochSharedAndRenewed(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	mod := func(c *redisconn.Config) { c.EpochTTL = 4 * time.Second }
	a, b := open(t, srv, mod), open(t, srv, mod)
	for _, c := range []*redisconn.Conn{a, b} {
		c.OnEpoch(func(redisconn.Epoch) { n.Add(1) })
	}
	first := a.Epoch()
	if b.Epoch() != first || first.ID == "" {
		t.Fatalf("epochs %v and %v", first, b.Epoch())
	}
	raw := srv.Client(t)
	ttl, err := raw.Do(t.Context(), raw.B().Pttl().Key("t:epoch").Build()).AsInt64()
	if err != nil || ttl <= 0 || ttl > 4000 {
		t.Errorf("epoch key TTL %d (%v), want within 4s", ttl, err)
	}
	flushed := time.Now()
	raw.Do(t.Context(), raw.B().Flushall().Build())
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n.Load() != 2 {
		t.Fatalf("%d epoch changes noticed, want one per replica", n.Load())
	}
	if a.Epoch() != b.Epoch() || a.Epoch().ID == first.ID || a.Epoch().Since.Before(flushed.Add(-time.Second)) {
		t.Errorf("after the flush: a %v, b %v (first %v)", a.Epoch(), b.Epoch(), first)
	}
}

func TestMatchEpoch(t *testing.T) {
	ep := redisconn.Epoch{ID: "abc", Since: time.Unix(5, 0)}
	for s, want := range map[string]bool{"abc 5": true, "abc 6": true, "abd 5": false, "abc": false, "": false, " abc 5": false} {
		if got := redisconn.MatchEpoch(s, ep); got != want {
			t.Errorf("MatchEpoch(%q) = %v", s, got)
		}
	}
}

func TestRedactURL(t *testing.T) {
	if got := redisconn.RedactURL("redis://user:hunter2@h:6379/0"); strings.Contains(got, "hunter2") || !strings.Contains(got, "h:6379") {
		t.Errorf("RedactURL = %q", got)
	}
}

func TestOpenErrors(t *testing.T) {
	srv := redistest.Start(t)
	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("not-the-password\n"), 0o600)
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o600)
	for _, tc := range []struct {
		name string
		cfg  redisconn.Config
		want string
	}{
		{"password in url", redisconn.Config{URL: "redis://u:" + srv.Password + "@" + srv.Addr + "/0"}, "password file"},
		{"wrong password", redisconn.Config{URL: srv.URL(), PasswordFile: wrong}, ""},
		{"no password", redisconn.Config{URL: srv.URL()}, ""},
		{"empty password file", redisconn.Config{URL: srv.URL(), PasswordFile: empty}, "empty"},
		{"missing password file", redisconn.Config{URL: srv.URL(), PasswordFile: empty + ".missing"}, "password file"},
		{"not listening", redisconn.Config{URL: "redis://127.0.0.1:1/0", PasswordFile: srv.PasswordFile, Timeout: 200 * time.Millisecond}, "unavailable"},
		{"bad scheme", redisconn.Config{URL: "http://" + srv.Addr}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			tc.cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			st, err := redisconn.Open(tc.cfg)
			if err == nil {
				st.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if strings.Contains(err.Error(), srv.Password) || strings.Contains(logs.String(), srv.Password) {
				t.Error("the password leaked into the error or log")
			}
		})
	}
}
