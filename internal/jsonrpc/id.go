package jsonrpc

import "bytes"

// ID is a JSON-RPC request id: a JSON string or integer, kept as the exact
// bytes the client sent (so string 1 and number 1 differ, as JSON-RPC
// requires). The zero ID stands for an absent or null id.
type ID struct {
	raw []byte // JSON text of the id; nil when absent or null
}

// Raw returns the id's JSON text, nil for the zero ID. It points into the
// decoded message and must not be modified.
func (id ID) Raw() []byte { return id.raw }

// IsZero reports whether the id is absent or null.
func (id ID) IsZero() bool { return len(id.raw) == 0 }

// String returns the id's JSON text for logs and audit records (a string id
// keeps its quotes and escapes), or "" for the zero ID.
func (id ID) String() string { return string(id.raw) }

// Equal reports whether id and other denote the same JSON-RPC id: both
// zero, the same integer, or strings with the same decoded value (so "ab"
// equals "a\u0062"). A string never equals a number.
func (id ID) Equal(other ID) bool {
	a, b := id.raw, other.raw
	if bytes.Equal(a, b) {
		return true
	}
	if len(a) == 0 || len(b) == 0 || a[0] != '"' || b[0] != '"' {
		return false // integers are kept in their only spelling
	}
	if bytes.IndexByte(a, '\\') < 0 && bytes.IndexByte(b, '\\') < 0 {
		return false
	}
	var bufA, bufB [64]byte
	return bytes.Equal(
		appendUnescaped(bufA[:0], a[1:len(a)-1]),
		appendUnescaped(bufB[:0], b[1:len(b)-1]))
}
