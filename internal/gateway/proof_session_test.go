package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func sessionOptions() harnessOptions {
	return harnessOptions{configure: func(c *config.Config) {
		c.Limits.MaxSessionsPerPrincipal = 3
		c.Routes[0].Tools["sample"] = config.ItemRule{}
		c.Routes[0].Tools["ask"] = config.ItemRule{}
		c.Routes[0].Tools["slow"] = config.ItemRule{}
	}}
}

// TestProofSessions: an Mcp-Session-Id belongs to the principal and route
// that opened it; anyone else gets 404 and nothing is forwarded.
func TestProofSessions(t *testing.T) {
	h := newHarness(t, sessionOptions())
	alice := h.token("docs", "docs:read")
	sid := h.initSession(t, "docs", alice)

	// The session id the client got is the one the upstream assigned.
	reqs := h.up["docs"].requests()
	if got := reqs[len(reqs)-1].Header.Get("Mcp-Session-Id"); got != sid {
		t.Errorf("upstream saw Mcp-Session-Id %q, client got %q", got, sid)
	}
	if resp := h.do(rawReq{token: alice, session: sid}); resp.status != 200 || resp.rpc(t).Error != nil {
		t.Fatalf("owner's call on its session: %d %s", resp.status, resp.body)
	}

	bob := h.mint("docs", "bob", "agent-1", "docs:read")
	aliceOtherClient := h.mint("docs", "alice", "agent-2", "docs:read")
	aliceMail := h.token("mail", "mail:read")
	notFound := func(id string) rejectWant {
		return rejectWant{status: 404, code: codeSessionNotFound, id: id, decision: audit.Reject, reason: "unknown_session"}
	}
	for _, tc := range []struct {
		name string
		rr   rawReq
		want rejectWant
	}{
		{"bob, same client", rawReq{token: bob, session: sid}, notFound("7")},
		{"alice, another client_id", rawReq{token: aliceOtherClient, session: sid}, notFound("7")},
		{"alice, on the other route", rawReq{route: "mail", token: aliceMail, session: sid}, notFound("7")},
		{"unknown session id", rawReq{token: alice, session: randomToken("sess-", 16)}, notFound("7")},
		{"bob's GET stream", rawReq{method: http.MethodGet, token: bob, session: sid}, notFound("")},
		{"bob's DELETE", rawReq{method: http.MethodDelete, token: bob, session: sid}, notFound("")},
		{"bob answers a server request", rawReq{token: bob, session: sid, body: `{"jsonrpc":"2.0","id":0,"result":{}}`}, notFound("")},
		{"initialize with a session id", rawReq{token: alice, session: sid, body: rpcRequest(1, "initialize",
			`{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}`)},
			rejectWant{status: 400, code: -32600, id: "1", decision: audit.Reject, reason: "reinitialize"}},
		{"DELETE without a session", rawReq{method: http.MethodDelete, token: alice},
			rejectWant{status: 400, code: -32600, decision: audit.Reject, reason: "session_header"}},
	} {
		t.Run(tc.name, func(t *testing.T) { h.expectReject(t, tc.rr, tc.want) })
	}

	// Still alice's after all that.
	if resp := h.do(rawReq{token: alice, session: sid}); resp.status != 200 {
		t.Fatalf("owner's call after the refusals: %d %s", resp.status, resp.body)
	}
	// DELETE ends the binding; the next use is 404, not forwarded.
	if resp := h.do(rawReq{method: http.MethodDelete, token: alice, session: sid}); resp.status/100 != 2 {
		t.Fatalf("DELETE: %d %s", resp.status, resp.body)
	}
	t.Run("after DELETE", func(t *testing.T) { h.expectReject(t, rawReq{token: alice, session: sid}, notFound("7")) })
	for _, tok := range []string{alice, bob, aliceOtherClient, aliceMail} {
		h.assertNoTokenLeak(tok)
	}
}

