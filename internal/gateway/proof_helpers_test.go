package gateway

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/testissuer"
)

// This file holds the raw-HTTP side of the proof tests: a request builder,
// a response reader (JSON or SSE), token and session helpers. The
// rejection contract is asserted in proof_reject_test.go.

const v1125 = "2025-11-25"

// rawReq is one hand-built request to the gateway.
type rawReq struct {
	method  string      // "" → POST
	route   string      // "" → docs
	path    string      // path and query instead of the route's path
	token   string      // bearer token; "" → no Authorization header
	header  http.Header // replaces the defaults key by key
	body    string      // POST body; "" → a tools/call of search with id 7
	session string      // Mcp-Session-Id
	version string      // MCP-Protocol-Version; "" → 2025-11-25, "-" → none
	chunked bool        // send the body without Content-Length
}

// rawResp is the gateway's answer, read completely.
type rawResp struct {
	status int
	header http.Header
	body   []byte
}

// requestID is the gateway's X-Request-Id.
func (r *rawResp) requestID() string { return r.header.Get("X-Request-Id") }

// messages returns the JSON-RPC messages of a JSON or SSE body.
func (r *rawResp) messages() []json.RawMessage {
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
		if len(bytes.TrimSpace(r.body)) == 0 {
			return nil
		}
		return []json.RawMessage{r.body}
	}
	return sseData(r.body)
}

// sseData returns the data of each SSE event in b.
func sseData(b []byte) []json.RawMessage {
	var out []json.RawMessage
	var data []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	flush := func() {
		if len(data) > 0 {
			out = append(out, json.RawMessage(strings.Join(data, "\n")))
		}
		data = nil
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			flush()
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	flush()
	return out
}

// rpcMsg is a decoded JSON-RPC message.
type rpcMsg struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// rpc decodes the only (or last) JSON-RPC message of the response.
func (r *rawResp) rpc(t *testing.T) rpcMsg {
	t.Helper()
	msgs := r.messages()
	if len(msgs) == 0 {
		t.Fatalf("response %d has no JSON-RPC message; body %q", r.status, r.body)
	}
	var m rpcMsg
	if err := json.Unmarshal(msgs[len(msgs)-1], &m); err != nil {
		t.Fatalf("response body is not JSON-RPC: %v; body %q", err, r.body)
	}
	return m
}

func toolsCall(id int, name string, args string) string {
	if args == "" {
		args = "{}"
	}
	return `{"jsonrpc":"2.0","id":` + itoa(id) + `,"method":"tools/call","params":{"name":"` + name + `","arguments":` + args + `}}`
}

func rpcRequest(id int, method, params string) string {
	if params == "" {
		params = "{}"
	}
	return `{"jsonrpc":"2.0","id":` + itoa(id) + `,"method":"` + method + `","params":` + params + `}`
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// newRequest builds rr without sending it.
func (h *harness) newRequest(rr rawReq) *http.Request {
	h.t.Helper()
	method := rr.method
	if method == "" {
		method = http.MethodPost
	}
	route := rr.route
	if route == "" {
		route = "docs"
	}
	u := h.url(route)
	if rr.path != "" {
		u = h.srv.URL + rr.path
	}
	var body io.Reader
	if method == http.MethodPost {
		b := rr.body
		if b == "" {
			b = toolsCall(7, "search", `{"text":"q"}`)
		}
		body = strings.NewReader(b)
		if rr.chunked {
			body = io.MultiReader(body) // hides the length
		}
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		h.t.Fatalf("new request: %v", err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	switch rr.version {
	case "":
		req.Header.Set("Mcp-Protocol-Version", v1125)
	case "-":
	default:
		req.Header.Set("Mcp-Protocol-Version", rr.version)
	}
	if rr.token != "" {
		req.Header.Set("Authorization", "Bearer "+rr.token)
	}
	if rr.session != "" {
		req.Header.Set("Mcp-Session-Id", rr.session)
	}
	for k, vs := range rr.header {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	return req
}

// do sends rr and reads the whole response.
func (h *harness) do(rr rawReq) *rawResp {
	h.t.Helper()
	return h.send(h.newRequest(rr))
}

func (h *harness) send(req *http.Request) *rawResp {
	h.t.Helper()
	c := &http.Client{Timeout: 15 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read response: %v", err)
	}
	return &rawResp{status: resp.StatusCode, header: resp.Header, body: b}
}

// upstreamCounts snapshots how many requests each upstream has received.
func (h *harness) upstreamCounts() map[string]int {
	m := map[string]int{}
	for name, u := range h.up {
		m[name] = u.count()
	}
	return m
}

// eventsFor returns the audit records of one request.
func (h *harness) eventsFor(requestID string) []audit.Event {
	var out []audit.Event
	for _, e := range h.audit.events() {
		if e.RequestID == requestID {
			out = append(out, e)
		}
	}
	return out
}

// waitFor polls cond until it holds, failing after 10 s. It is used only
// where the gateway offers no event to wait on (a slot released, a record
// written after the client already saw the end of its stream).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recordsOf waits until request requestID has n audit records (an outcome
// is written after the client has the whole response) and returns them.
func (h *harness) recordsOf(t *testing.T, requestID string, n int) []audit.Event {
	t.Helper()
	var evs []audit.Event
	waitFor(t, itoa(n)+" audit records of "+requestID, func() bool {
		evs = h.eventsFor(requestID)
		return len(evs) >= n
	})
	return evs
}

// metadataURL is the route's RFC 9728 metadata URL.
func (h *harness) metadataURL(route string) string {
	return h.srv.URL + "/.well-known/oauth-protected-resource/servers/" + route + "/mcp"
}

// mint mints a token for route with the given principal and scopes.
func (h *harness) mint(route, sub, client, scope string, opts ...testissuer.MintOption) string {
	return h.iss.Mint(testissuer.Claims{Subject: sub, ClientID: client, Audience: []string{h.resource(route)}, Scope: scope}, opts...)
}

// claims are alice's (client agent-1) claims for route, expiring at exp.
func (h *harness) claims(route, scope string, exp time.Time) testissuer.Claims {
	return testissuer.Claims{Subject: "alice", ClientID: "agent-1", Audience: []string{h.resource(route)}, Scope: scope, Expiry: exp}
}

// tokenFingerprint is what audit records may carry instead of a token.
func tokenFingerprint(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:8])
}

// randomToken is a credential-looking string built at run time.
func randomToken(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// initSession opens an MCP session on route over raw HTTP (initialize,
// then notifications/initialized) and returns its Mcp-Session-Id.
func (h *harness) initSession(t *testing.T, route, token string) string {
	t.Helper()
	resp := h.do(rawReq{route: route, token: token, version: "-", body: rpcRequest(1, "initialize",
		`{"protocolVersion":"`+v1125+`","capabilities":{"sampling":{},"elicitation":{}},"clientInfo":{"name":"raw","version":"1"}}`)})
	if resp.status != http.StatusOK {
		t.Fatalf("initialize: status %d: %s", resp.status, resp.body)
	}
	sid := resp.header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatalf("initialize: no Mcp-Session-Id in the response")
	}
	if m := resp.rpc(t); m.Error != nil || len(m.Result) == 0 {
		t.Fatalf("initialize: %s", resp.body)
	}
	n := h.do(rawReq{route: route, token: token, session: sid, body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`})
	if n.status != http.StatusAccepted {
		t.Fatalf("notifications/initialized: status %d: %s", n.status, n.body)
	}
	h.recordsOf(t, resp.requestID(), 2)
	h.recordsOf(t, n.requestID(), 2)
	return sid
}
