package inbound

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpgate/mcpgate/internal/jsonrpc"
)

// req builds a request body for method with the given params JSON ("" → none).
func req(method, params string) string {
	if params == "" {
		return `{"jsonrpc":"2.0","id":1,"method":"` + method + `"}`
	}
	return `{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":` + params + `}`
}

// notif builds a notification body.
func notif(method, params string) string {
	if params == "" {
		return `{"jsonrpc":"2.0","method":"` + method + `"}`
	}
	return `{"jsonrpc":"2.0","method":"` + method + `","params":` + params + `}`
}

// mustParse parses body and fails the test on error.
func mustParse(t *testing.T, body string) *Call {
	t.Helper()
	c, e := Parse([]byte(body), Limits{})
	if e != nil {
		t.Fatalf("Parse(%s): %v", body, e)
	}
	return c
}

// callView is the comparable part of a Call.
type callView struct {
	Kind         jsonrpc.Kind
	Method       string
	Name, URI    string
	Arguments    map[string]string
	RawArguments string
	TaskID       string
	CreatesTask  bool
	MetaVersion  string
	InitVersion  string
}

func view(c *Call) callView {
	v := callView{
		Kind: c.Msg.Kind, Method: c.Msg.Method, Name: c.Name, URI: c.URI,
		RawArguments: string(c.RawArguments), TaskID: c.TaskID, CreatesTask: c.CreatesTask,
		MetaVersion: c.MetaVersion, InitVersion: c.InitVersion,
	}
	if c.Arguments != nil {
		v.Arguments = map[string]string{}
		for k, raw := range c.Arguments {
			v.Arguments[k] = string(raw)
		}
	}
	return v
}

