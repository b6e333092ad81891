package inbound

// This file implements the per-version rules of MCP Streamable HTTP. See
// https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
// and the 2026-07-28 revision (SEP-2243 standard headers, SEP-2575
// stateless requests).

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/internal/jsonrpc"
)

// Protocol versions mcpgate speaks.
const (
	V20250326 = "2025-03-26"
	V20250618 = "2025-06-18"
	V20251125 = "2025-11-25"
	V20260728 = "2026-07-28"
)

// Versions lists the supported protocol versions, newest first.
// 2025-03-26 is accepted on requests for compatibility with clients and
// tools that still send it (the conformance suite does); it gets the
// 2025-06-18 rules, so JSON-RPC batches are refused there too.
func Versions() []string { return []string{V20260728, V20251125, V20250618, V20250326} }

// Supported reports whether v is a supported protocol version.
func Supported(v string) bool { return slices.Contains(Versions(), v) }

// Stateless reports whether v has no sessions (2026-07-28 and later).
func Stateless(v string) bool { return v >= V20260728 }

// methods lists the client-to-server methods each version allows. Anything
// else is refused without reaching the upstream.
var methods = map[string]map[string]bool{
	V20250326: set(common, "initialize", "notifications/initialized"),
	V20250618: set(common, "initialize", "notifications/initialized"),
	V20251125: set(common, "initialize", "notifications/initialized",
		"tasks/get", "tasks/result", "tasks/list", "tasks/cancel", "notifications/tasks/status"),
	V20260728: set(common, "server/discover", "subscriptions/listen",
		"tasks/get", "tasks/result", "tasks/list", "tasks/cancel"),
}

var common = []string{
	"ping",
	"tools/list", "tools/call",
	"resources/list", "resources/templates/list", "resources/read",
	"resources/subscribe", "resources/unsubscribe",
	"prompts/list", "prompts/get",
	"completion/complete", "logging/setLevel",
	"notifications/cancelled", "notifications/progress", "notifications/roots/list_changed",
}

func set(base []string, more ...string) map[string]bool {
	m := map[string]bool{}
	for _, s := range append(slices.Clone(base), more...) {
		m[s] = true
	}
	return m
}

// RequestVersion determines the protocol version of a POST. header is the
// MCP-Protocol-Version header; sessionVersion is the version negotiated for
// the request's session, if any. It returns "" for an initialize request
// without the header (the version is negotiated by the exchange itself).
func RequestVersion(header, sessionVersion string, c *Call) (string, *Error) {
	switch {
	case header != "":
		if !Supported(header) {
			return "", unsupportedVersion(header)
		}
		// A request may name an older version than its session negotiated
		// (some clients and tools send 2025-03-26 throughout), never a
		// newer one: that would unlock methods the session never agreed.
		if sessionVersion != "" && header > sessionVersion {
			return "", invalid("version_mismatch",
				"MCP-Protocol-Version %q is newer than the version negotiated for this session (%s)", header, sessionVersion)
		}
		return header, nil
	case sessionVersion != "":
		return sessionVersion, nil
	case c != nil && c.Msg.Method == "initialize":
		return "", nil
	default:
		return "", invalid("missing_version", "the MCP-Protocol-Version header is required")
	}
}

func unsupportedVersion(v string) *Error {
	e := errorf(http.StatusBadRequest, CodeUnsupportedProtocolVersion, "unsupported_version",
		"unsupported protocol version %q; supported: %s", truncate(v, 32), strings.Join(Versions(), ", "))
	e.Data = map[string]any{"supported": Versions()}
	return e
}

