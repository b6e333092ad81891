package gateway

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/authn"
	"github.com/mcpgate/mcpgate/internal/inbound"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
	"github.com/mcpgate/mcpgate/internal/redisconn"
	"github.com/mcpgate/mcpgate/internal/session"
)

// JSON-RPC error codes of errors mcpgate answers itself. The JSON-RPC and
// MCP codes pass through from inbound; the gateway's own use -32030…-32034
// (a range no MCP revision assigns) and -32001 for an unknown session, as
// the MCP TypeScript SDK does. docs/security.md lists them.
const (
	codeInvalidRequest    = jsonrpc.CodeInvalidRequest
	codeInvalidParams     = jsonrpc.CodeInvalidParams
	codeInternal          = jsonrpc.CodeInternalError
	codeNotFound          = jsonrpc.CodeInvalidRequest
	codeSessionNotFound   = -32001
	codeUnauthorized      = -32030
	codeDenied            = -32031
	codeInsufficientScope = -32032
	codeTooMany           = -32033
	codeUnavailable       = -32034
)

// rejection is every way a request can end without being forwarded. It
// keeps what the client is told apart from the cause that is logged.
type rejection struct {
	status    int
	code      int    // JSON-RPC error code
	message   string // sent to the client; an agent can act on it
	data      any    // JSON-RPC error data
	decision  string // audit decision
	reason    string // audit reason: a short stable label
	rule      string // policy rule id, when a rule decided
	required  []string
	challenge string // WWW-Authenticate, for 401 and 403
	cause     error  // logged, never sent
}

func (r *rejection) Error() string { return r.reason + ": " + r.message }

func reject(status, code int, reason, message string) *rejection {
	return &rejection{status: status, code: code, message: message, decision: audit.Reject, reason: reason}
}

// fromInbound maps a stage-1 error.
func fromInbound(e *inbound.Error) *rejection {
	return &rejection{status: e.Status, code: e.Code, message: e.Message, data: e.Data, decision: audit.Reject, reason: e.Reason}
}

// fromAuthn maps an authentication failure: 401 with the RFC 6750/9728
// challenge, 400 for a malformed request, 503 when the authorization
// server's keys or introspection cannot be used.
func (rt *route) fromAuthn(err error) *rejection {
	var ae *authn.Error
	if !errors.As(err, &ae) {
		return &rejection{status: http.StatusServiceUnavailable, code: codeUnavailable, decision: audit.Error,
			reason: "authn_internal", message: "authentication is temporarily unavailable; try again later", cause: err}
	}
	r := &rejection{status: ae.Status, code: codeUnauthorized, decision: audit.Reject, reason: ae.Reason, cause: ae.Err}
	switch ae.Status {
	case http.StatusServiceUnavailable:
		r.code, r.decision = codeUnavailable, audit.Error
		r.message = "the authorization server cannot be reached to validate tokens; try again later"
	case http.StatusBadRequest:
		r.message = "invalid request: " + ae.Description
		r.challenge = authn.Challenge{ResourceMetadata: rt.metadataURL, Error: ae.Code, Description: ae.Description}.String()
	default:
		r.message = "authentication required: obtain an access token for " + rt.resource +
			" (see the resource_metadata in the WWW-Authenticate header)"
		if ae.Code != "" {
			r.message = "invalid access token: " + ae.Description
		}
		r.challenge = authn.ChallengeFor(ae, rt.metadataURL, rt.policy.BaselineScopes()).String()
	}
	return r
}

// fromSession maps a session-stage error.
func fromSession(err error) *rejection {
	switch {
	case errors.Is(err, session.ErrUnknown):
		return reject(http.StatusNotFound, codeSessionNotFound, "unknown_session",
			"session not found: start a new session with initialize")
	case errors.Is(err, session.ErrTooManySessions):
		return reject(http.StatusTooManyRequests, codeTooMany, "too_many_sessions",
			"too many open sessions for this user and client: close unused sessions (DELETE) and retry")
	case errors.Is(err, session.ErrTooManyStreams):
		return reject(http.StatusTooManyRequests, codeTooMany, "too_many_streams",
			"too many open streams for this user and client: close one and retry")
	case errors.Is(err, session.ErrFull):
		return reject(http.StatusServiceUnavailable, codeUnavailable, "session_capacity",
			"the gateway cannot open more sessions now; try again later")
	case errors.Is(err, redisconn.ErrUnavailable):
		return &rejection{status: http.StatusServiceUnavailable, code: codeUnavailable, decision: audit.Error,
			reason: "session_state_unavailable", cause: err,
			message: "the gateway cannot reach its session state, so the request was not forwarded; try again later"}
	}
	return &rejection{status: http.StatusInternalServerError, code: codeInternal, decision: audit.Error,
		reason: "session_internal", message: "internal error", cause: err}
}

// fail answers the request with r, records the decision and logs the
// cause. It is the only place a rejected request is answered.
func (x *exchange) fail(r *rejection) {
	w := x.w
	if r.challenge != "" {
		w.Header().Set("WWW-Authenticate", r.challenge)
	}
	if r.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	var id *jsonrpc.ID
	if x.call != nil && x.call.Msg.Kind == jsonrpc.KindRequest {
		id = &x.call.Msg.ID
	}
	writeJSONRPCError(w, r.status, id, r.code, r.message, r.data)

	x.countRequest(r.decision)
	if r.reason != "anomaly" && r.reason != "revoked" {
		x.observe(r.decision == audit.Deny || r.decision == audit.StepUp || r.decision == audit.Reject)
	}
	if r.decision == audit.Deny || r.decision == audit.StepUp {
		x.rt.g.metrics.PolicyDenials.WithLabelValues(x.rt.name, r.rule).Inc()
	}
	ev := x.event(audit.KindDecision)
	ev.Decision, ev.Reason, ev.Rule, ev.Status = r.decision, r.reason, r.rule, r.status
	ev.RequiredScopes = r.required
	ev.Findings = x.auditFindings()
	if err := x.rt.g.writeAudit(x.r.Context(), ev); err != nil {
		x.rt.g.log.LogAttrs(x.r.Context(), slog.LevelError, "audit write failed for a rejected request",
			slog.String("request_id", x.id), slog.String("error", err.Error()))
	}
	if r.cause != nil {
		level := slog.LevelDebug
		if r.decision == audit.Error {
			level = slog.LevelWarn
		}
		x.rt.g.log.LogAttrs(x.r.Context(), level, "request rejected",
			slog.String("request_id", x.id), slog.String("route", x.rt.name),
			slog.String("reason", r.reason), slog.String("error", r.cause.Error()))
	}
}

// writeJSONRPCError writes a JSON-RPC error response. id nil → null. A 202
// or 204 status is never used here: every rejection has a body.
func writeJSONRPCError(w http.ResponseWriter, status int, id *jsonrpc.ID, code int, message string, data any) {
	var rid jsonrpc.ID
	if id != nil {
		rid = *id
	}
	body := jsonrpc.EncodeError(rid, code, message, data)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// jsonRPCResult builds {"jsonrpc":"2.0","id":id,"result":result}.
func jsonRPCResult(id jsonrpc.ID, result []byte) []byte {
	var b strings.Builder
	b.Grow(len(result) + 48)
	b.WriteString(`{"jsonrpc":"2.0","id":`)
	if raw := id.Raw(); len(raw) > 0 {
		b.Write(raw)
	} else {
		b.WriteString("null")
	}
	b.WriteString(`,"result":`)
	b.Write(result)
	b.WriteString("}")
	return []byte(b.String())
}

// mustJSON marshals values that cannot fail to marshal.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
