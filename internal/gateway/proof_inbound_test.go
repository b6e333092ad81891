package gateway

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
)

const appOrigin = "http://app.example"

func inboundOptions() harnessOptions {
	return harnessOptions{stateless: true, configure: func(c *config.Config) {
		c.Server.AllowedOrigins = []string{appOrigin}
		c.Limits.MaxBodyBytes = 2048
		c.Limits.MaxJSONDepth = 16
	}}
}

// TestProofInbound: the checks of stage 1 — Origin, HTTP method, body
// size, media type and strict JSON-RPC — each refused with its status and
// JSON-RPC error, nothing forwarded.
func TestProofInbound(t *testing.T) {
	h := newHarness(t, inboundOptions())
	tok := h.token("docs", "docs:read")
	deep := strings.Repeat(`{"a":`, 20) + `1` + strings.Repeat(`}`, 20)
	big := toolsCall(7, "search", `{"text":"`+strings.Repeat("x", 4096)+`"}`)
	rej := func(status, code int, reason string) rejectWant {
		return rejectWant{status: status, code: code, decision: audit.Reject, reason: reason}
	}
	for _, tc := range []struct {
		name string
		rr   rawReq
		want rejectWant
	}{
		{"origin not allowed, no token", rawReq{header: http.Header{"Origin": {"http://evil.example"}}}, rej(403, -32600, "origin")},
		{"origin not allowed, valid token", rawReq{token: tok, header: http.Header{"Origin": {"http://evil.example"}}}, rej(403, -32600, "origin")},
		{"origin null", rawReq{token: tok, header: http.Header{"Origin": {"null"}}}, rej(403, -32600, "origin")},
		{"allowed origin with another port", rawReq{token: tok, header: http.Header{"Origin": {appOrigin + ":8443"}}}, rej(403, -32600, "origin")},
		{"two Origin headers", rawReq{token: tok, header: http.Header{"Origin": {appOrigin, "http://evil.example"}}}, rej(403, -32600, "origin")},
		{"body over limit", rawReq{token: tok, body: big}, rej(413, -32600, "body_too_large")},
		{"body over limit, chunked", rawReq{token: tok, body: big, chunked: true}, rej(413, -32600, "body_too_large")},
		{"body over limit, no token", rawReq{body: big}, rej(413, -32600, "body_too_large")},
		{"Content-Type text/plain", rawReq{token: tok, header: http.Header{"Content-Type": {"text/plain"}}}, rej(415, -32600, "content_type")},
		{"Content-Type missing", rawReq{token: tok, header: http.Header{"Content-Type": nil}}, rej(415, -32600, "content_type")},
		{"two Content-Types", rawReq{token: tok, header: http.Header{"Content-Type": {"application/json", "application/json"}}}, rej(415, -32600, "content_type")},
		{"malformed JSON", rawReq{token: tok, body: `{"jsonrpc":"2.0","id":1,"method":`}, rej(400, -32700, "parse_error")},
		{"trailing garbage", rawReq{token: tok, body: toolsCall(7, "search", "") + `x`}, rej(400, -32700, "parse_error")},
		{"batch", rawReq{token: tok, body: `[` + toolsCall(7, "search", "") + `]`}, rej(400, -32600, "invalid_request")},
		{"duplicate key name", rawReq{token: tok, body: `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","name":"delete_everything"}}`}, rej(400, -32600, "invalid_request")},
		{"case-variant key Name", rawReq{token: tok, body: `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","Name":"delete_everything","arguments":{}}}`}, rej(400, -32600, "invalid_request")},
		{"case-variant key Method", rawReq{token: tok, body: `{"jsonrpc":"2.0","id":7,"method":"tools/list","Method":"tools/call","params":{}}`}, rej(400, -32600, "invalid_request")},
		{"escaped duplicate key", rawReq{token: tok, body: `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","n\u0061me":"delete_everything"}}`}, rej(400, -32600, "invalid_request")},
		{"duplicate argument", rawReq{token: tok, body: toolsCall(7, "read_document", `{"project":"roadmap","project":"secret"}`)}, rej(400, -32600, "invalid_request")},
		{"nesting over the depth cap", rawReq{token: tok, body: toolsCall(7, "search", `{"text":`+deep+`}`)}, rej(400, -32600, "invalid_request")},
		{"PUT", rawReq{method: http.MethodPut, token: tok}, rej(405, -32600, "http_method")},
		{"PATCH, no token", rawReq{method: http.MethodPatch}, rej(405, -32600, "http_method")},
		{"OPTIONS without Origin", rawReq{method: http.MethodOptions}, rej(405, -32600, "http_method")},
		{"two Mcp-Session-Id", rawReq{token: tok, header: http.Header{"Mcp-Session-Id": {"a", "b"}}}, rej(400, -32600, "session_header")},
		{"Mcp-Session-Id with a space", rawReq{token: tok, session: "a b"}, rej(400, -32600, "session_header")},
		{"Mcp-Session-Id too long", rawReq{token: tok, session: strings.Repeat("s", 257)}, rej(400, -32600, "session_header")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.expectReject(t, tc.rr, tc.want)
			if tc.want.status == 405 && resp.header.Get("Allow") == "" {
				t.Errorf("405 without an Allow header")
			}
		})
	}

	// Without a token, a malformed body is a 401: authentication first.
	h.expectReject(t, rawReq{body: `{"jsonrpc":`}, rejectWant{status: 401, code: codeUnauthorized,
		challenge: chNoToken, decision: audit.Reject, reason: "missing"})

	// The controls are forwarded: no Origin, a media type with parameters.
	for _, rr := range []rawReq{
		{token: tok},
		{token: tok, header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}},
		{token: tok, body: toolsCall(7, "search", `{"text":`+strings.Repeat(`[`, 12)+`1`+strings.Repeat(`]`, 12)+`}`)},
	} {
		before := h.up["docs"].count()
		if resp := h.do(rr); resp.status != 200 || h.up["docs"].count() != before+1 {
			t.Errorf("control %+v: status %d, forwarded %d; %s", rr.header, resp.status, h.up["docs"].count()-before, resp.body)
		}
	}
	h.assertNoTokenLeak(tok)
}