// CheckMethod applies the method allow-list of version (""= an initialize
// exchange still negotiating) to c.
func CheckMethod(version string, c *Call) *Error {
	m := c.Msg
	if m.Kind == jsonrpc.KindResult || m.Kind == jsonrpc.KindError {
		if Stateless(version) {
			return invalid("client_response", "clients must not send JSON-RPC responses on protocol version %s", version)
		}
		return nil // accepted only within the session it belongs to (stage 3)
	}
	if version == "" {
		switch {
		case m.Method != "initialize":
			return invalid("missing_version", "the MCP-Protocol-Version header is required")
		case m.Kind != jsonrpc.KindRequest:
			return invalid("invalid_request", "initialize must be a request")
		}
		return nil
	}
	if methods[version][m.Method] {
		// Notifications are exactly the notifications/ methods: a tools/call
		// sent without an id, or a notification sent with one, is refused
		// rather than guessed at.
		if isNotification := strings.HasPrefix(m.Method, "notifications/"); isNotification != (m.Kind == jsonrpc.KindNotification) {
			if isNotification {
				return invalid("invalid_request", "%s is a notification: send it without an id", m.Method)
			}
			return invalid("invalid_request", "%s is a request: send it with an id", m.Method)
		}
		return nil
	}
	status := http.StatusOK // JSON-RPC errors for a request travel in a 200
	if Stateless(version) {
		status = http.StatusNotFound // 2026-07-28: unknown method → 404 + -32601
	} else if m.Kind == jsonrpc.KindNotification {
		status = http.StatusBadRequest // a notification cannot carry a JSON-RPC error back
	}
	return errorf(status, CodeMethodNotFound, "method_not_allowed",
		"method %q is not available through this gateway on protocol version %s", truncate(m.Method, 64), version)
}

// CheckHeaders checks the 2026-07-28 standard headers against the body:
// Mcp-Method must equal the method and Mcp-Name the tool or prompt name or
// resource URI (SEP-2243), and the MCP-Protocol-Version header must equal
// the version in _meta (SEP-2575). On 2026-07-28 the headers are required;
// on earlier versions they are checked when present, so no header can ever
// disagree with what was authorized.
func CheckHeaders(h http.Header, version string, c *Call) *Error {
	m := c.Msg
	if m.Kind != jsonrpc.KindRequest && m.Kind != jsonrpc.KindNotification {
		return nil
	}
	required := Stateless(version)
	if e := mirror(h, "Mcp-Method", m.Method, required); e != nil {
		return e
	}
	switch m.Method {
	case "tools/call", "prompts/get":
		if e := mirror(h, "Mcp-Name", c.Name, required); e != nil {
			return e
		}
	case "resources/read":
		if e := mirror(h, "Mcp-Name", c.URI, required); e != nil {
			return e
		}
	default:
		if len(h.Values("Mcp-Name")) > 0 {
			return errorf(http.StatusBadRequest, CodeHeaderMismatch, "header_mismatch",
				"the Mcp-Name header is only valid on tools/call, prompts/get and resources/read")
		}
	}
	// The version in _meta selects the upstream's behaviour on dual-era
	// servers: it must agree with the header whenever it is present, and
	// is required on 2026-07-28 requests.
	if c.MetaVersion != "" || (required && m.Kind == jsonrpc.KindRequest) {
		if c.MetaVersion != version && version != "" {
			return errorf(http.StatusBadRequest, CodeHeaderMismatch, "header_mismatch",
				"MCP-Protocol-Version header %q does not match params._meta protocol version %q", version, truncate(c.MetaVersion, 32))
		}
	}
	return nil
}

func mirror(h http.Header, name, body string, required bool) *Error {
	vs := h.Values(name)
	switch {
	case len(vs) == 0 && !required:
		return nil
	case len(vs) == 0:
		return errorf(http.StatusBadRequest, CodeHeaderMismatch, "header_mismatch", "the %s header is required", name)
	case len(vs) > 1:
		return errorf(http.StatusBadRequest, CodeHeaderMismatch, "header_mismatch", "the %s header must appear once", name)
	}
	v, ok := decodeHeaderValue(vs[0])
	if !ok || v != body {
		return errorf(http.StatusBadRequest, CodeHeaderMismatch, "header_mismatch",
			"the %s header does not match the request body", name)
	}
	return nil
}

// decodeHeaderValue decodes the SEP-2243 "=?base64?…?=" form used for
// values that are not plain ASCII.
func decodeHeaderValue(v string) (string, bool) {
	const prefix, suffix = "=?base64?", "?="
	if !strings.HasPrefix(v, prefix) || !strings.HasSuffix(v, suffix) || len(v) < len(prefix)+len(suffix) {
		return v, true
	}
	b, err := base64.StdEncoding.DecodeString(v[len(prefix) : len(v)-len(suffix)])
	if err != nil {
		return "", false
	}
	return string(b), true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
