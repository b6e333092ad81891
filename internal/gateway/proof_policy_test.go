package gateway

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/audit"
)

// TestProofPolicy: route and tool scopes, the scope hierarchy, templated
// scopes with validated arguments, denied and unlisted tools.
func TestProofPolicy(t *testing.T) {
	h := newHarness(t, harnessOptions{stateless: true})
	roadmap := h.token("docs", "docs:read document:read:roadmap")
	readOnly := h.token("docs", "docs:read")
	noRoute := h.token("docs", "document:read:roadmap")
	stepUp := func(scopes ...string) rejectWant {
		return rejectWant{status: 403, code: codeInsufficientScope, id: "7", challenge: chStepUp, scopes: scopes,
			decision: audit.StepUp, reason: "insufficient_scope"}
	}
	deny := rejectWant{status: 200, code: codeDenied, id: "7", decision: audit.Deny, reason: "policy"}
	doc := func(tok, args string) rawReq { return rawReq{token: tok, body: toolsCall(7, "read_document", args)} }
	for _, tc := range []struct {
		name string
		rr   rawReq
		want rejectWant
	}{
		{"write tool with a read token", rawReq{token: roadmap, body: toolsCall(7, "update_document", `{"text":"x"}`)},
			stepUp("docs:read", "document:read:roadmap", "docs:write")},
		{"templated scope not held", doc(readOnly, `{"project":"finance"}`), stepUp("docs:read", "document:read:finance")},
		{"templated scope for another project", doc(roadmap, `{"project":"finance"}`),
			stepUp("docs:read", "document:read:roadmap", "document:read:finance")},
		{"route scope missing", rawReq{token: noRoute, body: rpcRequest(7, "tools/list", "")}, stepUp("document:read:roadmap", "docs:read")},
		{"route scope missing on a tool", doc(noRoute, `{"project":"roadmap"}`), stepUp("document:read:roadmap", "docs:read")},
		{"argument traversal", doc(roadmap, `{"project":"../x"}`), deny},
		{"argument with a slash", doc(roadmap, `{"project":"roadmap/../finance"}`), deny},
		{"argument upper case", doc(roadmap, `{"project":"Roadmap"}`), deny},
		{"argument unicode look-alike", doc(roadmap, `{"project":"r\u043eadmap"}`), deny},
		{"argument with whitespace", doc(roadmap, `{"project":" roadmap"}`), deny},
		{"argument with a newline", doc(roadmap, `{"project":"roadmap\n"}`), deny},
		{"argument empty", doc(roadmap, `{"project":""}`), deny},
		{"argument not a string", doc(roadmap, `{"project":12}`), deny},
		{"argument an array", doc(roadmap, `{"project":["roadmap"]}`), deny},
		{"argument null", doc(roadmap, `{"project":null}`), deny},
		{"argument missing", doc(roadmap, `{}`), deny},
		{"arguments missing", rawReq{token: roadmap, body: `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"read_document"}}`}, deny},
		{"denied tool", rawReq{token: roadmap, body: toolsCall(7, "delete_everything", `{"text":"x"}`)}, deny},
		{"unlisted tool", rawReq{token: roadmap, body: toolsCall(7, "unlisted", `{"text":"x"}`)}, deny},
		{"unlisted tool, case variant of a listed one", rawReq{token: roadmap, body: toolsCall(7, "Search", `{"text":"x"}`)}, deny},
		{"unlisted prompt", rawReq{token: roadmap, body: rpcRequest(7, "prompts/get", `{"name":"secret"}`)}, deny},
		{"unlisted resource", rawReq{token: roadmap, body: rpcRequest(7, "resources/read", `{"uri":"docs://secret"}`)}, deny},
		{"completion of a denied prompt", rawReq{token: roadmap, body: rpcRequest(7, "completion/complete",
			`{"ref":{"type":"ref/prompt","name":"secret"},"argument":{"name":"a","value":"b"}}`)}, deny},
		{"completion of a denied resource", rawReq{token: roadmap, body: rpcRequest(7, "completion/complete",
			`{"ref":{"type":"ref/resource","uri":"file:///etc/{name}"},"argument":{"name":"name","value":"p"}}`)}, deny},
		{"completion with an unknown ref type", rawReq{token: roadmap, body: rpcRequest(7, "completion/complete",
			`{"ref":{"type":"ref/tool","name":"secret"},"argument":{"name":"a","value":"b"}}`)}, deny},
		{"completion without a ref", rawReq{token: roadmap, body: rpcRequest(7, "completion/complete",
			`{"argument":{"name":"a","value":"b"}}`)}, deny},
		{"completion with a case-variant ref", rawReq{token: roadmap, body: rpcRequest(7, "completion/complete",
			`{"Ref":{"type":"ref/prompt","name":"secret"}}`)},
			rejectWant{status: 400, code: -32602, id: "7", decision: audit.Reject, reason: "invalid_params"}},
		{"tool name missing", rawReq{token: roadmap, body: `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{}}`},
			rejectWant{status: 400, code: -32602, id: "7", decision: audit.Reject, reason: "invalid_params"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.expectReject(t, tc.rr, tc.want)
			if tc.want.decision == audit.Deny && !strings.Contains(resp.rpc(t).Error.Message, "denied by gateway policy") {
				t.Errorf("deny message %q does not tell the agent what happened", resp.rpc(t).Error.Message)
			}
		})
	}

	// Allowed: the hierarchy (docs:write implies docs:read) and a templated
	// scope for the right project.
	writer := h.token("docs", "docs:write")
	for _, tc := range []struct {
		name string
		rr   rawReq
		want string
	}{
		{"write implies the route's read", rawReq{token: writer, body: toolsCall(7, "search", `{"text":"q"}`)}, "results for q"},
		{"write tool with docs:write", rawReq{token: writer, body: toolsCall(7, "update_document", `{"text":"x"}`)}, "updated"},
		{"templated scope held", doc(roadmap, `{"project":"roadmap"}`), "document of roadmap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.up["docs"].count()
			resp := h.do(tc.rr)
			m := resp.rpc(t)
			if resp.status != 200 || m.Error != nil || !strings.Contains(string(m.Result), tc.want) {
				t.Errorf("status %d body %s, want a result with %q", resp.status, resp.body, tc.want)
			}
			if h.up["docs"].count() != before+1 {
				t.Errorf("not forwarded")
			}
		})
	}
	for _, tok := range []string{roadmap, readOnly, noRoute, writer} {
		h.assertNoTokenLeak(tok)
	}
}

