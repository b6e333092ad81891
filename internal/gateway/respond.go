package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/session"
	"github.com/mcpgate/mcpgate/internal/upstream"
)

// forward sends the checked request upstream, observes and filters the
// response on its way back, and records the outcome.
func (x *exchange) forward() {
	ctx, cancel := context.WithCancel(x.r.Context())
	defer cancel()
	f := &x.fwd
	*f = forwarding{x: x, cancel: cancel, sent: x.rt.g.now(),
		isRequest: x.call != nil && x.call.Msg.Kind == jsonrpc.KindRequest}
	if x.cred.Header != "" {
		f.header = http.Header{x.cred.Header: {x.cred.Value}}
	}
	// The outcome is recorded (and the slots released) in a deferred
	// call: when a response fails after it started (client gone, token
	// expired, upstream cut off), the reverse proxy panics with
	// http.ErrAbortHandler to abort the client connection, and the record
	// must still be written.
	defer f.finish()
	x.rt.proxy.ForwardTo(ctx, x.w, x.r, x.body, f)
}

// forwarding is the state of one forwarded request, and the
// upstream.Handler that observes its response. It lives in the exchange:
// one allocation serves every hook.
type forwarding struct {
	x         *exchange
	cancel    context.CancelFunc
	header    http.Header // the credential the upstream receives
	isRequest bool
	sent      time.Time

	upStatus int
	upTime   time.Duration // until the upstream's response headers
	relayed  int64
	copyErr  error
	done     bool // OnDone ran: the response was relayed or abandoned
	filtered int
	newSID   string
	expiry   *time.Timer
	untrack  func()                 // stops tracking the stream for revocation
	ended    atomic.Pointer[string] // why mcpgate ended the stream
}

var _ upstream.Handler = (*forwarding)(nil)

// endWith returns a function that ends the stream for reason.
func (f *forwarding) endWith(reason string) func() {
	return func() {
		f.ended.CompareAndSwap(nil, &reason)
		f.cancel()
	}
}

// finish stops the stream's timers and tracking, releases the exchange's
// slots and records the outcome.
func (f *forwarding) finish() {
	if f.untrack != nil {
		f.untrack()
	}
	if f.expiry != nil {
		f.expiry.Stop()
	}
	why := "token_expired"
	if p := f.ended.Load(); p != nil {
		why = *p
	}
	// Released before the answer is flushed: a client that has its answer
	// may open its next stream at once.
	f.x.releaseSlots()
	if f.done && f.upStatus != 0 && f.copyErr == nil {
		// The answer is complete: send it before the outcome record is
		// written, which then costs the client no latency. (The decision
		// record was written before anything was forwarded.) Not after a
		// panic, which must abort the connection, not end the answer.
		_ = http.NewResponseController(f.x.w).Flush()
	}
	f.x.recordOutcome(f.upStatus, f.upTime, f.relayed, f.filtered, f.copyErr, why)
}

// UpstreamHeader implements upstream.Handler.
func (f *forwarding) UpstreamHeader() http.Header { return f.header }

// Inspects implements upstream.Handler: every body is inspected.
func (f *forwarding) Inspects() (json, event, raw bool) { return true, true, true }

