package inbound

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/jsonrpc"
)

// Limits bounds one request. The gateway fills it from the validated
// configuration; there are no zero-value defaults here.
type Limits struct {
	MaxBodyBytes    int64         // larger bodies get 413; 0 refuses every non-empty body
	MaxDepth        int           // JSON nesting; 0 → the jsonrpc default (64)
	BodyReadTimeout time.Duration // reading the body; 0 → no deadline
}

// CheckOrigin enforces the Origin allow-list (MCP Streamable HTTP, DNS
// rebinding protection): a present Origin must be listed (canonical
// lowercase "scheme://host[:port]"); no Origin is allowed.
func CheckOrigin(h http.Header, allowed map[string]bool) *Error {
	vs := h.Values("Origin")
	if len(vs) == 0 {
		return nil
	}
	if len(vs) == 1 && allowed[strings.ToLower(vs[0])] {
		return nil
	}
	return errorf(http.StatusForbidden, CodeInvalidRequest, "origin", "origin not allowed")
}

// ReadBody reads a POST body of at most lim.MaxBodyBytes. The body is read
// completely before anything is forwarded: what is checked is what is sent.
func ReadBody(w http.ResponseWriter, r *http.Request, lim Limits) ([]byte, *Error) {
	cts := r.Header.Values("Content-Type")
	if len(cts) != 1 {
		return nil, errorf(http.StatusUnsupportedMediaType, CodeInvalidRequest, "content_type",
			"send exactly one Content-Type: application/json")
	}
	if cts[0] != "application/json" { // the usual value, parsed without allocating
		if mt, _, err := mime.ParseMediaType(cts[0]); err != nil || mt != "application/json" {
			return nil, errorf(http.StatusUnsupportedMediaType, CodeInvalidRequest, "content_type",
				"Content-Type must be application/json")
		}
	}
	if r.ContentLength > lim.MaxBodyBytes {
		return nil, tooLarge(lim.MaxBodyBytes)
	}
	rc := http.NewResponseController(w)
	if lim.BodyReadTimeout > 0 {
		_ = rc.SetReadDeadline(time.Now().Add(lim.BodyReadTimeout))
		defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	}
	body, err := readBody(w, r, lim.MaxBodyBytes)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(lim.MaxBodyBytes)
		}
		return nil, invalid("body_read", "the request body could not be read")
	}
	return body, nil
}

// readBody reads a body of at most max bytes: in one allocation when its
// declared length is small (the server holds the body to it), else
// growing as the bytes arrive — a declared length alone, before any byte
// and before authentication, never buys more than maxPrealloc of memory.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if n := r.ContentLength; n >= 0 && n <= max && n <= maxPrealloc {
		b := make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, max))
}

// maxPrealloc bounds the buffer readBody allocates from a declared
// Content-Length.
const maxPrealloc = 64 << 10

func tooLarge(max int64) *Error {
	return errorf(http.StatusRequestEntityTooLarge, CodeInvalidRequest, "body_too_large",
		"request body larger than %d bytes", max)
}

// Call is a decoded MCP message with the fields later stages decide on.
type Call struct {
	Msg *jsonrpc.Message
	// Name is params.name (tools/call, prompts/get).
	Name string
	// URI is params.uri (resources/read, subscribe, unsubscribe).
	URI string
	// Arguments are params.arguments (tools/call, prompts/get), by exact
	// name; RawArguments is the object as sent.
	Arguments    map[string]json.RawMessage
	RawArguments []byte
	// TaskID is params.taskId (tasks/get, result, cancel).
	TaskID string
	// CreatesTask reports a task-augmented request (params.task present).
	CreatesTask bool
	// MetaVersion is params._meta["io.modelcontextprotocol/protocolVersion"].
	MetaVersion string
	// InitVersion is params.protocolVersion of an initialize request.
	InitVersion string
}

// MetaKeyProtocolVersion is the _meta key carrying the protocol version on
// 2026-07-28 requests (SEP-2575).
const MetaKeyProtocolVersion = "io.modelcontextprotocol/protocolVersion"