// TestProofListFiltering: tools/list is filtered to what the caller may
// use, for JSON and SSE upstream responses, and pagination survives.
func TestProofListFiltering(t *testing.T) {
	for _, mode := range []struct {
		name string
		json bool
	}{{"SSE", false}, {"JSON", true}} {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{stateless: true, jsonResponse: mode.json, pageSize: 4})
			tok := h.token("docs", "docs:read document:read:roadmap")
			visible := map[string]bool{"search": true, "whoami": true, "read_document": true}
			cursor := ""
			pages, seen := 0, []string{}
			for {
				params := "{}"
				if cursor != "" {
					params = `{"cursor":` + string(mustJSON(cursor)) + `}`
				}
				body := rpcRequest(7, "tools/list", params)
				direct := listPage(t, h.directPost(t, "docs", body))
				resp := h.do(rawReq{token: tok, body: body})
				if resp.status != 200 {
					t.Fatalf("tools/list: %d %s", resp.status, resp.body)
				}
				got := listPage(t, resp.messages())
				var want []string
				for _, n := range direct.names {
					if visible[n] {
						want = append(want, n)
					}
				}
				if !slices.Equal(got.names, want) {
					t.Errorf("page %d: gateway lists %q, want %q (upstream listed %q)", pages, got.names, want, direct.names)
				}
				if got.next != direct.next {
					t.Errorf("page %d: nextCursor = %q, upstream said %q", pages, got.next, direct.next)
				}
				evs := h.recordsOf(t, resp.requestID(), 2)
				if len(evs) != 2 || evs[1].Kind != audit.KindOutcome || evs[1].Filtered != len(direct.names)-len(want) {
					t.Errorf("page %d: outcome record %+v, want filtered=%d", pages, evs, len(direct.names)-len(want))
				}
				seen = append(seen, got.names...)
				pages++
				if cursor = direct.next; cursor == "" || pages > 5 {
					break
				}
			}
			if pages < 2 {
				t.Errorf("only %d page(s): the test needs pagination", pages)
			}
			slices.Sort(seen)
			if want := []string{"read_document", "search", "whoami"}; !slices.Equal(seen, want) {
				t.Errorf("all pages list %q, want %q", seen, want)
			}
			h.assertNoTokenLeak(tok)
		})
	}
}

type page struct {
	names []string
	next  string
}

func listPage(t *testing.T, msgs []json.RawMessage) page {
	t.Helper()
	if len(msgs) != 1 {
		t.Fatalf("tools/list answered %d messages", len(msgs))
	}
	var m struct {
		Result struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
			NextCursor string `json:"nextCursor"`
		} `json:"result"`
	}
	if err := json.Unmarshal(msgs[0], &m); err != nil {
		t.Fatalf("tools/list result %s: %v", msgs[0], err)
	}
	var p page
	for _, tl := range m.Result.Tools {
		p.names = append(p.names, tl.Name)
	}
	p.next = m.Result.NextCursor
	return p
}

// directPost sends body straight to the route's upstream (bypassing the
// gateway) and returns the JSON-RPC messages.
func (h *harness) directPost(t *testing.T, route, body string) []json.RawMessage {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.up[route].srv.URL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", v1125)
	resp := h.send(req)
	if resp.status != 200 {
		t.Fatalf("direct %s: %d %s", route, resp.status, resp.body)
	}
	return resp.messages()
}