// OnResponse implements upstream.Handler: it checks the response headers
// before anything reaches the client.
func (f *forwarding) OnResponse(resp *http.Response) error {
	x, g := f.x, f.x.rt.g
	f.upStatus, f.upTime = resp.StatusCode, g.now().Sub(f.sent)
	if resp.StatusCode == http.StatusUnauthorized {
		// The client's token is for the gateway, not the upstream:
		// relaying the upstream's 401 (its challenge is stripped)
		// would send the client to re-authorize for nothing.
		return &upstream.Refusal{Err: errors.New("upstream answered 401 Unauthorized"),
			Message: "the upstream MCP server refused the credential mcpgate presented for it; this is a gateway configuration problem, not your token's"}
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// A redirect would send the client, with its mcpgate token,
		// wherever the upstream says.
		return &upstream.Refusal{Err: fmt.Errorf("upstream answered %d", resp.StatusCode),
			Message: "the upstream MCP server answered with a redirect, which mcpgate does not relay"}
	}
	// Screened before anything is learnt from them.
	if err := x.screenHeaders(resp.Header); err != nil {
		return err
	}
	sid, err := x.observeHeaders(resp)
	f.newSID = sid
	if err != nil {
		return err
	}
	mt := upstream.MediaType(resp.Header.Get("Content-Type"))
	if ok := resp.StatusCode >= 200 && resp.StatusCode < 300; ok && x.inspectsResult() {
		switch mt {
		case "application/json", "text/event-stream":
		default:
			return fmt.Errorf("the upstream answered %s with %q, which mcpgate cannot filter", x.call.Msg.Method, resp.Header.Get("Content-Type"))
		}
	}
	if mt == "text/event-stream" {
		if !x.ident.Expiry.IsZero() {
			// A stream ends when the token that opened it expires…
			f.expiry = time.AfterFunc(x.ident.Expiry.Sub(g.now()), f.endWith("token_expired"))
		}
		// …or when it is revoked.
		f.untrack = g.streamsOpen.add(revokeToken(x.ident), f.endWith("token_revoked"))
		// A revocation made while the request was on its way
		// upstream found nothing to end: check again now.
		if _, revoked := g.revoked.Check(revokeToken(x.ident)); revoked {
			f.endWith("token_revoked")()
		}
	}
	return nil
}

// OnJSON implements upstream.Handler. Every JSON answer is checked to be
// the answer to this request (clients route answers by id, whatever
// stream or body they come in), transformed when the method needs it, and
// scanned for credentials, like every event and every other body on the
// way to the client.
func (f *forwarding) OnJSON(body []byte) ([]byte, error) {
	if !f.isRequest && len(body) == 0 {
		return body, nil // the usual 202 to a notification or a response
	}
	if f.isRequest {
		out, n, err := f.x.transform(body, f.newSID)
		f.filtered += n
		if err != nil {
			return nil, err
		}
		body = out
	}
	return f.x.screenMessage(body)
}

// OnEvent implements upstream.Handler.
func (f *forwarding) OnEvent(data []byte) ([]byte, error) {
	out, n, err := f.x.observeEvent(data, f.newSID)
	f.filtered += n
	if err != nil {
		return nil, err
	}
	switch {
	case out == nil:
		out = data
	case len(out) == 0:
		return out, nil // dropped
	}
	return f.x.screenMessage(out)
}

// OnEventField implements upstream.Handler.
func (f *forwarding) OnEventField(line []byte) (bool, error) { return f.x.screenEventField(line) }

// OnRaw implements upstream.Handler.
func (f *forwarding) OnRaw(body []byte) ([]byte, error) { return f.x.screenRaw(body) }

// OnDone implements upstream.Handler.
func (f *forwarding) OnDone(n int64, err error) { f.relayed, f.copyErr, f.done = n, err, true }

// recordOutcome writes the outcome record of a forwarded request.
func (x *exchange) recordOutcome(upStatus int, upTime time.Duration, relayed int64, filtered int, copyErr error, ended string) {
	g := x.rt.g
	ev := x.event(audit.KindOutcome)
	ev.Decision, ev.UpstreamStatus, ev.Bytes, ev.Filtered = audit.Forward, upStatus, relayed, filtered
	ev.Status = upStatus
	ev.CredentialMode, ev.CredentialID = x.rt.credMode, x.cred.ID
	ev.Findings = x.auditFindings()
	ev.LatencyMS = float64(g.now().Sub(x.start).Microseconds()) / 1000
	ev.UpstreamMS = float64(upTime.Microseconds()) / 1000
	g.metrics.UpstreamRequestDuration.WithLabelValues(x.rt.name).Observe(upTime.Seconds())
	var ue *upstream.Error
	switch {
	case errors.As(copyErr, &ue):
		ev.Decision, ev.Status, ev.Reason = audit.Error, ue.Status, "upstream_unavailable"
	case errors.Is(copyErr, context.Canceled) && x.r.Context().Err() == nil:
		ev.Reason = ended // our own cancel: the stream outlived its token, or it was revoked
	case errors.Is(copyErr, context.Canceled):
		ev.Reason = "client_gone"
	case copyErr != nil:
		ev.Decision, ev.Reason = audit.Error, "upstream_stream"
	}
	if ev.Decision == audit.Error {
		g.metrics.UpstreamErrors.WithLabelValues(x.rt.name, ev.Reason).Inc()
		x.countRequest(audit.Error)
	} else {
		x.countRequest(audit.Allow)
	}
	if err := g.writeAudit(context.Background(), ev); err != nil { // recorded even when the client is gone
		g.log.LogAttrs(x.r.Context(), slog.LevelError, "audit write failed for an outcome",
			slog.String("request_id", x.id), slog.String("error", err.Error()))
	}
}