func TestParseExtractsFields(t *testing.T) {
	meta := `"_meta":{"` + MetaKeyProtocolVersion + `":"2026-07-28"}`
	for _, tt := range []struct {
		name string
		body string
		want callView
	}{
		{"tools/call with arguments", req("tools/call", `{"name":"search","arguments":{"q":"x","n":1,"o":{"a":[1,2]}}}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tools/call", Name: "search",
				Arguments:    map[string]string{"q": `"x"`, "n": `1`, "o": `{"a":[1,2]}`},
				RawArguments: `{"q":"x","n":1,"o":{"a":[1,2]}}`}},
		{"tools/call without arguments", req("tools/call", `{"name":"now"}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tools/call", Name: "now"}},
		{"tools/call with null arguments", req("tools/call", `{"name":"now","arguments":null}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tools/call", Name: "now"}},
		{"tools/call with empty arguments", req("tools/call", `{"name":"now","arguments":{}}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tools/call", Name: "now",
				Arguments: map[string]string{}, RawArguments: `{}`}},
		{"argument keys are exact case", req("tools/call", `{"name":"t","arguments":{"path":"a","PATH2":"b"}}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tools/call", Name: "t",
				Arguments: map[string]string{"path": `"a"`, "PATH2": `"b"`}, RawArguments: `{"path":"a","PATH2":"b"}`}},
		{"escaped names are decoded", req("tools/call", `{"n\u0061me":"d\u0065l","arguments":{"\u0070ath":"\u002f"}}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tools/call", Name: "del",
				Arguments: map[string]string{"path": `"\u002f"`}, RawArguments: `{"\u0070ath":"\u002f"}`}},
		{"nested name is not params.name", req("tools/call", `{"arguments":{"name":"evil"},"name":"good"}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tools/call", Name: "good",
				Arguments: map[string]string{"name": `"evil"`}, RawArguments: `{"name":"evil"}`}},
		{"tools/call as a notification", notif("tools/call", `{"name":"x"}`),
			callView{Kind: jsonrpc.KindNotification, Method: "tools/call", Name: "x"}},
		{"prompts/get", req("prompts/get", `{"name":"greet","arguments":{"who":"me"}}`),
			callView{Kind: jsonrpc.KindRequest, Method: "prompts/get", Name: "greet",
				Arguments: map[string]string{"who": `"me"`}, RawArguments: `{"who":"me"}`}},
		{"resources/read", req("resources/read", `{"uri":"file:///etc/hosts"}`),
			callView{Kind: jsonrpc.KindRequest, Method: "resources/read", URI: "file:///etc/hosts"}},
		{"resources/subscribe", req("resources/subscribe", `{"uri":"db://t/1"}`),
			callView{Kind: jsonrpc.KindRequest, Method: "resources/subscribe", URI: "db://t/1"}},
		{"resources/unsubscribe", req("resources/unsubscribe", `{"uri":"db://t/1"}`),
			callView{Kind: jsonrpc.KindRequest, Method: "resources/unsubscribe", URI: "db://t/1"}},
		{"tasks/get", req("tasks/get", `{"taskId":"t-1"}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tasks/get", TaskID: "t-1"}},
		{"tasks/result", req("tasks/result", `{"taskId":"t-2"}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tasks/result", TaskID: "t-2"}},
		{"tasks/cancel", req("tasks/cancel", `{"taskId":"t-3"}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tasks/cancel", TaskID: "t-3"}},
		{"tasks/list takes no taskId", req("tasks/list", `{}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tasks/list"}},
		{"task-augmented tools/call", req("tools/call", `{"name":"slow","task":{"ttl":60000}}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tools/call", Name: "slow", CreatesTask: true}},
		{"null task is no task", req("tools/call", `{"name":"slow","task":null}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tools/call", Name: "slow"}},
		{"_meta protocol version", req("tools/list", `{`+meta+`}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tools/list", MetaVersion: "2026-07-28"}},
		{"_meta without version", req("tools/list", `{"_meta":{"progressToken":1}}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tools/list"}},
		{"_meta not an object is ignored", req("tools/list", `{"_meta":"2026-07-28"}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tools/list"}},
		{"_meta version nested deeper is ignored", req("tools/list", `{"_meta":{"x":{"`+MetaKeyProtocolVersion+`":"1"}}}`),
			callView{Kind: jsonrpc.KindRequest, Method: "tools/list"}},
		{"initialize", req("initialize", `{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}`),
			callView{Kind: jsonrpc.KindRequest, Method: "initialize", InitVersion: "2025-11-25"}},
		{"initialize without protocolVersion", req("initialize", `{}`),
			callView{Kind: jsonrpc.KindRequest, Method: "initialize"}},
		{"notification without params", notif("notifications/initialized", ""),
			callView{Kind: jsonrpc.KindNotification, Method: "notifications/initialized"}},
		{"request without params", req("ping", ""),
			callView{Kind: jsonrpc.KindRequest, Method: "ping"}},
		{"unknown method parses", req("x/y", `{"name":1}`),
			callView{Kind: jsonrpc.KindRequest, Method: "x/y"}},
		{"result response", `{"jsonrpc":"2.0","id":5,"result":{"name":"x","uri":"y","_meta":{"` + MetaKeyProtocolVersion + `":"z"}}}`,
			callView{Kind: jsonrpc.KindResult}},
		{"error response", `{"jsonrpc":"2.0","id":5,"error":{"code":-1,"message":"no"}}`,
			callView{Kind: jsonrpc.KindError}},
		{"error response with null id", `{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"no"}}`,
			callView{Kind: jsonrpc.KindError}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.body)
			if diff := cmp.Diff(tt.want, view(c)); diff != "" {
				t.Errorf("Parse(%s) mismatch (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	const (
		parse   = CodeParseError
		invalid = CodeInvalidRequest
		params  = CodeInvalidParams
	)
	reasons := map[int]string{parse: "parse_error", invalid: "invalid_request", params: "invalid_params"}
	for _, tt := range []struct {
		name string
		body string
		lim  Limits
		code int
	}{
		{"case variant of task", req("tools/call", `{"name":"slow","Task":{}}`), Limits{}, params},
		{"case variant of name alone", req("tools/call", `{"NAME":"evil"}`), Limits{}, params},
		{"case variant of arguments", req("tools/call", `{"name":"x","Arguments":{}}`), Limits{}, params},
		{"case variant of uri", req("resources/read", `{"uri":"a://b","URI":"c://d"}`), Limits{}, invalid},
		{"case variant of ref", req("completion/complete", `{"Ref":{"type":"ref/prompt","name":"p"}}`), Limits{}, params},
		{"case variant inside ref", req("completion/complete", `{"ref":{"Type":"ref/prompt","name":"p"}}`), Limits{}, params},
		{"case variant inside context", req("completion/complete", `{"ref":{"type":"ref/prompt","name":"p"},"context":{"Arguments":{}}}`), Limits{}, params},
		// Malformed JSON.
		{"empty", ``, Limits{}, parse},
		{"not JSON", `hello`, Limits{}, parse},
		{"truncated", `{"jsonrpc":"2.0","id":1,"method":"ping"`, Limits{}, parse},
		{"trailing data", req("ping", "") + `{}`, Limits{}, parse},
		{"invalid UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xffng\"}", Limits{}, parse},
		{"unpaired surrogate", req("tools/call", `{"name":"\ud800"}`), Limits{}, parse},
		// Well-formed, but not one acceptable message.
		{"batch", `[` + req("ping", "") + `]`, Limits{}, invalid},
		{"empty batch", `[]`, Limits{}, invalid},
		{"not an object", `"ping"`, Limits{}, invalid},
		{"missing jsonrpc", `{"id":1,"method":"ping"}`, Limits{}, invalid},
		{"wrong jsonrpc", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, Limits{}, invalid},
		{"unknown top-level member", `{"jsonrpc":"2.0","id":1,"method":"ping","extra":1}`, Limits{}, invalid},
		{"positional params", req("tools/call", `["x"]`), Limits{}, invalid},
		{"fractional id", `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, Limits{}, invalid},
		{"result and error", `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":""}}`, Limits{}, invalid},
		{"duplicate name", req("tools/call", `{"name":"safe","name":"evil"}`), Limits{}, invalid},
		{"case-variant name", req("tools/call", `{"name":"safe","Name":"evil"}`), Limits{}, invalid},
		{"case-variant method", `{"jsonrpc":"2.0","id":1,"method":"tools/call","Method":"ping"}`, Limits{}, invalid},
		{"case-variant argument", req("tools/call", `{"name":"t","arguments":{"path":"/ok","Path":"/etc"}}`), Limits{}, invalid},
		{"nesting over the limit", req("tools/call", `{"name":"t","arguments":{"a":{"b":[1]}}}`), Limits{MaxDepth: 4}, invalid},
		// Params of the MCP methods.
		{"tools/call without params", req("tools/call", ""), Limits{}, params},
		{"tools/call without name", req("tools/call", `{"arguments":{}}`), Limits{}, params},
		{"tools/call with only Name", req("tools/call", `{"Name":"evil"}`), Limits{}, params},
		{"tools/call with empty name", req("tools/call", `{"name":""}`), Limits{}, params},
		{"tools/call with null name", req("tools/call", `{"name":null}`), Limits{}, params},
		{"tools/call with numeric name", req("tools/call", `{"name":1}`), Limits{}, params},
		{"tools/call with object name", req("tools/call", `{"name":{"x":"y"}}`), Limits{}, params},
		{"tools/call with array arguments", req("tools/call", `{"name":"t","arguments":[1]}`), Limits{}, params},
		{"tools/call with string arguments", req("tools/call", `{"name":"t","arguments":"{}"}`), Limits{}, params},
		{"tools/call with numeric arguments", req("tools/call", `{"name":"t","arguments":0}`), Limits{}, params},
		{"prompts/get without name", req("prompts/get", `{}`), Limits{}, params},
		{"prompts/get with array name", req("prompts/get", `{"name":["a"]}`), Limits{}, params},
		{"resources/read without uri", req("resources/read", `{}`), Limits{}, params},
		{"resources/read with URI only", req("resources/read", `{"URI":"file:///x"}`), Limits{}, params},
		{"resources/read with numeric uri", req("resources/read", `{"uri":7}`), Limits{}, params},
		{"resources/subscribe with empty uri", req("resources/subscribe", `{"uri":""}`), Limits{}, params},
		{"resources/unsubscribe with boolean uri", req("resources/unsubscribe", `{"uri":true}`), Limits{}, params},
		{"tasks/get without taskId", req("tasks/get", `{}`), Limits{}, params},
		{"tasks/result with numeric taskId", req("tasks/result", `{"taskId":3}`), Limits{}, params},
		{"tasks/cancel with empty taskId", req("tasks/cancel", `{"taskId":""}`), Limits{}, params},
		{"initialize with numeric protocolVersion", req("initialize", `{"protocolVersion":20250618}`), Limits{}, params},
		{"_meta version not a string", req("tools/list", `{"_meta":{"`+MetaKeyProtocolVersion+`":1}}`), Limits{}, params},
		{"tools/call notification without name", notif("tools/call", `{}`), Limits{}, params},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, e := Parse([]byte(tt.body), tt.lim)
			wantErr(t, e, http.StatusBadRequest, tt.code, reasons[tt.code])
			switch {
			case tt.code == params && (c == nil || c.Msg == nil || c.Name != "" || c.Arguments != nil):
				t.Errorf("Call = %+v on invalid params, want the message only (for its id)", c)
			case tt.code != params && c != nil:
				t.Errorf("Call = %+v on error, want nil", c)
			}
			if strings.Contains(e.Message, "evil") {
				t.Errorf("message %q echoes a parameter value", e.Message)
			}
		})
	}
}

// TestParseArgumentsAreOriginalBytes checks that the raw arguments point at
// exactly what was sent, so that what is forwarded is what was checked.
func TestParseArgumentsAreOriginalBytes(t *testing.T) {
	args := `{ "q" : "a\"b" , "n" : [ 1 , 2 ] }`
	c := mustParse(t, req("tools/call", `{"name":"t","arguments":`+args+`}`))
	if string(c.RawArguments) != args {
		t.Errorf("RawArguments = %q, want %q", c.RawArguments, args)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(c.RawArguments, &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range got {
		if string(c.Arguments[k]) != string(v) {
			t.Errorf("Arguments[%q] = %s, encoding/json reads %s", k, c.Arguments[k], v)
		}
	}
	if len(got) != len(c.Arguments) {
		t.Errorf("Arguments has %d keys, encoding/json reads %d", len(c.Arguments), len(got))
	}
}