// Parse decodes body strictly and extracts the MCP fields. When the
// envelope is valid but its params are not, it returns a Call holding only
// the message together with the error, so the answer can carry the id.
func Parse(body []byte, lim Limits) (*Call, *Error) {
	msg, err := jsonrpc.Decode(body, jsonrpc.Limits{MaxDepth: lim.MaxDepth})
	if err != nil {
		var je *jsonrpc.Error
		if errors.As(err, &je) {
			reason := "invalid_request"
			if je.Code == jsonrpc.CodeParseError {
				reason = "parse_error"
			}
			return nil, &Error{Status: http.StatusBadRequest, Code: je.Code, Message: je.Message, Reason: reason}
		}
		return nil, invalid("invalid_request", "invalid JSON-RPC message")
	}
	c := &Call{Msg: msg}
	if msg.Kind != jsonrpc.KindRequest && msg.Kind != jsonrpc.KindNotification {
		return c, nil
	}
	if e := c.extract(); e != nil {
		// The envelope is valid: the caller can still answer the id.
		return &Call{Msg: msg}, e
	}
	return c, nil
}

// extract fills the MCP fields from c.Msg.Params.
func (c *Call) extract() *Error {
	msg := c.Msg
	p := msg.Params
	// A member whose name equals an interpreted one only when case is
	// ignored ("Name" for "name") is refused: upstreams that match names
	// case-insensitively (Go's encoding/json) would act on a value the
	// gateway never looked at.
	if e := exactNames(p, "params", interpretedParams); e != nil {
		return e
	}
	if ref, ok := jsonrpc.Lookup(p, "ref"); ok && len(ref) > 0 && ref[0] == '{' {
		if e := exactNames(ref, "params.ref", []string{"type", "name", "uri"}); e != nil {
			return e
		}
	}
	if cx, ok := jsonrpc.Lookup(p, "context"); ok && len(cx) > 0 && cx[0] == '{' {
		if e := exactNames(cx, "params.context", []string{"arguments"}); e != nil {
			return e
		}
	}
	str := func(key string) (string, *Error) {
		raw, ok := jsonrpc.Lookup(p, key)
		if !ok {
			return "", nil
		}
		s, err := jsonrpc.DecodeString(raw)
		if err != nil {
			return "", errorf(http.StatusBadRequest, CodeInvalidParams, "invalid_params", "params.%s must be a string", key)
		}
		return s, nil
	}
	var e *Error
	switch msg.Method {
	case "tools/call", "prompts/get":
		if c.Name, e = str("name"); e != nil {
			return e
		}
		if c.Name == "" {
			return errorf(http.StatusBadRequest, CodeInvalidParams, "invalid_params", "params.name is required")
		}
		if raw, ok := jsonrpc.Lookup(p, "arguments"); ok && string(raw) != "null" {
			if raw[0] != '{' {
				return errorf(http.StatusBadRequest, CodeInvalidParams, "invalid_params", "params.arguments must be an object")
			}
			c.RawArguments = raw
			c.Arguments = map[string]json.RawMessage{}
			for k, v := range jsonrpc.Members(raw) {
				c.Arguments[k] = v
			}
		}
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		if c.URI, e = str("uri"); e != nil {
			return e
		}
		if c.URI == "" {
			return errorf(http.StatusBadRequest, CodeInvalidParams, "invalid_params", "params.uri is required")
		}
	case "tasks/get", "tasks/result", "tasks/cancel":
		if c.TaskID, e = str("taskId"); e != nil {
			return e
		}
		if c.TaskID == "" {
			return errorf(http.StatusBadRequest, CodeInvalidParams, "invalid_params", "params.taskId is required")
		}
	case "initialize":
		if c.InitVersion, e = str("protocolVersion"); e != nil {
			return e
		}
	}
	if raw, ok := jsonrpc.Lookup(p, "task"); ok && string(raw) != "null" {
		c.CreatesTask = true
	}
	if meta, ok := jsonrpc.Lookup(p, "_meta"); ok && len(meta) > 0 && meta[0] == '{' {
		if raw, ok := jsonrpc.Lookup(meta, MetaKeyProtocolVersion); ok {
			v, err := jsonrpc.DecodeString(raw)
			if err != nil {
				return errorf(http.StatusBadRequest, CodeInvalidParams, "invalid_params", "_meta protocolVersion must be a string")
			}
			c.MetaVersion = v
		}
	}
	return nil
}

// interpretedParams are the params members some stage decides on.
var interpretedParams = []string{"name", "arguments", "uri", "taskId", "task", "ref", "context", "_meta", "protocolVersion"}

// exactNames refuses a member of obj that matches one of names only when
// case is ignored.
func exactNames(obj []byte, where string, names []string) *Error {
	for k := range jsonrpc.Members(obj) {
		for _, n := range names {
			if k != n && strings.EqualFold(k, n) {
				return errorf(http.StatusBadRequest, CodeInvalidParams, "invalid_params",
					"%s.%s: member names are case-sensitive; use %q", where, truncate(k, 32), n)
			}
		}
	}
	return nil
}
