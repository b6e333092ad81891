package gateway

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/inbound"
)

const v0728 = "2026-07-28"

// call0728 is a tools/call of search carrying the 2026-07-28 _meta version.
func call0728(id int, name, metaVersion string) string {
	return `{"jsonrpc":"2.0","id":` + itoa(id) + `,"method":"tools/call","params":{"name":"` + name +
		`","arguments":{"text":"q"},"_meta":{"io.modelcontextprotocol/protocolVersion":"` + metaVersion + `"}}}`
}

// TestProofVersions: protocol versions, the 2026-07-28 mirrored headers and
// the per-version method allow-list.
func TestProofVersions(t *testing.T) {
	h := newHarness(t, harnessOptions{stateless: true})
	tok := h.token("docs", "docs:read")
	hdr0728 := func(method, name string) http.Header {
		h := http.Header{"Mcp-Method": {method}}
		if name != "" {
			h["Mcp-Name"] = []string{name}
		}
		return h
	}
	rej := func(status, code int, id, reason string) rejectWant {
		return rejectWant{status: status, code: code, id: id, decision: audit.Reject, reason: reason}
	}
	for _, tc := range []struct {
		name string
		rr   rawReq
		want rejectWant
	}{
		{"unsupported version", rawReq{token: tok, version: "2024-01-01"}, rej(400, -32022, "7", "unsupported_version")},
		{"version garbage", rawReq{token: tok, version: "latest"}, rej(400, -32022, "7", "unsupported_version")},
		{"no version, no session", rawReq{token: tok, version: "-"}, rej(400, -32600, "7", "missing_version")},
		{"0728 without Mcp-Method", rawReq{token: tok, version: v0728, body: call0728(7, "search", v0728), header: hdr0728("", "search")},
			rej(400, -32020, "7", "header_mismatch")},
		{"0728 Mcp-Method mismatch", rawReq{token: tok, version: v0728, body: call0728(7, "search", v0728), header: hdr0728("tools/list", "search")},
			rej(400, -32020, "7", "header_mismatch")},
		{"0728 without Mcp-Name", rawReq{token: tok, version: v0728, body: call0728(7, "search", v0728), header: hdr0728("tools/call", "")},
			rej(400, -32020, "7", "header_mismatch")},
		{"0728 Mcp-Name mismatch", rawReq{token: tok, version: v0728, body: call0728(7, "search", v0728), header: hdr0728("tools/call", "delete_everything")},
			rej(400, -32020, "7", "header_mismatch")},
		{"0728 Mcp-Name twice", rawReq{token: tok, version: v0728, body: call0728(7, "search", v0728), header: http.Header{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"search", "search"}}},
			rej(400, -32020, "7", "header_mismatch")},
		{"0728 Mcp-Name base64 of another tool", rawReq{token: tok, version: v0728, body: call0728(7, "search", v0728),
			header: hdr0728("tools/call", "=?base64?"+base64.StdEncoding.EncodeToString([]byte("update_document"))+"?=")},
			rej(400, -32020, "7", "header_mismatch")},
		{"0728 without _meta version", rawReq{token: tok, version: v0728, body: toolsCall(7, "search", `{"text":"q"}`), header: hdr0728("tools/call", "search")},
			rej(400, -32020, "7", "header_mismatch")},
		{"_meta version differs from the header", rawReq{token: tok, body: call0728(7, "search", v0728)}, rej(400, -32020, "7", "header_mismatch")},
		{"Mcp-Name on tools/list", rawReq{token: tok, body: rpcRequest(7, "tools/list", ""), header: hdr0728("tools/list", "search")},
			rej(400, -32020, "7", "header_mismatch")},
		{"1125 with a mismatching Mcp-Name", rawReq{token: tok, header: hdr0728("tools/call", "delete_everything")}, rej(400, -32020, "7", "header_mismatch")},
		{"GET on 0728", rawReq{method: http.MethodGet, token: tok, version: v0728}, rej(405, -32600, "", "http_method")},
		{"GET with an unsupported version", rawReq{method: http.MethodGet, token: tok, version: "1999-01-01"}, rej(400, -32022, "", "unsupported_version")},
		{"client sends sampling/createMessage", rawReq{token: tok, body: rpcRequest(7, "sampling/createMessage", `{"messages":[],"maxTokens":1}`)},
			rej(200, -32601, "7", "method_not_allowed")},
		{"client sends elicitation/create", rawReq{token: tok, body: rpcRequest(7, "elicitation/create", `{"message":"x"}`)},
			rej(200, -32601, "7", "method_not_allowed")},
		{"tools/delete", rawReq{token: tok, body: rpcRequest(7, "tools/delete", `{"name":"search"}`)}, rej(200, -32601, "7", "method_not_allowed")},
		{"tools/delete on 0728", rawReq{token: tok, version: v0728, header: hdr0728("tools/delete", ""),
			body: rpcRequest(7, "tools/delete", `{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}`)},
			rej(404, -32601, "7", "method_not_allowed")},
		{"initialize on 0728", rawReq{token: tok, version: v0728, header: hdr0728("initialize", ""),
			body: rpcRequest(7, "initialize", `{"protocolVersion":"2026-07-28","capabilities":{},"clientInfo":{"name":"x","version":"1"}}`)},
			rej(404, -32601, "7", "method_not_allowed")},
		{"tasks/get on 2025-06-18", rawReq{token: tok, version: "2025-06-18", body: rpcRequest(7, "tasks/get", `{"taskId":"t1"}`)},
			rej(200, -32601, "7", "method_not_allowed")},
		{"unknown notification", rawReq{token: tok, body: `{"jsonrpc":"2.0","method":"notifications/evil"}`}, rej(400, -32601, "", "method_not_allowed")},
		{"tools/call without id", rawReq{token: tok, body: `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"search"}}`}, rej(400, -32600, "", "invalid_request")},
		{"client response on 0728", rawReq{token: tok, version: v0728, body: `{"jsonrpc":"2.0","id":3,"result":{}}`}, rej(400, -32600, "", "client_response")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.expectReject(t, tc.rr, tc.want)
			if tc.want.code == -32022 {
				var data struct {
					Supported []string `json:"supported"`
				}
				m := resp.rpc(t)
				if err := json.Unmarshal(m.Error.Data, &data); err != nil {
					t.Fatalf("error data %s: %v", m.Error.Data, err)
				}
				if diff := cmp.Diff(inbound.Versions(), data.Supported); diff != "" {
					t.Errorf("data.supported (-want +got):\n%s", diff)
				}
			}
			if tc.want.status == 405 && resp.header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", resp.header.Get("Allow"))
			}
		})
	}

	// Controls: a well-formed 2026-07-28 call (plain and base64 Mcp-Name)
	// and a 2025-11-25 call with matching optional headers are forwarded.
	for _, rr := range []rawReq{
		{token: tok, version: v0728, body: call0728(7, "search", v0728), header: hdr0728("tools/call", "search")},
		{token: tok, version: v0728, body: call0728(7, "search", v0728), header: hdr0728("tools/call", "=?base64?"+base64.StdEncoding.EncodeToString([]byte("search"))+"?=")},
		{token: tok, header: hdr0728("tools/call", "search")},
	} {
		before := h.up["docs"].count()
		resp := h.do(rr)
		if h.up["docs"].count() != before+1 {
			t.Errorf("control %v not forwarded: %d %s", rr.header, resp.status, resp.body)
		}
	}
	h.assertNoTokenLeak(tok)
}