// observeHeaders keeps session bindings in step with the upstream: it binds
// the session an initialize created, forgets one the upstream ended, and
// never lets an upstream hand a client a session id mcpgate did not bind.
// It returns the session id of the response.
func (x *exchange) observeHeaders(resp *http.Response) (string, error) {
	sid := resp.Header.Get("Mcp-Session-Id")
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	switch {
	case x.reservation != nil: // initialize
		if !ok || sid == "" {
			x.reservation.Release()
			return "", nil
		}
		if !validSessionID(sid) {
			x.reservation.Release()
			return "", fmt.Errorf("upstream assigned an invalid session id")
		}
		b := session.Binding{Principal: x.principal, Route: x.rt.name}
		if err := x.reservation.Commit(context.WithoutCancel(x.r.Context()), sid, b); err != nil {
			if errors.Is(err, session.ErrUnknown) {
				return "", fmt.Errorf("upstream assigned a session id already bound to another principal: %w", err)
			}
			// Unbound, the session would be refused on its next request:
			// refuse it now (fail closed).
			return "", fmt.Errorf("the session's owner could not be recorded: %w", err)
		}
		return sid, nil
	case x.r.Method == http.MethodDelete && (ok || resp.StatusCode == http.StatusNotFound):
		x.forgetSession()
	case x.sessionID != "" && resp.StatusCode == http.StatusNotFound:
		x.forgetSession() // the upstream forgot it
	}
	if sid != "" && sid != x.sessionID {
		resp.Header.Del("Mcp-Session-Id")
	}
	return x.sessionID, nil
}

// needsResult reports whether the response to this request must be
// inspected: list results are filtered, and the results that create state
// (sessions, tasks) are recorded.
func (x *exchange) needsResult() bool {
	switch x.call.Msg.Method {
	case "tools/list", "prompts/list", "resources/list", "resources/templates/list", "tasks/list", "initialize":
		return true
	case "tools/call":
		return x.rt.trustResultLabels || x.call.CreatesTask
	}
	return x.call.CreatesTask
}

