package gateway

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/redistest"
	"github.com/mcpgate/mcpgate/internal/revoke"
)

// TestRedisStoreFailsClosed: with the shared store unreachable, every
// call is refused with 503 and a JSON-RPC error an agent can act on, an
// audit record says why, nothing reaches the upstream and the token
// appears nowhere; once Redis is back the gateway serves again without a
// restart.
func TestRedisStoreFailsClosed(t *testing.T) {
	srv := redistest.Start(t)
	h := newHarness(t, harnessOptions{stateless: true, jsonResponse: true, configure: func(c *config.Config) {
		c.Store = config.Store{URL: srv.URL(), PasswordFile: srv.PasswordFile, KeyPrefix: "gw:", Timeout: config.Duration(300 * time.Millisecond)}
		c.Sequence.Rules = []config.SequenceRule{{ID: "budget", Budget: &config.BudgetRule{
			Match: config.Match{Tools: []string{"search"}}, Max: 100, Window: config.Duration(time.Hour), Per: "subject"}}}
	}})
	t.Cleanup(func() { h.gw.Close() })
	tok := h.token("docs", "docs:read")
	if r := h.do(rawReq{token: tok}); r.status != http.StatusOK || strings.Contains(string(r.body), `"error"`) {
		t.Fatalf("with redis up: %d %s", r.status, r.body)
	}
	srv.Stop()
	before := h.upstreamCounts()
	for _, tc := range []struct{ name, body string }{
		{"tools/call", ""},
		{"tools/list", rpcRequest(3, "tools/list", `{}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(rawReq{token: tok, body: tc.body})
			if r.status != http.StatusServiceUnavailable {
				t.Fatalf("status %d %s, want 503", r.status, r.body)
			}
			var msg struct {
				Error struct {
					Code    int
					Message string
				}
			}
			if err := json.Unmarshal(r.body, &msg); err != nil || !strings.Contains(msg.Error.Message, "try again later") {
				t.Errorf("answer %s: want a JSON-RPC error saying to try again later", r.body)
			}
			evs := h.eventsFor(r.header.Get("X-Request-Id"))
			if len(evs) == 0 {
				t.Fatalf("no audit record for the refusal (request id %q)", r.header.Get("X-Request-Id"))
			}
			last := evs[len(evs)-1]
			if last.Decision != audit.Error || !strings.HasSuffix(last.Reason, "state_unavailable") {
				t.Errorf("audit record %+v, want decision error, reason *_state_unavailable", last)
			}
		})
	}
	if after := h.upstreamCounts(); after["docs"] != before["docs"] {
		t.Errorf("the upstream received %d requests while the store was down", after["docs"]-before["docs"])
	}
	srv.Restart()
	// After the restart Redis is empty: a new epoch refuses tokens issued
	// before it (the revocations are gone); a fresh token is served.
	time.Sleep(1100 * time.Millisecond)
	fresh := h.token("docs", "docs:read")
	waitFor(t, "the gateway to serve again", func() bool {
		r := h.do(rawReq{token: fresh})
		return r.status == http.StatusOK && !strings.Contains(string(r.body), `"error"`)
	})
	if r := h.do(rawReq{token: tok}); r.status != http.StatusUnauthorized {
		t.Errorf("a token from before the data loss: %d %s, want 401", r.status, r.body)
	}
	h.assertNoTokenLeak(tok)
	if strings.Contains(h.logs.String(), srv.Password) {
		t.Error("the redis password is in the logs")
	}
}

// TestRedisSharesExchangedTokens: with store.token_cache_keys_file, a
// token exchanged by one replica is used by another without asking the
// authorization server again, and Redis holds it only encrypted.
func TestRedisSharesExchangedTokens(t *testing.T) {
	srv := redistest.Start(t)
	var exchanges atomic.Int32
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		exchanges.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"exchanged-`+randomAlnum(24)+`","token_type":"Bearer","expires_in":300,"issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}`)
	}))
	defer as.Close()
	dir := t.TempDir()
	secretFile, keysFile := filepath.Join(dir, "secret"), filepath.Join(dir, "token-keys")
	if err := os.WriteFile(secretFile, []byte("gw-secret-"+randomAlnum(16)), 0o600); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(keysFile, []byte("k1 "+base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{stateless: true, jsonResponse: true, configure: func(c *config.Config) {
		c.Store = config.Store{URL: srv.URL(), PasswordFile: srv.PasswordFile, KeyPrefix: "gwx:",
			Timeout: config.Duration(time.Second), TokenCacheKeysFile: keysFile}
		c.Routes[0].Credentials = config.RouteCredentials{Mode: "exchange", TokenEndpoint: as.URL + "/token",
			ClientID: "mcpgate", ClientSecretFile: secretFile}
	}})
	t.Cleanup(func() { h.gw.Close() })
	// Replica B: the same configuration, its own connection and caches.
	b, err := New(h.gw.cfg, Deps{Audit: &memSink{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	tok := h.token("docs", "docs:read")
	if r := h.do(rawReq{token: tok}); r.status != http.StatusOK {
		t.Fatalf("replica A: %d %s", r.status, r.body)
	}
	if exchanges.Load() != 1 {
		t.Fatalf("%d exchanges on A, want 1", exchanges.Load())
	}
	got := h.up["docs"].requests()
	upstreamToken := got[len(got)-1].Header.Get("Authorization")
	req := h.newRequest(rawReq{token: tok})
	req.RequestURI = ""
	w := httptest.NewRecorder()
	b.ServeHTTP(w, req.WithContext(t.Context()))
	if w.Code != http.StatusOK {
		t.Fatalf("replica B: %d %s", w.Code, w.Body)
	}
	if exchanges.Load() != 1 {
		t.Errorf("replica B exchanged again (%d exchanges): the shared cache was not used", exchanges.Load())
	}
	got = h.up["docs"].requests()
	if last := got[len(got)-1].Header.Get("Authorization"); last != upstreamToken {
		t.Errorf("replica B sent another upstream token")
	}
	// What Redis holds: no trace of either token.
	raw := srv.Client(t)
	keys, _ := raw.Do(t.Context(), raw.B().Keys().Pattern("gwx:tok:*").Build()).AsStrSlice()
	if len(keys) != 1 {
		t.Fatalf("token cache keys %q, want one", keys)
	}
	v, _ := raw.Do(t.Context(), raw.B().Get().Key(keys[0]).Build()).ToString()
	secret := strings.TrimPrefix(upstreamToken, "Bearer ")
	if strings.Contains(v, secret) || strings.Contains(v, tok) || strings.Contains(v, "exchanged-") {
		t.Error("the cached token is stored in clear")
	}
}

// TestRedisRevocationNextRequest: a revocation made on replica A is
// refused by replica B on its very next request — a tools/call (checked
// by its state update in the same round trip) and any other request (its
// version read from Redis) — with no wait for the client-side cache's
// invalidation.
func TestRedisRevocationNextRequest(t *testing.T) {
	srv := redistest.Start(t)
	h := newHarness(t, harnessOptions{stateless: true, jsonResponse: true, configure: func(c *config.Config) {
		c.Store = config.Store{URL: srv.URL(), PasswordFile: srv.PasswordFile, KeyPrefix: "gwr:", Timeout: config.Duration(time.Second)}
	}})
	t.Cleanup(func() { h.gw.Close() })
	b, err := New(h.gw.cfg, Deps{Audit: &memSink{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	serveB := func(rr rawReq) *httptest.ResponseRecorder {
		req := h.newRequest(rr)
		req.RequestURI = ""
		w := httptest.NewRecorder()
		b.ServeHTTP(w, req.WithContext(t.Context()))
		return w
	}
	for i, body := range []string{"", rpcRequest(3, "tools/list", `{}`)} {
		sub := "user-" + strconv.Itoa(i)
		tok := h.mint("docs", sub, "agent-1", "docs:read")
		if w := serveB(rawReq{token: tok, body: body}); w.Code != http.StatusOK {
			t.Fatalf("before the revocation: %d %s", w.Code, w.Body)
		}
		before := h.upstreamCounts()["docs"]
		if _, err := h.gw.revoked.Add(revoke.Entry{Kind: revoke.KindSubject, Issuer: h.iss.URL(), Value: sub}); err != nil {
			t.Fatal(err)
		}
		w := serveB(rawReq{token: tok, body: body})
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "revoked") {
			t.Errorf("%s on B right after the revocation on A: %d %s", []string{"tools/call", "tools/list"}[i], w.Code, w.Body)
		}
		if h.upstreamCounts()["docs"] != before {
			t.Error("the revoked request reached the upstream")
		}
	}
}
