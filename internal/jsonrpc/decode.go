// This file implements the JSON-RPC 2.0 message envelope, as used by MCP
// (no batches, params always by name). See https://www.jsonrpc.org/specification
// and https://modelcontextprotocol.io/specification/2025-11-25/basic.

package jsonrpc

// Limits bounds decoding. Zero fields take defaults.
type Limits struct {
	// MaxDepth is the maximum nesting of arrays and objects, the top-level
	// object counting as 1. Zero or negative means 64; values above 10000
	// are treated as 10000.
	MaxDepth int
}

func (l Limits) maxDepth() int {
	switch {
	case l.MaxDepth <= 0:
		return 64
	case l.MaxDepth > maxDepthCap:
		return maxDepthCap
	}
	return l.MaxDepth
}

// Kind is the kind of a JSON-RPC message. The zero Kind is not a valid kind.
type Kind uint8

// The four kinds of message.
const (
	KindRequest      Kind = iota + 1 // method and id
	KindNotification                 // method, no id
	KindResult                       // id and result
	KindError                        // id (possibly null) and error
)

// String returns "request", "notification", "result" or "error".
func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindResult:
		return "result"
	case KindError:
		return "error"
	}
	return "invalid"
}

// Message is a decoded JSON-RPC message. Its byte slices and ID point into
// the data given to Decode: the caller must not modify or reuse that buffer
// (for example return it to a pool) while the Message is in use.
type Message struct {
	Kind   Kind
	ID     ID     // zero for notifications and for errors with a null id
	Method string // requests and notifications
	Params []byte // raw "params" object; nil when absent
	Result []byte // raw "result" value, for KindResult
	Error  []byte // raw "error" object, for KindError
}

// span locates a value in the input; the zero span means absent.
type span struct{ start, end int }

func (sp span) ok() bool { return sp.end > sp.start }

// envelope records where the top-level members' values lie.
type envelope struct {
	jsonrpc, id, method, params, result, error span
}

// set records the value of the top-level member named name. Unknown names
// make the message invalid; duplicates were already caught by the name check.
func (e *envelope) set(ns *nameState, name []byte, v span) {
	switch string(name) {
	case "jsonrpc":
		e.jsonrpc = v
	case "id":
		e.id = v
	case "method":
		e.method = v
	case "params":
		e.params = v
	case "result":
		e.result = v
	case "error":
		e.error = v
	default:
		ns.setInvalid(invalidRequest("unknown top-level member " + quoteName(name)))
	}
}

// Decode validates data as a single JSON-RPC 2.0 message and returns it.
// On failure it returns an *Error with CodeParseError for malformed JSON
// and CodeInvalidRequest for anything else; see the package documentation.
// Malformed JSON takes precedence over every other problem, except nesting
// deeper than lim.MaxDepth, which stops the scan where it is found.
// The returned Message points into data.
func Decode(data []byte, lim Limits) (*Message, error) {
	var ns nameState
	return decode(data, lim, &ns)
}

// decode is Decode with the name-tracking state supplied by the caller.
func decode(data []byte, lim Limits, ns *nameState) (*Message, error) {
	ns.data = data
	s := scanner{data: data, maxDepth: lim.maxDepth(), names: ns}
	s.skipWS()
	if s.pos >= len(data) {
		return nil, &Error{Code: CodeParseError, Message: "parse error: empty body"}
	}
	var env envelope
	top := data[s.pos]
	var err error
	if top == '{' {
		err = s.object(1, &env)
	} else {
		err = s.value(0)
	}
	if err != nil {
		return nil, err
	}
	s.skipWS()
	if s.pos < len(data) {
		return nil, s.syntaxErr(s.pos, "data after the JSON value")
	}
	switch top {
	case '{':
	case '[':
		return nil, invalidRequest("batch requests are not supported")
	default:
		return nil, invalidRequest("message must be a JSON object")
	}
	if ns.invalid != nil {
		return nil, ns.invalid
	}
	return env.message(data)
}