// transform inspects a JSON-RPC message that answers this request and
// returns the message to send, with how many list items were removed.
// Anything that is not the answer to this request passes unchanged.
func (x *exchange) transform(body []byte, sid string) ([]byte, int, error) {
	msg, err := jsonrpc.Decode(body, jsonrpc.Limits{MaxDepth: x.rt.g.limits.MaxDepth})
	if err != nil {
		// What mcpgate cannot read, it cannot vouch for: a lenient client
		// might still read an answer (to any of its requests) in it. The
		// decoder's message may quote the answer, so it is not logged.
		return nil, 0, fmt.Errorf("cannot inspect the upstream's answer to %s: it is not a valid JSON-RPC message", x.call.Msg.Method)
	}
	if msg.Kind != jsonrpc.KindResult && msg.Kind != jsonrpc.KindError {
		return nil, 0, fmt.Errorf("the upstream's answer to %s is not a JSON-RPC response", x.call.Msg.Method)
	}
	if !msg.ID.Equal(x.call.Msg.ID) {
		// Clients route answers by id: an answer to another request (or
		// an id an upstream rounded) would reach it unfiltered.
		return nil, 0, fmt.Errorf("the upstream's answer to %s carries another request id", x.call.Msg.Method)
	}
	if msg.Kind == jsonrpc.KindError || !x.needsResult() {
		return body, 0, nil
	}
	g := x.rt.g
	switch m := x.call.Msg.Method; m {
	case "tools/list":
		out, n, err := x.filterTools(msg.Result)
		if err != nil {
			return nil, 0, err
		}
		if n == 0 {
			return body, 0, nil
		}
		return jsonRPCResult(msg.ID, out), n, nil
	case "prompts/list", "resources/list", "resources/templates/list":
		out, n, err := x.rt.policy.Filter(m, msg.Result, x.grant)
		if err != nil {
			return nil, 0, err
		}
		if n == 0 {
			return body, 0, nil
		}
		return jsonRPCResult(msg.ID, out), n, nil
	case "tools/call":
		if err := x.learnResultLabels(msg.Result); err != nil {
			// The taint a result carries must be recorded before the
			// agent sees the result: otherwise a later call could escape
			// the rules it should meet.
			return nil, 0, err
		}
	case "tasks/list":
		out, n, err := x.filterTasks(msg.Result)
		if err != nil || n == 0 {
			return body, 0, err
		}
		return jsonRPCResult(msg.ID, out), n, nil
	case "initialize":
		if v, ok := jsonrpc.Lookup(msg.Result, "protocolVersion"); ok && sid != "" {
			if s, err := jsonrpc.DecodeString(v); err == nil {
				if err := g.sessions.SetVersion(context.WithoutCancel(x.r.Context()), sid, x.principal, s); err != nil {
					g.log.Warn("session: protocol version not recorded; later requests must send MCP-Protocol-Version", "request_id", x.id, "error", err)
				}
			}
		}
	}
	if x.call.CreatesTask {
		if task, ok := jsonrpc.Lookup(msg.Result, "task"); ok {
			if id, ok := jsonrpc.Lookup(task, "taskId"); ok {
				if s, err := jsonrpc.DecodeString(id); err == nil && s != "" {
					if err := g.sessions.BindTask(context.WithoutCancel(x.r.Context()), x.rt.name, s, x.principal); err != nil {
						// An unbound task is unknown to every later request (fail closed).
						g.log.Warn("session: task owner not recorded; the task cannot be used", "request_id", x.id, "error", err)
					}
				}
			}
		}
	}
	return body, 0, nil
}

// inspectsResult reports whether this request's answer is inspected: every
// request's is (its id at least), so it must come as JSON or SSE.
func (x *exchange) inspectsResult() bool {
	return x.call != nil && x.call.Msg.Kind == jsonrpc.KindRequest
}

// observeEvent handles one SSE event: the answer to this request goes
// through transform; a server request (sampling, elicitation) is recorded
// so the client may answer it on this session.
func (x *exchange) observeEvent(data []byte, sid string) ([]byte, int, error) {
	msg, err := jsonrpc.Decode(data, jsonrpc.Limits{MaxDepth: x.rt.g.limits.MaxDepth})
	if err != nil {
		// An event mcpgate cannot read is dropped: a lenient client might
		// read an answer to one of its requests in it.
		return []byte{}, 0, nil // dropped whole
	}
	isRequest := x.call != nil && x.call.Msg.Kind == jsonrpc.KindRequest
	switch msg.Kind {
	case jsonrpc.KindRequest:
		if sid != "" {
			if err := x.rt.g.sessions.AddPending(context.WithoutCancel(x.r.Context()), sid, string(msg.ID.Raw())); err != nil {
				// Unrecorded, the client's answer will be refused (fail closed).
				x.rt.g.log.Warn("session: server request not recorded; the client's answer to it will be refused", "request_id", x.id, "error", err)
			}
		}
	case jsonrpc.KindResult, jsonrpc.KindError:
		// Only the answer to this stream's own request passes, inspected
		// like a JSON answer; an answer on a GET stream, or to another
		// request, is dropped (clients route answers by id, whatever the
		// stream, so it would skip the filters of its own request).
		if !isRequest || !msg.ID.Equal(x.call.Msg.ID) {
			return []byte{}, 0, nil // dropped whole
		}
		if msg.Kind == jsonrpc.KindError || !x.needsResult() {
			return nil, 0, nil
		}
		out, n, err := x.transform(data, sid)
		if err != nil || n == 0 {
			return nil, 0, err
		}
		return out, n, nil
	}
	return nil, 0, nil
}

