package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
)

// reconfigured returns a copy of the harness's configuration edited by f.
func reconfigured(h *harness, f func(*config.Config)) *config.Config {
	c := *h.gw.cfg
	c.Routes = append([]config.Route(nil), c.Routes...)
	for i := range c.Routes {
		tools := map[string]config.ItemRule{}
		for k, v := range c.Routes[i].Tools {
			tools[k] = v
		}
		c.Routes[i].Tools = tools
	}
	f(&c)
	return &c
}

// TestReload: a reload swaps the policy in at once; sessions survive it; a
// call in flight finishes on the configuration it started with; an invalid
// configuration, or one that needs a restart, keeps the current one.
func TestReload(t *testing.T) {
	release := make(chan struct{})
	p := &planted{}
	h := newHarness(t, harnessOptions{wrapUpstream: p.wrap})
	tok := h.token("docs", "docs:read")
	sid := h.initSession(t, "docs", tok)
	if m := h.do(rawReq{token: tok, session: sid, body: toolsCall(7, "unlisted", `{}`)}).rpc(t); m.Error == nil || m.Error.Code != codeDenied {
		t.Fatalf("before the reload, an unlisted tool: %+v", m)
	}

	// A call in flight when the configuration changes.
	p.set(func(w http.ResponseWriter, id string) {
		<-release
		jsonAnswer(w, 200, `{"jsonrpc":"2.0","id":`+id+`,"result":{"content":[{"type":"text","text":"slow search done"}]}}`)
	})
	before := h.up["docs"].count()
	inflight := make(chan *rawResp, 1)
	go func() { inflight <- h.do(rawReq{token: tok, session: sid}) }()
	waitFor(t, "the call to reach the upstream", func() bool { return h.up["docs"].count() > before })

	err := h.gw.Reload(reconfigured(h, func(c *config.Config) {
		c.Routes[0].Tools["unlisted"] = config.ItemRule{}
		delete(c.Routes[0].Tools, "search")
	}))
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	close(release)
	if r := <-inflight; r.status != http.StatusOK || !strings.Contains(string(r.body), "slow search done") {
		t.Fatalf("the call in flight: %d %s", r.status, r.body)
	}
	p.set(nil)
	if m := h.do(rawReq{token: tok, session: sid, body: toolsCall(8, "unlisted", `{}`)}).rpc(t); m.Error != nil {
		t.Fatalf("after the reload, the newly listed tool on the old session: %+v", m.Error)
	}
	if m := h.do(rawReq{token: tok, session: sid}).rpc(t); m.Error == nil || m.Error.Code != codeDenied {
		t.Fatalf("after the reload, the removed tool: %+v", m)
	}

	// Refused reloads keep the current configuration.
	bad := reconfigured(h, func(c *config.Config) { c.Routes[0].Path = "no-slash" })
	if err := h.gw.Reload(bad); err == nil {
		t.Fatal("an invalid configuration was accepted")
	}
	restart := reconfigured(h, func(c *config.Config) { c.Server.Listen = "127.0.0.1:1" })
	if err := h.gw.Reload(restart); err == nil || !strings.Contains(err.Error(), "server.listen") {
		t.Fatalf("a listener change: %v", err)
	}
	if m := h.do(rawReq{token: tok, session: sid, body: toolsCall(9, "unlisted", `{}`)}).rpc(t); m.Error != nil {
		t.Fatalf("after refused reloads: %+v", m.Error)
	}
	srv := httptest.NewServer(h.gw.AdminHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`mcpgate_config_reloads_total{result="success"} 1`, `mcpgate_config_reloads_total{result="failure"} 2`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestShutdownDrainsStreams: on shutdown, an open event stream is ended
// within server.shutdown_timeout, and Run returns.
func TestShutdownDrainsStreams(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: func(c *config.Config) {
		c.Server.ShutdownTimeout = config.Duration(time.Second)
	}})
	tok := h.token("docs", "docs:read")
	sid := h.initSession(t, "docs", tok)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.gw.Run(ctx, l) }()
	req := h.newRequest(rawReq{method: http.MethodGet, token: tok, session: sid})
	req.URL.Host = l.Addr().String()
	var resp *http.Response
	waitFor(t, "the stream to open", func() bool {
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp = r
		return true
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	ended := make(chan struct{})
	go func() {
		io.Copy(io.Discard, resp.Body)
		close(ended)
	}()
	cancel()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream outlived the shutdown")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}
