package inbound

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
)

func TestSupportedAndStateless(t *testing.T) {
	for _, tt := range []struct {
		v                    string
		supported, stateless bool
	}{
		{V20250618, true, false},
		{V20251125, true, false},
		{V20260728, true, true},
		{V20250326, true, false},
		{"2024-11-05", false, false},
		{"", false, false},
		{"2026-07-28 ", false, true},
	} {
		if got := Supported(tt.v); got != tt.supported {
			t.Errorf("Supported(%q) = %v, want %v", tt.v, got, tt.supported)
		}
		if got := Stateless(tt.v); got != tt.stateless {
			t.Errorf("Stateless(%q) = %v, want %v", tt.v, got, tt.stateless)
		}
	}
}

func TestRequestVersion(t *testing.T) {
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}`
	list := req("tools/list", "")
	for _, tt := range []struct {
		name            string
		header, session string
		body            string
		want            string
		code            int // 0: success
		reason          string
	}{
		{"header on 2026-07-28", V20260728, "", list, V20260728, 0, ""},
		{"header on 2025-06-18", V20250618, "", list, V20250618, 0, ""},
		{"header equals session", V20251125, V20251125, list, V20251125, 0, ""},
		{"session version when header absent", "", V20250618, list, V20250618, 0, ""},
		{"initialize without header", "", "", initialize, "", 0, ""},
		{"initialize with header", V20251125, "", initialize, V20251125, 0, ""},
		{"unsupported header", "2024-11-05", "", list, "", CodeUnsupportedProtocolVersion, "unsupported_version"},
		{"unsupported header on initialize", "1999-01-01", "", initialize, "", CodeUnsupportedProtocolVersion, "unsupported_version"},
		{"header newer than the session's version", V20251125, V20250618, list, "", CodeInvalidRequest, "version_mismatch"},
		{"header older than the session's version", V20250326, V20251125, list, V20250326, 0, ""},
		{"unsupported header with session", "bogus", V20250618, list, "", CodeUnsupportedProtocolVersion, "unsupported_version"},
		{"no header, no session", "", "", list, "", CodeInvalidRequest, "missing_version"},
		{"response without header or session", "", "", `{"jsonrpc":"2.0","id":1,"result":{}}`, "", CodeInvalidRequest, "missing_version"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, e := RequestVersion(tt.header, tt.session, mustParse(t, tt.body))
			if tt.code == 0 {
				wantErr(t, e, 0, 0, "")
				if got != tt.want {
					t.Errorf("version = %q, want %q", got, tt.want)
				}
				return
			}
			wantErr(t, e, http.StatusBadRequest, tt.code, tt.reason)
			if got != "" {
				t.Errorf("version = %q on error, want empty", got)
			}
			if tt.code == CodeUnsupportedProtocolVersion {
				want := map[string]any{"supported": []string{V20260728, V20251125, V20250618, V20250326}}
				if diff := cmp.Diff(want, e.Data); diff != "" {
					t.Errorf("Data mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
	t.Run("nil call without header", func(t *testing.T) {
		_, e := RequestVersion("", "", nil)
		wantErr(t, e, http.StatusBadRequest, CodeInvalidRequest, "missing_version")
	})
}

func TestCheckMethod(t *testing.T) {
	all := []string{V20250618, V20251125, V20260728}
	legacy := []string{V20250618, V20251125}
	for _, tt := range []struct {
		method  string
		allowed []string // versions that allow it as a request or notification
	}{
		{"initialize", legacy},
		{"notifications/initialized", legacy},
		{"ping", all},
		{"tools/list", all},
		{"tools/call", all},
		{"resources/list", all},
		{"resources/templates/list", all},
		{"resources/read", all},
		{"resources/subscribe", all},
		{"resources/unsubscribe", all},
		{"prompts/list", all},
		{"prompts/get", all},
		{"completion/complete", all},
		{"logging/setLevel", all},
		{"notifications/cancelled", all},
		{"notifications/progress", all},
		{"notifications/roots/list_changed", all},
		{"tasks/get", []string{V20251125, V20260728}},
		{"tasks/result", []string{V20251125, V20260728}},
		{"tasks/list", []string{V20251125, V20260728}},
		{"tasks/cancel", []string{V20251125, V20260728}},
		{"notifications/tasks/status", []string{V20251125}},
		{"server/discover", []string{V20260728}},
		{"subscriptions/listen", []string{V20260728}},
		// Server-to-client methods and inventions are never forwarded.
		{"sampling/createMessage", nil},
		{"elicitation/create", nil},
		{"roots/list", nil},
		{"notifications/message", nil},
		{"tools/delete", nil},
		{"Tools/Call", nil},
		{"tools/call ", nil},
		{"", nil},
	} {
		for _, v := range all {
			allowed := false
			for _, a := range tt.allowed {
				allowed = allowed || a == v
			}
			// A request, or a notification for notifications/ methods;
			// other kinds and responses are in TestCheckMethodKinds.
			body := req("m", "")
			if strings.HasPrefix(tt.method, "notifications/") {
				body = notif("m", "")
			}
			c := mustParse(t, body)
			c.Msg.Method = tt.method
			t.Run(v+"/"+tt.method, func(t *testing.T) {
				e := CheckMethod(v, c)
				if allowed {
					wantErr(t, e, 0, 0, "")
					return
				}
				status := http.StatusOK
				if Stateless(v) {
					status = http.StatusNotFound
				} else if c.Msg.Kind == jsonrpc.KindNotification {
					status = http.StatusBadRequest
				}
				wantErr(t, e, status, CodeMethodNotFound, "method_not_allowed")
			})
		}
	}
}

func TestCheckMethodKinds(t *testing.T) {
	result := `{"jsonrpc":"2.0","id":"s-1","result":{"action":"accept"}}`
	errResp := `{"jsonrpc":"2.0","id":"s-1","error":{"code":-1,"message":"declined"}}`
	for _, tt := range []struct {
		name    string
		version string
		body    string
		status  int // 0: allowed
		code    int
		reason  string
	}{
		{"result on 2025-06-18", V20250618, result, 0, 0, ""},
		{"error on 2025-11-25", V20251125, errResp, 0, 0, ""},
		{"result on 2026-07-28", V20260728, result, http.StatusBadRequest, CodeInvalidRequest, "client_response"},
		{"error on 2026-07-28", V20260728, errResp, http.StatusBadRequest, CodeInvalidRequest, "client_response"},
		{"unknown request on 2025-11-25", V20251125, req("x/y", ""), http.StatusOK, CodeMethodNotFound, "method_not_allowed"},
		{"unknown notification on 2025-11-25", V20251125, notif("notifications/x", ""), http.StatusBadRequest, CodeMethodNotFound, "method_not_allowed"},
		{"unknown notification on 2025-06-18", V20250618, notif("x/y", ""), http.StatusBadRequest, CodeMethodNotFound, "method_not_allowed"},
		{"unknown request on 2026-07-28", V20260728, req("x/y", ""), http.StatusNotFound, CodeMethodNotFound, "method_not_allowed"},
		{"unknown notification on 2026-07-28", V20260728, notif("x/y", ""), http.StatusNotFound, CodeMethodNotFound, "method_not_allowed"},
		{"initialize request on 2025-11-25", V20251125, req("initialize", `{}`), 0, 0, ""},
		{"initialize notification on 2025-11-25", V20251125, notif("initialize", `{}`), http.StatusBadRequest, CodeInvalidRequest, "invalid_request"},
		{"initialize request on 2026-07-28", V20260728, req("initialize", `{}`), http.StatusNotFound, CodeMethodNotFound, "method_not_allowed"},
		// version "" is an initialize exchange still negotiating.
		{"initialize while negotiating", "", req("initialize", `{}`), 0, 0, ""},
		{"initialize notification while negotiating", "", notif("initialize", `{}`), http.StatusBadRequest, CodeInvalidRequest, "invalid_request"},
		{"other request while negotiating", "", req("tools/list", ""), http.StatusBadRequest, CodeInvalidRequest, "missing_version"},
		{"2025-03-26 gets the 2025-06-18 rules", V20250326, req("ping", ""), 0, 0, ""},
		{"unsupported version", "2024-11-05", req("ping", ""), http.StatusOK, CodeMethodNotFound, "method_not_allowed"},
		{"tools/call sent as a notification", V20251125, notif("tools/call", `{"name":"x"}`), http.StatusBadRequest, CodeInvalidRequest, "invalid_request"},
		{"notification sent as a request", V20251125, req("notifications/initialized", ""), http.StatusBadRequest, CodeInvalidRequest, "invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, CheckMethod(tt.version, mustParse(t, tt.body)), tt.status, tt.code, tt.reason)
		})
	}
}

func b64(s string) string { return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?=" }

func TestCheckHeaders(t *testing.T) {
	meta := func(v string) string { return `"_meta":{"` + MetaKeyProtocolVersion + `":"` + v + `"}` }
	call := func(name, v string) string { return req("tools/call", `{"name":"`+name+`",`+meta(v)+`}`) }
	readURI := func(uri, v string) string { return req("resources/read", `{"uri":"`+uri+`",`+meta(v)+`}`) }
	const v7 = V20260728
	type hdr = map[string][]string
	for _, tt := range []struct {
		name    string
		version string
		headers hdr
		body    string
		ok      bool
	}{
		// 2026-07-28: headers required and equal to the body.
		{"07-28 tools/call", v7, hdr{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"search"}}, call("search", v7), true},
		{"07-28 prompts/get", v7, hdr{"Mcp-Method": {"prompts/get"}, "Mcp-Name": {"greet"}},
			req("prompts/get", `{"name":"greet",`+meta(v7)+`}`), true},
		{"07-28 resources/read", v7, hdr{"Mcp-Method": {"resources/read"}, "Mcp-Name": {"file:///a"}}, readURI("file:///a", v7), true},
		{"07-28 tools/list needs no Mcp-Name", v7, hdr{"Mcp-Method": {"tools/list"}}, req("tools/list", `{`+meta(v7)+`}`), true},
		{"07-28 resources/subscribe needs no Mcp-Name", v7, hdr{"Mcp-Method": {"resources/subscribe"}},
			req("resources/subscribe", `{"uri":"a://b",`+meta(v7)+`}`), true},
		{"07-28 notification needs no _meta", v7, hdr{"Mcp-Method": {"notifications/cancelled"}},
			notif("notifications/cancelled", `{"requestId":1}`), true},
		{"07-28 base64 name", v7, hdr{"Mcp-Method": {"tools/call"}, "Mcp-Name": {b64("résumé")}}, call("résumé", v7), true},
		{"07-28 base64 of a plain name", v7, hdr{"Mcp-Method": {"tools/call"}, "Mcp-Name": {b64("search")}}, call("search", v7), true},
		{"07-28 base64 uri", v7, hdr{"Mcp-Method": {"resources/read"}, "Mcp-Name": {b64("file:///ü")}}, readURI("file:///ü", v7), true},
		{"07-28 missing Mcp-Method", v7, hdr{"Mcp-Name": {"search"}}, call("search", v7), false},
		{"07-28 missing Mcp-Method on notification", v7, hdr{}, notif("notifications/cancelled", `{}`), false},
		{"07-28 wrong Mcp-Method", v7, hdr{"Mcp-Method": {"tools/list"}, "Mcp-Name": {"search"}}, call("search", v7), false},
		{"07-28 Mcp-Method differs in case", v7, hdr{"Mcp-Method": {"Tools/Call"}, "Mcp-Name": {"search"}}, call("search", v7), false},
		{"07-28 missing Mcp-Name", v7, hdr{"Mcp-Method": {"tools/call"}}, call("search", v7), false},
		{"07-28 missing Mcp-Name on resources/read", v7, hdr{"Mcp-Method": {"resources/read"}}, readURI("file:///a", v7), false},
		{"07-28 missing Mcp-Name on prompts/get", v7, hdr{"Mcp-Method": {"prompts/get"}}, req("prompts/get", `{"name":"g",`+meta(v7)+`}`), false},
		{"07-28 wrong Mcp-Name", v7, hdr{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"harmless"}}, call("dangerous_tool", v7), false},
		{"07-28 Mcp-Name differs in case", v7, hdr{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"Search"}}, call("search", v7), false},
		{"07-28 empty Mcp-Name", v7, hdr{"Mcp-Method": {"tools/call"}, "Mcp-Name": {""}}, call("search", v7), false},
		{"07-28 base64 of another name", v7, hdr{"Mcp-Method": {"tools/call"}, "Mcp-Name": {b64("harmless")}}, call("dangerous_tool", v7), false},
		{"07-28 malformed base64", v7, hdr{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"=?base64?!!!?="}}, call("search", v7), false},
		{"07-28 base64, no padding needed", v7, hdr{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"=?base64?c2VhcmNo?="}}, call("search", v7), true},
		{"07-28 truncated base64", v7, hdr{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"=?base64?c2VhcmN?="}}, call("search", v7), false},
		{"07-28 duplicated Mcp-Name", v7, hdr{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"search", "search"}}, call("search", v7), false},
		{"07-28 duplicated Mcp-Method", v7, hdr{"Mcp-Method": {"tools/call", "tools/call"}, "Mcp-Name": {"search"}}, call("search", v7), false},
		{"07-28 _meta version missing", v7, hdr{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"s"}}, req("tools/call", `{"name":"s"}`), false},
		{"07-28 _meta version differs", v7, hdr{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"s"}}, call("s", V20251125), false},
		// Earlier versions: absent headers are fine, present ones must match.
		{"11-25 no headers", V20251125, hdr{}, req("tools/call", `{"name":"dangerous_tool"}`), true},
		{"06-18 no headers", V20250618, hdr{}, req("resources/read", `{"uri":"file:///a"}`), true},
		{"negotiating, no headers", "", hdr{}, req("initialize", `{}`), true},
		{"11-25 matching headers", V20251125, hdr{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"dangerous_tool"}},
			req("tools/call", `{"name":"dangerous_tool"}`), true},
		{"11-25 _meta version must agree with the header", V20251125, hdr{}, call("s", V20260728), false},
		{"11-25 _meta version agreeing", V20251125, hdr{}, call("s", V20251125), true},
		{"11-25 Mcp-Name on tools/list", V20251125, hdr{"Mcp-Name": {"x"}}, req("tools/list", ""), false},
		{"11-25 harmless Mcp-Name", V20251125, hdr{"Mcp-Name": {"harmless"}}, req("tools/call", `{"name":"dangerous_tool"}`), false},
		{"06-18 harmless Mcp-Name", V20250618, hdr{"Mcp-Name": {"harmless"}}, req("tools/call", `{"name":"dangerous_tool"}`), false},
		{"11-25 wrong Mcp-Method", V20251125, hdr{"Mcp-Method": {"tools/list"}}, req("tools/call", `{"name":"x"}`), false},
		{"11-25 Mcp-Name on resources/read", V20251125, hdr{"Mcp-Name": {"file:///b"}}, req("resources/read", `{"uri":"file:///a"}`), false},
		{"11-25 duplicated Mcp-Name", V20251125, hdr{"Mcp-Name": {"x", "x"}}, req("tools/call", `{"name":"x"}`), false},
		{"negotiating, wrong Mcp-Method", "", hdr{"Mcp-Method": {"ping"}}, req("initialize", `{}`), false},
		// Responses carry no method: headers are not checked.
		{"07-28 response", v7, hdr{}, `{"jsonrpc":"2.0","id":1,"result":{}}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, vs := range tt.headers {
				for _, v := range vs {
					h.Add(k, v)
				}
			}
			e := CheckHeaders(h, tt.version, mustParse(t, tt.body))
			if tt.ok {
				wantErr(t, e, 0, 0, "")
				return
			}
			wantErr(t, e, http.StatusBadRequest, CodeHeaderMismatch, "header_mismatch")
		})
	}
}