// filterTasks keeps only the tasks this principal created.
func (x *exchange) filterTasks(result []byte) ([]byte, int, error) {
	out, n := keepItems(result, "tasks", func(t []byte) bool {
		idRaw, _ := jsonrpc.Lookup(t, "taskId")
		id, err := jsonrpc.DecodeString(idRaw)
		if err != nil {
			return false
		}
		owned, err := x.rt.g.sessions.TaskOwnedBy(context.WithoutCancel(x.r.Context()), x.rt.name, id, x.principal)
		return err == nil && owned // a task whose owner cannot be checked is hidden
	})
	return out, n, nil
}

// filterTools filters a tools/list result: the upstream's definitions are
// learnt (annotation labels, pins) first, then tools the caller may not use
// (scopes), tools whose definition changed on a blocking route, and tools a
// list-phase sequence rule hides are removed.
func (x *exchange) filterTools(result []byte) ([]byte, int, error) {
	hide, err := x.observeTools(result)
	if err != nil {
		return nil, 0, err
	}
	out, n, err := x.rt.policy.Filter("tools/list", result, x.grant)
	if err != nil {
		return nil, 0, err
	}
	if g := x.rt.g; g.hasListRules {
		visible, err := g.seq.ListFilter(x.r.Context(), g.store, x.sequenceCall())
		if err != nil {
			return nil, 0, fmt.Errorf("sequence policy state: %w", err)
		}
		list, _ := jsonrpc.Lookup(out, "tools")
		for raw := range jsonrpc.Elements(list) {
			nameRaw, _ := jsonrpc.Lookup(raw, "name")
			name, err := jsonrpc.DecodeString(nameRaw)
			if err != nil {
				continue
			}
			if ok, _ := visible(name, x.rt.toolLabels(name)); !ok {
				if hide == nil {
					hide = map[string]bool{}
				}
				hide[name] = true
			}
		}
	}
	out, m := dropTools(out, hide)
	return out, n + m, nil
}

// learnResultLabels adds the labels a trusted upstream put in a result's
// _meta to the run's taint. (A tool's configured result_labels were
// recorded when the call was allowed.)
func (x *exchange) learnResultLabels(result []byte) error {
	var labels []string
	if x.rt.trustResultLabels {
		if meta, ok := jsonrpc.Lookup(result, "_meta"); ok && len(meta) > 0 && meta[0] == '{' {
			if raw, ok := jsonrpc.Lookup(meta, resultLabelsKey); ok && len(raw) > 0 && raw[0] == '[' {
				for e := range jsonrpc.Elements(raw) {
					if l, err := jsonrpc.DecodeString(e); err == nil && policy.ValidLabel(l) && len(labels) < 16 {
						labels = append(labels, l)
					}
				}
			}
		}
	}
	if len(labels) == 0 {
		return nil
	}
	g := x.rt.g
	if err := g.seq.AddResultLabels(context.WithoutCancel(x.r.Context()), g.store, x.sequenceCall(), labels); err != nil {
		return fmt.Errorf("record result labels: %w", err)
	}
	return nil
}

// resultLabelsKey is the _meta key under which a trusted upstream attaches
// labels to a tool result.
const resultLabelsKey = "mcpgate.dev/labels"

// forgetSession drops the binding of the request's session (after a
// DELETE, or when the upstream no longer knows it). A failure only leaves
// the binding to expire: it still belongs to the same principal.
func (x *exchange) forgetSession() {
	if err := x.rt.g.sessions.Delete(context.WithoutCancel(x.r.Context()), x.sessionID, x.principal); err != nil {
		x.rt.g.log.Warn("session: binding not deleted; it expires on its own", "request_id", x.id, "error", err)
	}
}