// TestProofSessionCap: a principal may hold at most
// MaxSessionsPerPrincipal sessions; DELETE frees a slot.
func TestProofSessionCap(t *testing.T) {
	h := newHarness(t, sessionOptions())
	carol := h.mint("docs", "carol", "agent-1", "docs:read")
	var sids []string
	for range 3 {
		sids = append(sids, h.initSession(t, "docs", carol))
	}
	initBody := rpcRequest(1, "initialize", `{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}`)
	resp := h.expectReject(t, rawReq{token: carol, version: "-", body: initBody},
		rejectWant{status: 429, code: codeTooMany, id: "1", decision: audit.Reject, reason: "too_many_sessions"})
	if resp.header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	// Another principal is not affected.
	h.initSession(t, "docs", h.mint("docs", "dave", "agent-1", "docs:read"))
	if resp := h.do(rawReq{method: http.MethodDelete, token: carol, session: sids[0]}); resp.status/100 != 2 {
		t.Fatalf("DELETE: %d", resp.status)
	}
	h.initSession(t, "docs", carol)
}

// TestProofUpstreamSessionID: an upstream cannot hand a client a session id
// on anything but initialize.
func TestProofUpstreamSessionID(t *testing.T) {
	forged := randomToken("forged-", 8)
	opts := sessionOptions()
	opts.wrapUpstream = func(_ string, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Mcp-Session-Id") != "" {
				w.Header().Set("Mcp-Session-Id", forged)
			}
			next.ServeHTTP(forgingWriter{w, forged}, r)
		})
	}
	h := newHarness(t, opts)
	alice := h.token("docs", "docs:read")
	sid := h.initSession(t, "docs", alice)
	resp := h.do(rawReq{token: alice, session: sid})
	if resp.status != 200 {
		t.Fatalf("call: %d %s", resp.status, resp.body)
	}
	if got := resp.header.Values("Mcp-Session-Id"); len(got) != 0 {
		t.Errorf("client received Mcp-Session-Id %q from a tools/call response", got)
	}
	h.expectReject(t, rawReq{token: alice, session: forged},
		rejectWant{status: 404, code: codeSessionNotFound, id: "7", decision: audit.Reject, reason: "unknown_session"})
}

// forgingWriter sets a different Mcp-Session-Id just before the headers go
// out, whatever the MCP handler set.
type forgingWriter struct {
	http.ResponseWriter
	sid string
}

func (f forgingWriter) WriteHeader(code int) {
	if f.Header().Get("Mcp-Session-Id") != "" {
		f.Header().Set("Mcp-Session-Id", f.sid)
	}
	f.ResponseWriter.WriteHeader(code)
}

func (f forgingWriter) Write(b []byte) (int, error) { return f.ResponseWriter.Write(b) }

func (f forgingWriter) Flush() { http.NewResponseController(f.ResponseWriter).Flush() }

func (f forgingWriter) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// TestProofClientResponses: a client's JSON-RPC response passes only for
// a request the upstream sent on that session, once.
func TestProofClientResponses(t *testing.T) {
	h := newHarness(t, sessionOptions())
	alice := h.token("docs", "docs:read")
	sid := h.initSession(t, "docs", alice)
	other := h.initSession(t, "docs", alice)
	unexpected := rejectWant{status: 400, code: -32600, decision: audit.Reject, reason: "unexpected_response"}
	for _, tc := range []struct {
		name string
		rr   rawReq
	}{
		{"result for an id never sent", rawReq{token: alice, session: sid, body: `{"jsonrpc":"2.0","id":99,"result":{}}`}},
		{"error for an id never sent", rawReq{token: alice, session: sid, body: `{"jsonrpc":"2.0","id":"x","error":{"code":-1,"message":"no"}}`}},
		{"response without a session", rawReq{token: alice, body: `{"jsonrpc":"2.0","id":0,"result":{}}`}},
	} {
		t.Run(tc.name, func(t *testing.T) { h.expectReject(t, tc.rr, unexpected) })
	}

	// A server request outstanding on sid: answering it on another session
	// of the same principal is refused, on sid it passes, and only once.
	stream := h.open(t, rawReq{token: alice, session: sid, body: toolsCall(9, "sample", `{"text":"ping"}`)})
	defer stream.Body.Close()
	br := bufio.NewReader(stream.Body)
	var req rpcMsg
	if err := json.Unmarshal(nextEvent(t, br), &req); err != nil || req.Method != "sampling/createMessage" {
		t.Fatalf("first event = %+v (%v), want a sampling/createMessage request", req, err)
	}
	answer := `{"jsonrpc":"2.0","id":` + string(req.ID) + `,"result":{"role":"assistant","model":"m","content":{"type":"text","text":"pong"}}}`
	t.Run("answer on another session", func(t *testing.T) {
		h.expectReject(t, rawReq{token: alice, session: other, body: answer}, unexpected)
	})
	if resp := h.do(rawReq{token: alice, session: sid, body: answer}); resp.status != http.StatusAccepted {
		t.Fatalf("answer on its session: %d %s", resp.status, resp.body)
	}
	var res rpcMsg
	if err := json.Unmarshal(nextEvent(t, br), &res); err != nil || !strings.Contains(string(res.Result), "sampled: pong") {
		t.Fatalf("tool result = %s (%v)", res.Result, err)
	}
	t.Run("replayed answer", func(t *testing.T) {
		h.expectReject(t, rawReq{token: alice, session: sid, body: answer}, unexpected)
	})
	h.assertNoTokenLeak(alice)
}

