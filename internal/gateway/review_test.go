package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/audit"
)

// TestListFilterCannotBeSkipped covers the ways an answer to a list request
// could reach the client without passing the list filter: an id the
// upstream cannot represent exactly (it would answer another id), an
// upstream answering another id, and a media type mcpgate cannot parse.
func TestListFilterCannotBeSkipped(t *testing.T) {
	var mode string
	h := newHarness(t, harnessOptions{wrapUpstream: func(route string, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if !strings.Contains(string(body), `"tools/list"`) || mode == "" {
				r.Body = io.NopCloser(strings.NewReader(string(body)))
				next.ServeHTTP(w, r)
				return
			}
			list := `{"tools":[{"name":"delete_everything","inputSchema":{"type":"object"}}]}`
			switch mode {
			case "other id":
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"jsonrpc":"2.0","id":8,"result":`+list+`}`)
			case "other id over SSE":
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"id\":8,\"result\":"+list+"}\n\n")
			case "unknown media type":
				w.Header().Set("Content-Type", "application/jsonl")
				io.WriteString(w, `{"jsonrpc":"2.0","id":7,"result":`+list+`}`)
			}
		})
	}})
	tok := h.token("docs", "docs:read")

	// An integer id beyond 2^53-1 is refused at the door.
	h.expectReject(t, rawReq{token: tok, body: `{"jsonrpc":"2.0","id":9007199254740993,"method":"tools/list"}`},
		rejectWant{status: 400, code: -32600, decision: audit.Reject, reason: "invalid_request"})

	for _, m := range []string{"other id", "other id over SSE", "unknown media type"} {
		t.Run(m, func(t *testing.T) {
			mode = m
			resp, err := http.DefaultClient.Do(h.newRequest(rawReq{token: tok, body: rpcRequest(7, "tools/list", `{}`)}))
			if err != nil {
				if m == "other id over SSE" {
					return // the stream was cut before its headers went out: nothing leaked
				}
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body) // an SSE stream is cut: a read error is expected
			resp.Body.Close()
			if strings.Contains(string(body), "delete_everything") {
				t.Fatalf("an unfiltered list reached the client: %d %s", resp.StatusCode, body)
			}
			if m != "other id over SSE" && resp.StatusCode != http.StatusBadGateway {
				t.Errorf("status %d, want 502", resp.StatusCode)
			}
		})
	}
}

func TestDuplicateVersionHeaderRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tok := h.token("docs", "docs:read")
	h.expectReject(t, rawReq{token: tok, version: "-", header: http.Header{"Mcp-Protocol-Version": {"2025-11-25", "2025-06-18"}}},
		rejectWant{status: 400, code: -32600, id: "7", decision: audit.Reject, reason: "version_header"})
}

// TestForeignAnswersDropped: clients route answers by id whatever the
// stream they arrive on, so an upstream must not deliver an answer (say, an
// unfiltered tool list) under another request's stream, on a GET stream,
// or wrapped in JSON mcpgate cannot read.
func TestForeignAnswersDropped(t *testing.T) {
	poison := `{"jsonrpc":"2.0","id":8,"result":{"tools":[{"name":"delete_everything","description":"POISONED","inputSchema":{"type":"object"}}]}}`
	var mode string
	h := newHarness(t, harnessOptions{wrapUpstream: func(route string, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if mode == "" || !strings.Contains(string(body), `"tools/call"`) {
				r.Body = io.NopCloser(strings.NewReader(string(body)))
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			switch mode {
			case "other id":
				io.WriteString(w, "data: "+poison+"\n\n")
			case "unreadable":
				io.WriteString(w, "data: "+strings.Replace(poison, `"id":8`, `"id":8,"ID":8`, 1)+"\n\n")
			}
			io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[]}}\n\n")
		})
	}})
	tok := h.token("docs", "docs:read")
	for _, m := range []string{"other id", "unreadable"} {
		t.Run(m, func(t *testing.T) {
			mode = m
			resp := h.do(rawReq{token: tok})
			if strings.Contains(string(resp.body), "POISONED") {
				t.Fatalf("a foreign answer reached the client: %s", resp.body)
			}
			if !strings.Contains(string(resp.body), `"id":7`) {
				t.Errorf("the request's own answer was lost: %d %s", resp.status, resp.body)
			}
		})
	}
}
