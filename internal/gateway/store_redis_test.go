package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/redistest"
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
