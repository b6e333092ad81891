package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
)

// testClock is a settable clock starting at the real time.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestAnomalyBurst: steady traffic for a quarter of an hour raises nothing;
// a scripted burst raises a call_rate anomaly (an alert record and a
// metric), and with action deny the principal is refused until the
// cool-down ends.
func TestAnomalyBurst(t *testing.T) {
	clock := &testClock{t: time.Now()}
	h := newHarness(t, harnessOptions{now: clock.Now, configure: func(c *config.Config) {
		c.Anomaly = config.Anomaly{Action: "deny", CoolDown: config.Duration(time.Minute)}
	}})
	c := h.claims("docs", "docs:read", time.Now().Add(24*time.Hour))
	tok := h.iss.Mint(c)
	alerts := func() int {
		n := 0
		for _, e := range h.audit.events() {
			if e.Kind == audit.KindAlert && strings.HasPrefix(e.Rule, "anomaly:") {
				n++
			}
		}
		return n
	}
	for range 90 { // one call every 10 s for 15 minutes
		if resp := h.do(rawReq{token: tok}); resp.status != http.StatusOK {
			t.Fatalf("steady traffic refused: %d %s", resp.status, resp.body)
		}
		clock.Advance(10 * time.Second)
	}
	if n := alerts(); n != 0 {
		t.Fatalf("steady traffic raised %d anomalies", n)
	}
	for range 80 { // a burst inside one window
		h.do(rawReq{token: tok})
	}
	if n := alerts(); n == 0 {
		t.Fatal("the burst raised no anomaly")
	}
	resp := h.do(rawReq{token: tok})
	if m := resp.rpc(t); m.Error == nil || !strings.Contains(m.Error.Message, "unusual activity (call_rate)") {
		t.Fatalf("during the cool-down: %s", resp.body)
	}
	srv := httptest.NewServer(h.gw.AdminHandler())
	defer srv.Close()
	mr, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	if !strings.Contains(string(body), `mcpgate_anomalies_total{action="deny",kind="call_rate"}`) {
		t.Error("no anomaly metric")
	}
	clock.Advance(2 * time.Minute)
	// Forwarded again (the upstream's own answer, not mcpgate's denial).
	if resp := h.do(rawReq{token: tok}); resp.status != http.StatusOK || (resp.rpc(t).Error != nil && resp.rpc(t).Error.Code == codeDenied) {
		t.Fatalf("after the cool-down: %d %s", resp.status, resp.body)
	}
}
