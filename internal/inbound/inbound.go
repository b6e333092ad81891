// Package inbound is stage 1 of the pipeline: everything mcpgate checks
// about a request before it looks at the token. It bounds what a client may
// send (rate per IP, body size, JSON depth), enforces the Origin allow-list
// against DNS rebinding, decodes the JSON-RPC message strictly (see package
// jsonrpc), extracts the MCP fields later stages decide on, and checks them
// against the protocol version: the methods a version allows, batches, and
// on 2026-07-28 the Mcp-Method / Mcp-Name headers that must mirror the body.
//
// Every failure is an *Error carrying the HTTP status, the JSON-RPC code and
// a message a client or agent can act on.
package inbound

import (
	"fmt"
	"net/http"

	"github.com/mcpgate/mcpgate/internal/jsonrpc"
)

// Error is a request rejected by this stage.
type Error struct {
	Status  int    // HTTP status
	Code    int    // JSON-RPC error code
	Message string // safe to send to the client
	Reason  string // short stable label for audit and metrics
	Data    any    // optional JSON-RPC error data
}

func (e *Error) Error() string { return fmt.Sprintf("inbound: %s: %s", e.Reason, e.Message) }

// JSON-RPC error codes used by this stage. The first four are JSON-RPC 2.0
// (package jsonrpc); the last two are MCP 2026-07-28 (SEP-2243, SEP-2575).
const (
	CodeParseError                 = jsonrpc.CodeParseError
	CodeInvalidRequest             = jsonrpc.CodeInvalidRequest
	CodeMethodNotFound             = jsonrpc.CodeMethodNotFound
	CodeInvalidParams              = jsonrpc.CodeInvalidParams
	CodeHeaderMismatch             = -32020
	CodeUnsupportedProtocolVersion = -32022
)

func errorf(status, code int, reason, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// invalid is the common 400 with a JSON-RPC "invalid request" code.
func invalid(reason, format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, CodeInvalidRequest, reason, format, args...)
}