// TestProofCORS: an allowed browser origin gets CORS headers (on success
// and on a challenge, so a browser client can read WWW-Authenticate), and
// preflights are answered without reaching the upstream.
func TestProofCORS(t *testing.T) {
	h := newHarness(t, inboundOptions())
	tok := h.token("docs", "docs:read")
	for _, tc := range []struct {
		name   string
		rr     rawReq
		status int
	}{
		{"forwarded", rawReq{token: tok, header: http.Header{"Origin": {appOrigin}}}, 200},
		{"challenge", rawReq{header: http.Header{"Origin": {appOrigin}}}, 401},
		{"origin in upper case", rawReq{token: tok, header: http.Header{"Origin": {strings.ToUpper(appOrigin)}}}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.do(tc.rr)
			if resp.status != tc.status {
				t.Fatalf("status = %d, want %d: %s", resp.status, tc.status, resp.body)
			}
			if got := resp.header.Get("Access-Control-Allow-Origin"); got != tc.rr.header.Get("Origin") {
				t.Errorf("Access-Control-Allow-Origin = %q", got)
			}
			exp := resp.header.Get("Access-Control-Expose-Headers")
			for _, want := range []string{"Mcp-Session-Id", "WWW-Authenticate"} {
				if !strings.Contains(exp, want) {
					t.Errorf("Access-Control-Expose-Headers = %q, missing %s", exp, want)
				}
			}
			if !strings.Contains(strings.Join(resp.header.Values("Vary"), ","), "Origin") {
				t.Errorf("Vary = %q, want Origin", resp.header.Values("Vary"))
			}
		})
	}
	// No Origin: no CORS headers.
	if resp := h.do(rawReq{token: tok}); resp.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS header without an Origin")
	}

	before := h.upstreamCounts()
	pre := h.do(rawReq{method: http.MethodOptions, version: "-", header: http.Header{"Origin": {appOrigin},
		"Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"authorization, content-type, mcp-protocol-version"}}})
	if pre.status != http.StatusNoContent {
		t.Errorf("preflight status = %d, want 204", pre.status)
	}
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin": appOrigin, "Access-Control-Allow-Methods": "POST",
		"Access-Control-Allow-Headers": "Authorization",
	} {
		if got := pre.header.Get(k); !strings.Contains(got, want) {
			t.Errorf("preflight %s = %q, want it to contain %q", k, got, want)
		}
	}
	// A preflight from another origin is refused like the request would be.
	bad := h.do(rawReq{method: http.MethodOptions, version: "-", header: http.Header{"Origin": {"http://evil.example"},
		"Access-Control-Request-Method": {"POST"}}})
	h.checkReject(t, "docs", bad, rejectWant{status: 403, code: -32600})
	if bad.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("refused preflight carries Access-Control-Allow-Origin")
	}
	if evs := h.eventsFor(bad.requestID()); len(evs) != 1 || evs[0].Decision != audit.Reject || evs[0].Reason != "origin" {
		t.Errorf("refused preflight audit records = %+v, want one reject/origin", evs)
	}
	if after := h.upstreamCounts(); !maps2Equal(before, after) {
		t.Errorf("a preflight reached the upstream")
	}
}

