package jsonrpc_test

import (
	"fmt"

	"github.com/mcpgate/mcpgate/internal/jsonrpc"
)

func ExampleDecode() {
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"q":"x"}}}`)
	msg, err := jsonrpc.Decode(body, jsonrpc.Limits{})
	if err != nil {
		return
	}
	raw, _ := jsonrpc.Lookup(msg.Params, "name")
	name, _ := jsonrpc.DecodeString(raw)
	fmt.Println(msg.Kind, msg.ID, msg.Method, name)
	// Output: request 1 tools/call search
}

func ExampleDecode_caseVariant() {
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","Name":"evil"}}`)
	_, err := jsonrpc.Decode(body, jsonrpc.Limits{})
	fmt.Printf("%s\n", jsonrpc.EncodeError(jsonrpc.ID{}, jsonrpc.CodeInvalidRequest, err.(*jsonrpc.Error).Message, nil))
	// Output: {"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"duplicate or case-variant member name \"Name\""}}
}