// message checks the envelope's shape and builds the Message.
func (e *envelope) message(d []byte) (*Message, error) {
	if !e.jsonrpc.ok() {
		return nil, invalidRequest(`missing "jsonrpc"`)
	}
	if v := stringValue(d, e.jsonrpc); v == nil || string(v) != "2.0" {
		return nil, invalidRequest(`"jsonrpc" must be "2.0"`)
	}
	if e.params.ok() && !e.method.ok() {
		return nil, invalidRequest(`"params" without "method"`)
	}
	m := Message{}
	switch {
	case e.method.ok():
		if e.result.ok() || e.error.ok() {
			return nil, invalidRequest(`"method" with "result" or "error"`)
		}
		name := stringValue(d, e.method)
		if len(name) == 0 {
			return nil, invalidRequest(`"method" must be a non-empty string`)
		}
		if e.params.ok() {
			if d[e.params.start] != '{' {
				return nil, invalidRequest(`"params" must be an object`)
			}
			m.Params = d[e.params.start:e.params.end:e.params.end]
		}
		m.Kind = KindNotification
		if e.id.ok() {
			m.Kind = KindRequest
		}
		m.Method = internMethod(name)
	case e.result.ok() && e.error.ok():
		return nil, invalidRequest(`both "result" and "error"`)
	case e.result.ok():
		m.Kind = KindResult
		m.Result = d[e.result.start:e.result.end:e.result.end]
	case e.error.ok():
		m.Kind = KindError
		m.Error = d[e.error.start:e.error.end:e.error.end]
		if err := checkErrorObject(m.Error); err != nil {
			return nil, err
		}
	default:
		return nil, invalidRequest(`missing "method", "result" or "error"`)
	}
	if m.Kind != KindNotification {
		if !e.id.ok() {
			return nil, invalidRequest(`missing "id"`)
		}
		raw := d[e.id.start:e.id.end:e.id.end]
		switch {
		case raw[0] == 'n' && m.Kind == KindError: // null: the request's id was unknown
		case raw[0] == '"' || isInt(raw):
			m.ID = ID{raw: raw}
		default:
			return nil, invalidRequest(`"id" must be a string or an integer`)
		}
	}
	return &m, nil
}

// stringValue returns the decoded contents of the string at d[sp], or nil if
// the value is not a string.
func stringValue(d []byte, sp span) []byte {
	raw := d[sp.start:sp.end]
	if raw[0] != '"' {
		return nil
	}
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c == '\\' {
			return appendUnescaped(nil, body) // rare: allocate
		}
	}
	return body[:len(body):len(body)]
}

// checkErrorObject checks a JSON-RPC error object: an object with an
// integer "code" and a string "message".
func checkErrorObject(raw []byte) error {
	if raw[0] != '{' {
		return invalidRequest(`"error" must be an object`)
	}
	if code, ok := Lookup(raw, "code"); !ok || !isInt(code) {
		return invalidRequest(`"error.code" must be an integer`)
	}
	if msg, ok := Lookup(raw, "message"); !ok || msg[0] != '"' {
		return invalidRequest(`"error.message" must be a string`)
	}
	return nil
}

// isInt reports whether the JSON number raw is an integer that every JSON
// implementation reads exactly (|n| ≤ 2^53−1, the IEEE-754 safe range),
// written without fraction or exponent. A larger id would be rounded by
// upstreams that read numbers as doubles (JavaScript, go-sdk), so their
// answer would carry a different id than the request the gateway checked.
// "-0" is refused: it is a second spelling of 0.
func isInt(raw []byte) bool {
	const maxPos, maxNeg = "9007199254740991", "9007199254740991"
	limit, neg := maxPos, false
	if len(raw) > 0 && raw[0] == '-' {
		raw, limit, neg = raw[1:], maxNeg, true
	}
	switch {
	case len(raw) == 0 || len(raw) > len(limit):
		return false
	case raw[0] == '0':
		return len(raw) == 1 && !neg
	}
	for _, c := range raw {
		if !isDigit(c) {
			return false
		}
	}
	return len(raw) < len(limit) || string(raw) <= limit
}
