package jsonrpc

import "strconv"

// JSON-RPC 2.0 error codes (https://www.jsonrpc.org/specification#error_object).
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
)

// Error is a JSON-RPC error: a code and a message that is safe to send back
// to the client (it never echoes more than a short, escaped excerpt of the
// input). errors.Is matches two *Error values on Code alone, so
//
//	errors.Is(err, jsonrpc.ErrInvalidRequest)
//
// holds for every invalid-request rejection.
type Error struct {
	Code    int
	Message string
}

// Sentinels for errors.Is; they match any *Error with the same Code.
// Do not modify them.
var (
	ErrParse          = &Error{Code: CodeParseError, Message: "parse error"}
	ErrInvalidRequest = &Error{Code: CodeInvalidRequest, Message: "invalid request"}
)

// Error implements error.
func (e *Error) Error() string {
	return "jsonrpc " + strconv.Itoa(e.Code) + ": " + e.Message
}

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && t.Code == e.Code
}

func invalidRequest(msg string) *Error {
	return &Error{Code: CodeInvalidRequest, Message: msg}
}

// quoteName renders a decoded member name for an error message: truncated
// to about 64 bytes on a rune boundary, then quoted with every non-ASCII or
// non-printable character escaped, so it is safe to echo to clients and logs.
func quoteName(name []byte) string {
	const max = 64
	suffix := ""
	if len(name) > max {
		n := max
		for n > 0 && name[n]&0xC0 == 0x80 { // do not split a UTF-8 sequence
			n--
		}
		name, suffix = name[:n], "..."
	}
	return strconv.QuoteToASCII(string(name)) + suffix
}