func TestDecodeHeaderValue(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"plain", "plain", true},
		{"", "", true},
		{b64("ünï"), "ünï", true},
		{"=?base64??=", "", true},
		{"=?base64?=", "=?base64?=", true}, // too short to be the encoded form
		{"=?base64?abc", "=?base64?abc", true},
		{"abc?=", "abc?=", true},
		{"=?BASE64?c2VhcmNo?=", "=?BASE64?c2VhcmNo?=", true},
		{"=?base64?c2Vh cmNo?=", "", false},
		{"=?base64?%%?=", "", false},
	} {
		got, ok := decodeHeaderValue(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("decodeHeaderValue(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestMessagesBoundEchoedInput checks that client-supplied values echoed in
// error messages are truncated, and the Error string format.
func TestMessagesBoundEchoedInput(t *testing.T) {
	long := strings.Repeat("v", 500)
	_, e := RequestVersion(long, "", mustParse(t, req("ping", "")))
	if e == nil || strings.Contains(e.Message, long[:33]) || !strings.Contains(e.Message, "…") {
		t.Errorf("unsupported version message not truncated: %v", e)
	}
	e = CheckMethod(V20251125, mustParse(t, req("x/"+long, "")))
	if e == nil || strings.Contains(e.Message, long[:65]) || !strings.Contains(e.Message, "…") {
		t.Errorf("method message not truncated: %v", e)
	}
	if got, want := e.Error(), "inbound: method_not_allowed: "+e.Message; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