// TestProofSamplingElicitation: real go-sdk sampling and elicitation round
// trips through the gateway, and a replay of the client's answer is
// refused without reaching the upstream.
func TestProofSamplingElicitation(t *testing.T) {
	for _, mode := range []struct {
		name string
		json bool
	}{{"SSE", false}, {"JSON", true}} {
		t.Run(mode.name, func(t *testing.T) {
			opts := sessionOptions()
			opts.jsonResponse = mode.json
			h := newHarness(t, opts)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			tok := h.token("docs", "docs:read")
			c := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1.0.0"}, samplingClientOptions())
			cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: h.url("docs"),
				HTTPClient: &http.Client{Transport: bearer{token: tok, base: http.DefaultTransport}}, MaxRetries: -1},
				&mcp.ClientSessionOptions{ProtocolVersion: v1125})
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer cs.Close()
			for _, tc := range []struct{ tool, want string }{{"sample", "sampled: pong"}, {"ask", "accept: 42"}} {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool, Arguments: map[string]any{"text": "hi"}})
				if err != nil || res.IsError {
					t.Fatalf("%s: %v %+v", tc.tool, err, res)
				}
				if got := res.Content[0].(*mcp.TextContent).Text; got != tc.want {
					t.Errorf("%s = %q, want %q", tc.tool, got, tc.want)
				}
			}
			// Replay each answer the client sent.
			var answers []recordedRequest
			for _, r := range h.up["docs"].requests() {
				var m rpcMsg
				if json.Unmarshal(r.Body, &m) == nil && m.Method == "" && len(m.ID) > 0 && (m.Result != nil || m.Error != nil) {
					answers = append(answers, r)
				}
			}
			if len(answers) != 2 {
				t.Fatalf("upstream received %d client answers, want 2", len(answers))
			}
			for _, a := range answers {
				h.expectReject(t, rawReq{token: tok, session: a.Header.Get("Mcp-Session-Id"), body: string(a.Body)},
					rejectWant{status: 400, code: -32600, decision: audit.Reject, reason: "unexpected_response"})
			}
			h.assertNoTokenLeak(tok)
		})
	}
}

// open sends rr and returns the response with its body unread.
func (h *harness) open(t *testing.T, rr rawReq) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(h.newRequest(rr))
	if err != nil {
		t.Fatalf("%s: %v", rr.method, err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("stream: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return resp
}

// nextEvent returns the data of the next SSE event that has data.
func nextEvent(t *testing.T, br *bufio.Reader) json.RawMessage {
	t.Helper()
	ev, err := readEvent(br)
	if err != nil {
		t.Fatalf("read event: %v", err)
	}
	return ev
}

func readEvent(br *bufio.Reader) (json.RawMessage, error) {
	var data []string
	for {
		line, err := br.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "" && len(data) > 0:
			return json.RawMessage(strings.Join(data, "\n")), nil
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(data) > 0 {
				return json.RawMessage(strings.Join(data, "\n")), nil
			}
			return nil, err
		}
	}
}
