package jsonrpc

import (
	"encoding/json"
	"testing"
)

func TestEncodeError(t *testing.T) {
	idOf := func(raw string) ID {
		m, err := Decode([]byte(`{"jsonrpc":"2.0","id":`+raw+`,"method":"ping"}`), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	for _, tt := range []struct {
		name string
		id   ID
		code int
		msg  string
		data any
		want string
	}{
		{"zero id is null", ID{}, CodeParseError, "parse error", nil,
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`},
		{"integer id", idOf("7"), CodeMethodNotFound, "method not found", nil,
			`{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"method not found"}}`},
		{"string id kept verbatim", idOf(`"a\u0062"`), CodeInvalidParams, "bad", nil,
			`{"jsonrpc":"2.0","id":"a\u0062","error":{"code":-32602,"message":"bad"}}`},
		{"data", idOf("1"), -32020, "header mismatch", map[string]any{"header": "Mcp-Name"},
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"header mismatch","data":{"header":"Mcp-Name"}}}`},
		{"unmarshalable data left out", idOf("1"), CodeInternalError, "x", make(chan int),
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"x"}}`},
		{"message escaped", ID{}, CodeInvalidRequest, "a\"b\\c\n\r\t\x01<>&\u2028\u2029é\xff", nil,
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"a\"b\\c\n\r\t\u0001\u003c\u003e\u0026\u2028\u2029é\ufffd"}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := EncodeError(tt.id, tt.code, tt.msg, tt.data)
			if string(got) != tt.want {
				t.Errorf("EncodeError = %s\nwant          %s", got, tt.want)
			}
			// What the gateway writes, it must accept itself.
			m, err := Decode(got, Limits{})
			if err != nil {
				t.Fatalf("Decode(EncodeError) = %v", err)
			}
			if m.Kind != KindError || !m.ID.Equal(tt.id) {
				t.Errorf("Decode(EncodeError) = %v %q, want error with id %q", m.Kind, m.ID, tt.id)
			}
			var v struct {
				Error struct {
					Code    int
					Message string
				}
			}
			if err := json.Unmarshal(got, &v); err != nil || v.Error.Code != tt.code {
				t.Errorf("encoding/json reads %+v, %v", v, err)
			}
		})
	}
}
