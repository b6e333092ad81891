// Package jsonrpc decodes the JSON-RPC 2.0 envelope of an inbound MCP
// message strictly, so that what the gateway checks is exactly what the
// upstream server will see.
//
// # Why strict
//
// The gateway authorizes a message and then forwards its original bytes.
// If the gateway's JSON reader and the upstream's disagree about what those
// bytes mean, an attacker can make the gateway approve one call while the
// upstream executes another. Go's encoding/json matches struct keys
// case-insensitively and keeps the last of duplicate keys; servers written
// in other languages are case-sensitive and may keep the first. A body such
// as
//
//	{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","Name":"evil"}}
//
// or one with two "name" members is therefore ambiguous, and Decode rejects
// it: no object, at any depth, may contain two member names that are equal,
// or equal under Unicode simple case folding (as strings.EqualFold), after
// escapes are decoded ("\u006dethod" is "method").
//
// For the same reason Decode rejects anything a careful peer might read
// differently: malformed JSON, trailing data, invalid UTF-8, unpaired
// surrogate escapes, control characters in strings, nesting beyond a cap,
// batches, unknown top-level members, non-integer or out-of-range ids, and
// positional params. Malformed input yields an [Error] with
// [CodeParseError]; well-formed input that is not an acceptable single
// message yields [CodeInvalidRequest].
//
// Decode validates in one pass and does not build a tree: the [Message]
// it returns points into the input, and [Lookup], [Members] and
// [DecodeString] read further into a params object on demand.
package jsonrpc
