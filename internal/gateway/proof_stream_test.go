package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
)

// outcomeOf waits for the outcome record of a request.
func (h *harness) outcomeOf(t *testing.T, requestID string) audit.Event {
	t.Helper()
	var out audit.Event
	waitFor(t, "the outcome record of "+requestID, func() bool {
		for _, e := range h.eventsFor(requestID) {
			if e.Kind == audit.KindOutcome {
				out = e
				return true
			}
		}
		return false
	})
	return out
}

// TestProofStreamCap: a principal may hold at most MaxStreamsPerPrincipal
// GET streams; closing one frees its slot and records client_gone.
func TestProofStreamCap(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: func(c *config.Config) { c.Limits.MaxStreamsPerPrincipal = 1 }})
	alice := h.token("docs", "docs:read")
	sid := h.initSession(t, "docs", alice)
	first := h.open(t, rawReq{method: http.MethodGet, token: alice, session: sid})
	firstID := first.Header.Get("X-Request-Id")

	resp := h.expectReject(t, rawReq{method: http.MethodGet, token: alice, session: sid},
		rejectWant{status: 429, code: codeTooMany, decision: audit.Reject, reason: "too_many_streams"})
	if resp.header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	// Another principal has slots of its own.
	bob := h.mint("docs", "bob", "agent-1", "docs:read")
	bobStream := h.open(t, rawReq{method: http.MethodGet, token: bob, session: h.initSession(t, "docs", bob)})
	bobStream.Body.Close()

	first.Body.Close()
	if o := h.outcomeOf(t, firstID); o.Reason != "client_gone" || o.Decision != audit.Forward {
		t.Errorf("closed stream's outcome = %+v, want forward/client_gone", o)
	}
	waitFor(t, "the stream slots to be released", func() bool { return h.gw.streams.Open() == 0 })
	again := h.open(t, rawReq{method: http.MethodGet, token: alice, session: sid})
	again.Body.Close()
	h.assertNoTokenLeak(alice)
}

// TestProofStreamTokenExpiry: an SSE stream ends when the token that
// opened it expires. It takes about two seconds: JWT expiry has a
// resolution of one second.
func TestProofStreamTokenExpiry(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	long := h.token("docs", "docs:read")
	sid := h.initSession(t, "docs", long)
	short := h.iss.Mint(h.claims("docs", "docs:read", time.Now().Add(2*time.Second)))
	stream := h.open(t, rawReq{method: http.MethodGet, token: short, session: sid})
	id := stream.Header.Get("X-Request-Id")
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, stream.Body)
		done <- err
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream outlived its token")
	}
	stream.Body.Close()
	if o := h.outcomeOf(t, id); o.Reason != "token_expired" {
		t.Errorf("outcome = %+v, want reason token_expired", o)
	}
	// The session itself is still usable with a valid token.
	if resp := h.do(rawReq{token: long, session: sid}); resp.status != 200 {
		t.Errorf("session after the stream ended: %d", resp.status)
	}
	h.assertNoTokenLeak(short)
}

// TestProofClientDisconnect: when the client goes away, the upstream
// request is cancelled — before the response started and mid-stream.
func TestProofClientDisconnect(t *testing.T) {
	var mu sync.Mutex
	started := make(chan struct{}, 4)
	cancelled := make(chan struct{}, 4)
	opts := sessionOptions()
	opts.wrapUpstream = func(_ string, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			if strings.Contains(string(body), `"name":"slow"`) || strings.Contains(string(body), `"name":"sample"`) {
				mu.Lock()
				started <- struct{}{}
				mu.Unlock()
				go func() {
					<-r.Context().Done()
					cancelled <- struct{}{}
				}()
			}
			next.ServeHTTP(w, r)
		})
	}
	h := newHarness(t, opts)
	alice := h.token("docs", "docs:read")
	sid := h.initSession(t, "docs", alice)
	wait := func(ch chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
	}

	t.Run("before the response", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		req := h.newRequest(rawReq{token: alice, session: sid, body: toolsCall(7, "slow", `{"text":"x"}`)}).WithContext(ctx)
		errc := make(chan error, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		wait(started, "the upstream to start the call")
		cancel()
		wait(cancelled, "the upstream request to be cancelled")
		<-errc
		waitFor(t, "an outcome record", func() bool { return h.lastOutcome().Reason == "client_gone" })
	})

	t.Run("mid-stream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req := h.newRequest(rawReq{token: alice, session: sid, body: toolsCall(8, "sample", `{"text":"x"}`)}).WithContext(ctx)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		wait(started, "the upstream to start the call")
		nextEvent(t, bufio.NewReader(resp.Body)) // the sampling request: the response has started
		cancel()
		resp.Body.Close()
		wait(cancelled, "the upstream request to be cancelled")
		if o := h.outcomeOf(t, resp.Header.Get("X-Request-Id")); o.Reason != "client_gone" {
			t.Errorf("outcome = %+v, want client_gone", o)
		}
	})
}

// lastOutcome returns the newest outcome record.
func (h *harness) lastOutcome() audit.Event {
	evs := h.audit.events()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Kind == audit.KindOutcome {
			return evs[i]
		}
	}
	return audit.Event{}
}

// TestProofUpstreamDown: an unreachable upstream is a 502 JSON-RPC error
// and an "error" outcome.
func TestProofUpstreamDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/mcp"
	l.Close()
	h := newHarness(t, harnessOptions{stateless: true, configure: func(c *config.Config) { c.Routes[0].Upstream.URL = dead }})
	tok := h.token("docs", "docs:read")
	resp := h.do(rawReq{token: tok})
	h.checkReject(t, "docs", resp, rejectWant{status: 502, code: -32603})
	evs := h.recordsOf(t, resp.requestID(), 2)
	if len(evs) != 2 || evs[0].Decision != audit.Allow || evs[1].Kind != audit.KindOutcome ||
		evs[1].Decision != audit.Error || evs[1].Reason != "upstream_unavailable" || evs[1].Status != 502 {
		t.Errorf("records = %+v, want allow, then an error outcome with status 502", evs)
	}
	h.assertNoTokenLeak(tok)
}

// TestProofUpstreamChallenge: an upstream's own 401 challenge never
// reaches the client: the client's token is for the gateway, and a
// challenge from behind it would send the client to re-authorize for
// nothing.
func TestProofUpstreamChallenge(t *testing.T) {
	opts := harnessOptions{stateless: true, wrapUpstream: func(_ string, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="upstream", error="invalid_token"`)
			w.Header().Set("Set-Cookie", "upstream=1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":7,"error":{"code":-32001,"message":"upstream wants a token"}}`)
		})
	}}
	h := newHarness(t, opts)
	tok := h.token("docs", "docs:read")
	resp := h.do(rawReq{token: tok})
	if got := resp.header.Values("WWW-Authenticate"); len(got) != 0 {
		t.Errorf("client received the upstream's challenge %q", got)
	}
	if got := resp.header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("client received the upstream's cookie %q", got)
	}
	if resp.status == http.StatusUnauthorized {
		t.Errorf("status 401 without a challenge (RFC 9110 §15.5.2 requires one); the upstream's 401 must not pass as the gateway's")
	}
	h.checkReject(t, "docs", resp, rejectWant{status: 502, code: -32603})
	if o := h.outcomeOf(t, resp.requestID()); o.Decision != audit.Error || o.UpstreamStatus != 401 {
		t.Errorf("outcome = %+v, want an error with upstream status 401", o)
	}
	h.assertNoTokenLeak(tok)
}