// TestProofHeaderTooLarge: the real server refuses oversized headers with
// 431 before the gateway runs (so no audit record is possible, and nothing
// is forwarded).
func TestProofHeaderTooLarge(t *testing.T) {
	h := newHarness(t, harnessOptions{stateless: true, configure: func(c *config.Config) { c.Server.MaxHeaderBytes = 4096 }})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.gw.Run(ctx, l) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	tok := h.token("docs", "docs:read")
	base := "http://" + l.Addr().String()
	send := func(pad int) int {
		req := h.newRequest(rawReq{token: tok})
		req.URL.Host = l.Addr().String()
		req.Host = ""
		req.Header.Set("X-Pad", strings.Repeat("p", pad))
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", base, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	nAudit := len(h.audit.events())
	before := h.upstreamCounts()
	if got := send(64 << 10); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: status %d, want 431", got)
	}
	if after := h.upstreamCounts(); !maps2Equal(before, after) {
		t.Errorf("an oversized request reached the upstream")
	}
	if n := len(h.audit.events()); n != nAudit {
		t.Errorf("audit records for a 431 = %d (the handler must not have run)", n-nAudit)
	}
	if got := send(100); got != http.StatusOK {
		t.Errorf("small header: status %d, want 200", got)
	}
	h.assertNoTokenLeak(tok)
}

// TestProofRateLimit: the per-IP limit applies before authentication,
// with Retry-After.
func TestProofRateLimit(t *testing.T) {
	h := newHarness(t, harnessOptions{stateless: true, configure: func(c *config.Config) {
		c.Limits.RatePerIP = config.Rate{RequestsPerSecond: 0.001, Burst: 2}
	}})
	tok := h.token("docs", "docs:read")
	if resp := h.do(rawReq{token: tok}); resp.status != 200 {
		t.Fatalf("first request: %d", resp.status)
	}
	if resp := h.do(rawReq{}); resp.status != 401 {
		t.Fatalf("second request: %d", resp.status)
	}
	for _, rr := range []rawReq{{token: tok}, {}} {
		resp := h.expectReject(t, rr, rejectWant{status: 429, code: codeTooMany, decision: audit.Reject, reason: "rate_limited"})
		if ra := resp.header.Get("Retry-After"); ra == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	// The metadata endpoint is not an MCP endpoint and stays reachable.
	if resp := h.do(rawReq{method: http.MethodGet, path: "/.well-known/oauth-protected-resource/servers/docs/mcp"}); resp.status != 200 {
		t.Errorf("metadata while rate limited: %d", resp.status)
	}
}
