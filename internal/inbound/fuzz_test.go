package inbound

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/mcpgate/mcpgate/internal/jsonrpc"
)

// FuzzParse checks that Parse never panics, that every rejection is a 400
// with a JSON-RPC code, and that what it extracts from an accepted message
// is what encoding/json (the way a Go upstream reads it) sees: params.name,
// params.uri, params.taskId and each argument's raw value. The later checks
// of the stage must not panic on any accepted message either.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		req("tools/call", `{"name":"search","arguments":{"q":"x","n":[1,{"a":null}]}}`),
		req("tools/call", `{"name":"t","arguments":null,"task":{"ttl":1}}`),
		req("tools/call", `{"n\u0061me":"d\u00e9l","arguments":{"\u0070ath":"\/etc"}}`),
		req("tools/call", `{"name":"safe","Name":"evil"}`),
		req("tools/call", `{"Name":"evil"}`),
		req("tools/call", `{"name":"t","arguments":{"a":1,"A":2}}`),
		req("tools/call", `{"name":1}`),
		req("tools/call", `{"name":"t","arguments":[1]}`),
		req("prompts/get", `{"name":"greet","arguments":{"who":"me"}}`),
		req("resources/read", `{"uri":"file:///etc/hosts","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}`),
		req("resources/subscribe", `{"uri":"a://b"}`),
		req("tasks/get", `{"taskId":"t-1"}`),
		req("tasks/cancel", `{"taskId":7}`),
		req("initialize", `{"protocolVersion":"2025-11-25","capabilities":{}}`),
		notif("notifications/initialized", ""),
		notif("initialize", `{}`),
		`{"jsonrpc":"2.0","id":1,"result":{"name":"x"}}`,
		`{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"m"}}`,
		`[` + req("ping", "") + `]`,
		`{"jsonrpc":"2.0","id":1,"method":"ping"`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"\xff\"}}",
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, e := Parse(data, Limits{MaxDepth: 16})
		if e != nil {
			if (c != nil) != (e.Code == CodeInvalidParams) || c != nil && (c.Name != "" || c.URI != "" || c.Arguments != nil) {
				t.Fatalf("Call %+v with error %v: want only the message, and only for invalid params", c, e)
			}
			if e.Status != http.StatusBadRequest || e.Message == "" || e.Reason == "" {
				t.Fatalf("bad error %+v", e)
			}
			switch e.Code {
			case CodeParseError, CodeInvalidRequest, CodeInvalidParams:
			default:
				t.Fatalf("unexpected code %d", e.Code)
			}
			return
		}
		if c == nil || c.Msg == nil {
			t.Fatal("no Call and no error")
		}
		checkAgainstEncodingJSON(t, data, c)

		// The rest of the stage must hold up on whatever Parse accepts.
		h := http.Header{"Mcp-Method": {c.Msg.Method}, "Mcp-Name": {c.Name}}
		for _, v := range append([]string{""}, Versions()...) {
			_ = CheckMethod(v, c)
			_ = CheckHeaders(h, v, c)
			_ = CheckHeaders(http.Header{}, v, c)
			_, _ = RequestVersion(v, "", c)
		}
	})
}

// checkAgainstEncodingJSON compares the fields Parse extracted with what
// encoding/json reads, both by exact map key and through a struct (which
// matches keys case-insensitively, as a Go upstream would).
func checkAgainstEncodingJSON(t *testing.T, data []byte, c *Call) {
	t.Helper()
	var env map[string]json.RawMessage
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("Parse accepted what encoding/json refuses: %v", err)
	}
	if c.Msg.Kind == jsonrpc.KindResult || c.Msg.Kind == jsonrpc.KindError {
		if c.Name != "" || c.URI != "" || c.TaskID != "" || c.Arguments != nil || c.CreatesTask ||
			c.MetaVersion != "" || c.InitVersion != "" {
			t.Fatalf("response with MCP fields: %+v", c)
		}
		return
	}
	params := map[string]json.RawMessage{}
	if raw, ok := env["params"]; ok {
		if err := json.Unmarshal(raw, &params); err != nil {
			t.Fatalf("params: %v", err)
		}
	}
	var viaStruct struct {
		Params struct {
			Name      string                     `json:"name"`
			URI       string                     `json:"uri"`
			TaskID    string                     `json:"taskId"`
			Arguments map[string]json.RawMessage `json:"arguments"`
		} `json:"params"`
	}
	// Parse checked the types of the fields it reads; others may not fit
	// the struct, so only compare when it decodes.
	structOK := json.Unmarshal(data, &viaStruct) == nil
	str := func(key string) string {
		var s string
		if raw, ok := params[key]; ok {
			if err := json.Unmarshal(raw, &s); err != nil {
				t.Fatalf("params.%s = %s accepted but encoding/json reads no string: %v", key, raw, err)
			}
		}
		return s
	}

	switch c.Msg.Method {
	case "tools/call", "prompts/get":
		if want := str("name"); c.Name != want || c.Name == "" {
			t.Fatalf("Name = %q, encoding/json reads %q", c.Name, want)
		}
		if structOK && viaStruct.Params.Name != c.Name {
			t.Fatalf("Name = %q, a Go struct reads %q", c.Name, viaStruct.Params.Name)
		}
		var args map[string]json.RawMessage
		if raw, ok := params["arguments"]; ok {
			if err := json.Unmarshal(raw, &args); err != nil {
				t.Fatalf("arguments %s accepted but not an object: %v", raw, err)
			}
			if args != nil && string(c.RawArguments) != string(raw) {
				t.Fatalf("RawArguments = %s, encoding/json reads %s", c.RawArguments, raw)
			}
		}
		if (args == nil) != (c.Arguments == nil) || len(args) != len(c.Arguments) {
			t.Fatalf("Arguments %v, encoding/json reads %v", c.Arguments, args)
		}
		for k, v := range c.Arguments {
			if w, ok := args[k]; !ok || string(w) != string(v) {
				t.Fatalf("Arguments[%q] = %s, encoding/json reads %s (present %v)", k, v, w, ok)
			}
			if structOK && string(viaStruct.Params.Arguments[k]) != string(v) {
				t.Fatalf("Arguments[%q] = %s, a Go struct reads %s", k, v, viaStruct.Params.Arguments[k])
			}
		}
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		if want := str("uri"); c.URI != want || c.URI == "" {
			t.Fatalf("URI = %q, encoding/json reads %q", c.URI, want)
		}
		if structOK && viaStruct.Params.URI != c.URI {
			t.Fatalf("URI = %q, a Go struct reads %q", c.URI, viaStruct.Params.URI)
		}
	case "tasks/get", "tasks/result", "tasks/cancel":
		if want := str("taskId"); c.TaskID != want || c.TaskID == "" {
			t.Fatalf("TaskID = %q, encoding/json reads %q", c.TaskID, want)
		}
	case "initialize":
		if want := str("protocolVersion"); c.InitVersion != want {
			t.Fatalf("InitVersion = %q, encoding/json reads %q", c.InitVersion, want)
		}
	}
	if task, ok := params["task"]; c.CreatesTask != (ok && string(task) != "null") {
		t.Fatalf("CreatesTask = %v, params.task = %s", c.CreatesTask, task)
	}
}
