package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/authn"
	"github.com/mcpgate/mcpgate/internal/credential"
	"github.com/mcpgate/mcpgate/internal/inbound"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/redact"
	"github.com/mcpgate/mcpgate/internal/session"
	"github.com/mcpgate/mcpgate/internal/state"
	"github.com/mcpgate/mcpgate/internal/toolpin"
)

// exchange is one request on its way through the pipeline.
type exchange struct {
	revVersion string // the shared revocation list's version the token was checked against
	rt         *route
	w          http.ResponseWriter
	r          *http.Request
	id         string // request id
	start      time.Time

	body      []byte        // POST body, exactly as forwarded
	call      *inbound.Call // decoded POST message
	ident     *authn.Identity
	principal session.Principal
	grant     policy.Grant
	sessionID string          // Mcp-Session-Id presented, if any
	binding   session.Binding // its binding
	version   string          // protocol version in effect ("" while initializing)
	decision  policy.Decision

	token     string                // the client's bearer token: never forwarded, never logged
	live      []string              // credentials that must not reach the client (token, attached credential)
	cred      credential.Credential // what the upstream receives
	findings  map[findingKey]int    // credentials detected on the way in and out
	screened  bool                  // the request passed the credential scan (its names are clean)
	scan      *redact.Live          // the credential scanner, its live credentials prepared
	scanState redact.Live           // what scan points to once prepared

	ip   netip.Addr   // client IP (rate limiting, audit)
	base *audit.Event // the fields every record of this exchange shares, once known
	// The exchange's records, held here so that writing them costs no
	// allocation of their own: the base, the decision and the outcome.
	// Other records (alerts) are allocated.
	evBase, evDecision, evOutcome audit.Event
	liveBuf                       [2]string // live's first entries
	pkey                          string    // principalKey(ident), once computed

	fwd forwarding // the forwarded request's state

	reservation session.Slot // initialize: the session slot held
	release     func()       // long-lived stream: the slot held
}

// ServeHTTP runs one MCP request through the gateway pipeline:
//
//  1. inbound: rate limit, Origin, HTTP method, body limit
//  2. authn: bearer token → identity (401 / 400 / 503); a revoked token is
//     refused like an invalid one
//  3. inbound again: strict JSON-RPC, protocol version, method allow-list,
//     mirrored headers — after authn, so an unauthenticated client always
//     gets the 401 that starts discovery; credentials in the message and
//     forwarded headers are redacted or refused (the client's own token
//     always removed); an active anomaly action (deny, step-up) applies
//  4. session: ownership of Mcp-Session-Id, client responses, tasks, caps
//  5. policy: route, tool, resource and prompt scopes (403 step-up / deny),
//     tool pins, sequence rules
//  6. credential: what the upstream receives in place of the client's
//     token (minted, exchanged, service or static; or nothing)
//  7. audit: the decision is recorded before anything is forwarded
//  8. upstream: the exact checked bytes, allow-listed headers, no token;
//     the response is filtered, scanned for credentials and observed on
//     the way back, and its outcome recorded
//
// Every decided request also feeds the anomaly detector and the metrics.
func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{rt: rt, w: w, r: r, id: rt.g.nextRequestID(), start: rt.g.now()}
	w.Header().Set("X-Request-Id", x.id)
	if rt.corsPreflight(w, r) {
		return
	}
	rt.corsHeaders(w, r)
	if rej := x.admit(); rej != nil {
		x.fail(rej)
		return
	}
	if rej := x.authenticate(); rej != nil {
		x.fail(rej)
		return
	}
	if rej := x.checkRevoked(); rej != nil {
		x.fail(rej)
		return
	}
	if rej := x.decode(); rej != nil {
		x.fail(rej)
		return
	}
	if rej := x.screenRequest(); rej != nil {
		x.fail(rej)
		return
	}
	if rej := x.checkAnomaly(); rej != nil {
		x.fail(rej)
		return
	}
	if rej := x.bindSession(); rej != nil {
		x.fail(rej)
		return
	}
	if rej := x.authorize(); rej != nil {
		x.fail(rej)
		return
	}
	if rej := x.holdSlots(); rej != nil {
		x.fail(rej)
		return
	}
	if rej := x.attachCredential(); rej != nil {
		x.releaseSlots()
		x.fail(rej)
		return
	}
	if rej := x.recordDecision(); rej != nil {
		x.releaseSlots()
		x.fail(rej)
		return
	}
	x.forward()
}

// admit applies the checks that need neither a token nor a parsed body.
func (x *exchange) admit() *rejection {
	g := x.rt.g
	x.ip = inbound.ClientIP(x.r, g.trusted)
	if !g.limiter.Allow(x.ip) {
		return reject(http.StatusTooManyRequests, codeTooMany, "rate_limited", "too many requests from this address; slow down")
	}
	if e := inbound.CheckOrigin(x.r.Header, g.origins); e != nil {
		return fromInbound(e)
	}
	switch x.r.Method {
	case http.MethodPost:
		body, e := inbound.ReadBody(x.w, x.r, g.limits)
		if e != nil {
			return fromInbound(e)
		}
		x.body = body
	case http.MethodGet, http.MethodDelete:
	default:
		x.w.Header().Set("Allow", "POST, GET, DELETE")
		return reject(http.StatusMethodNotAllowed, codeInvalidRequest, "http_method", "use POST, GET or DELETE")
	}
	if vs := x.r.Header.Values("Mcp-Session-Id"); len(vs) > 1 {
		return reject(http.StatusBadRequest, codeInvalidRequest, "session_header", "Mcp-Session-Id must appear once")
	} else if len(vs) == 1 {
		x.sessionID = vs[0]
		if !validSessionID(x.sessionID) {
			return reject(http.StatusBadRequest, codeInvalidRequest, "session_header", "Mcp-Session-Id must be 1-256 visible ASCII characters")
		}
	}
	return nil
}

// validSessionID applies the MCP rule: visible ASCII (0x21-0x7E).
func validSessionID(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func (x *exchange) authenticate() *rejection {
	id, err := x.rt.g.authn.Authenticate(x.r.Context(), authn.Request{
		Header:    x.r.Header,
		RawQuery:  x.r.URL.RawQuery,
		Resource:  x.rt.resource,
		Audiences: x.rt.audiences,
		Issuers:   x.rt.issuers,
	})
	if err != nil {
		rej := x.rt.fromAuthn(err)
		x.rt.g.metrics.TokenValidationFailures.WithLabelValues(rej.reason).Inc()
		return rej
	}
	x.ident = id
	if x.token = inboundToken(x.r.Header); x.token != "" {
		x.addLive(x.token)
	}
	x.principal = session.Principal{Issuer: id.Issuer, Subject: id.Subject, ClientID: id.ClientID}
	x.grant = x.rt.hierarchy.Expand(id.Scopes)
	return nil
}

// decode parses a POST body; GET and DELETE have none.
func (x *exchange) decode() *rejection {
	if x.body == nil {
		return nil
	}
	c, e := inbound.Parse(x.body, x.rt.g.limits)
	x.call = c // with invalid params, the message alone: the answer names its id
	if e != nil {
		return fromInbound(e)
	}
	return nil
}

// bindSession checks that a presented session belongs to this principal on
// this route, resolves the protocol version and applies the per-version
// rules that depend on it.
func (x *exchange) bindSession() *rejection {
	g, rt := x.rt.g, x.rt
	if x.sessionID != "" {
		b, err := g.sessions.Lookup(x.r.Context(), x.sessionID, x.principal, rt.name)
		if err != nil {
			return fromSession(err)
		}
		x.binding = b
	}
	vs := x.r.Header.Values("Mcp-Protocol-Version")
	if len(vs) > 1 {
		return reject(http.StatusBadRequest, codeInvalidRequest, "version_header", "MCP-Protocol-Version must appear once")
	}
	header := x.r.Header.Get("Mcp-Protocol-Version")
	switch x.r.Method {
	case http.MethodGet:
		if inbound.Stateless(header) {
			x.w.Header().Set("Allow", "POST")
			return reject(http.StatusMethodNotAllowed, codeInvalidRequest, "http_method",
				"protocol version "+header+" has no GET stream; use subscriptions/listen")
		}
		if header != "" {
			// The same -32022 as on POST, with data.supported.
			if _, e := inbound.RequestVersion(header, "", nil); e != nil {
				return fromInbound(e)
			}
		}
		return nil
	case http.MethodDelete:
		if x.sessionID == "" {
			return reject(http.StatusBadRequest, codeInvalidRequest, "session_header", "DELETE needs the Mcp-Session-Id of the session to end")
		}
		return nil
	}
	v, e := inbound.RequestVersion(header, x.binding.Version, x.call)
	if e != nil {
		return fromInbound(e)
	}
	x.version = v
	if e := inbound.CheckMethod(v, x.call); e != nil {
		return fromInbound(e)
	}
	if e := inbound.CheckHeaders(x.r.Header, v, x.call); e != nil {
		return fromInbound(e)
	}
	msg := x.call.Msg
	switch {
	case msg.Kind == jsonrpc.KindResult || msg.Kind == jsonrpc.KindError:
		// A client's answer to a server request (sampling, elicitation)
		// is accepted only for a request the upstream sent on this session.
		if x.sessionID == "" {
			return reject(http.StatusBadRequest, codeInvalidRequest, "unexpected_response",
				"this response answers no outstanding server request of this session")
		}
		ok, err := g.sessions.TakePending(x.r.Context(), x.sessionID, string(msg.ID.Raw()))
		if err != nil {
			return fromSession(err)
		}
		if !ok {
			return reject(http.StatusBadRequest, codeInvalidRequest, "unexpected_response",
				"this response answers no outstanding server request of this session")
		}
	case msg.Method == "initialize" && x.sessionID != "":
		return reject(http.StatusBadRequest, codeInvalidRequest, "reinitialize", "initialize starts a new session: send it without Mcp-Session-Id")
	case x.call.TaskID != "":
		owned, err := g.sessions.TaskOwnedBy(x.r.Context(), rt.name, x.call.TaskID, x.principal)
		if err != nil {
			return fromSession(err)
		}
		if !owned {
			return reject(http.StatusOK, codeInvalidParams, "unknown_task", "unknown task: it does not exist or belongs to someone else")
		}
	}
	return nil
}

// authorize applies the route's policy: scopes for the route and for the
// tool, resource or prompt, including templated and argument-bound scopes.
func (x *exchange) authorize() *rejection {
	req := policy.Request{Grant: x.grant}
	if c := x.call; c != nil {
		req.Method, req.Name, req.URI, req.Arguments = c.Msg.Method, c.Name, c.URI, c.Arguments
		if c.Msg.Method == "completion/complete" {
			var ok bool
			if req, ok = completionRequest(c, x.grant); !ok {
				return &rejection{status: http.StatusOK, code: codeDenied, decision: audit.Deny, reason: "policy",
					rule: "invalid:completion", message: "denied by gateway policy: completion/complete needs params.ref of type ref/prompt or ref/resource"}
			}
		}
	}
	d := x.rt.policy.Decide(req)
	x.decision = d
	if d.Outcome == policy.Allow && x.call != nil && x.call.Msg.Method == "tools/call" {
		if rej := x.checkPin(); rej != nil {
			return rej
		}
		sd, err := x.rt.g.seq.Decide(x.r.Context(), x.rt.g.store, x.sequenceCall())
		if errors.Is(err, state.ErrGuardChanged) {
			// The revocation list changed since the token was checked:
			// check it against the current list, then decide again.
			if rej := x.checkRevokedWith(true); rej != nil {
				return rej
			}
			sd, err = x.rt.g.seq.Decide(x.r.Context(), x.rt.g.store, x.sequenceCall())
		}
		if err == nil {
			// The update confirmed the list this replica holds is current;
			// if it is newer than the one the token was checked against,
			// check again.
			if rej := x.recheckRevoked(); rej != nil {
				return rej
			}
		}
		if err != nil {
			return &rejection{status: http.StatusServiceUnavailable, code: codeUnavailable, decision: audit.Error,
				reason: "policy_state_unavailable", cause: err,
				message: "the gateway cannot reach its policy state, so the call was not forwarded; try again later"}
		}
		if sd.Outcome != policy.Allow || sd.RuleID != "" {
			x.decision = sd
			d = sd
		}
	}
	return x.rejectionFor(d)
}

// rejectionFor turns a policy decision into the answer to the client, or
// nil when it allows the request.
func (x *exchange) rejectionFor(d policy.Decision) *rejection {
	switch d.Outcome {
	case policy.Allow:
		return nil
	case policy.InsufficientScope:
		scopes := union(x.grant.Granted(), d.Required)
		return &rejection{
			status: http.StatusForbidden, code: codeInsufficientScope, decision: audit.StepUp,
			reason: "insufficient_scope", rule: d.RuleID, required: d.Required,
			message: "insufficient scope: this request needs " + strings.Join(d.Required, " ") +
				"; re-authorize with the scopes in the WWW-Authenticate header" + reasonSuffix(d),
			challenge: authn.Challenge{
				ResourceMetadata: x.rt.metadataURL, Scopes: scopes,
				Error: "insufficient_scope", Description: "this request needs " + strings.Join(d.Required, " "),
			}.String(),
		}
	default:
		status := http.StatusOK // a denied request is a JSON-RPC error the agent can read
		if x.call == nil || x.call.Msg.Kind != jsonrpc.KindRequest {
			status = http.StatusForbidden
		}
		return &rejection{status: status, code: codeDenied, decision: audit.Deny, reason: "policy",
			rule: d.RuleID, message: "denied by gateway policy: " + d.Reason}
	}
}

// reasonSuffix adds a sequence rule's explanation to a step-up message.
func reasonSuffix(d policy.Decision) string {
	if !strings.HasPrefix(d.RuleID, "seq:") || d.Reason == "" {
		return ""
	}
	return " (" + d.Reason + ")"
}

// sequenceCall describes this request to the sequence policy.
func (x *exchange) sequenceCall() policy.Call {
	c := policy.Call{
		Issuer: x.principal.Issuer, Subject: x.principal.Subject, ClientID: x.principal.ClientID,
		Grant: x.grant, Route: x.rt.name, SessionID: x.sessionID, ClientIP: x.ip.String(),
	}
	hc := x.rt.g.cfg.Sequence
	if hc.History.RunIDHeader != "" {
		c.RunID = x.r.Header.Get(hc.History.RunIDHeader)
	}
	if len(hc.RequestHeaders) > 0 {
		c.Headers = make(map[string]string, len(hc.RequestHeaders))
		for _, h := range hc.RequestHeaders {
			if v := x.r.Header.Get(h); v != "" {
				c.Headers[strings.ToLower(h)] = v
			}
		}
	}
	if x.call != nil && x.call.Msg.Method == "tools/call" {
		c.Tool, c.Args, c.Labels = x.call.Name, x.call.Arguments, x.rt.toolLabels(x.call.Name)
		// What the tool's results bring in enters the taint with the call,
		// whatever the result turns out to be (an error page can carry an
		// injection too) and however it reaches the client.
		c.ResultLabels = x.rt.results[x.call.Name]
	}
	return c
}

// checkPin refuses a call to a tool whose definition changed since it was
// pinned, when the route blocks changed tools.
func (x *exchange) checkPin() *rejection {
	rt := x.rt
	if rt.pinMode != toolpin.ModeBlock {
		return nil
	}
	err := toolpin.Decide(rt.pinMode, rt.g.pins.Status(rt.name, x.call.Name), true)
	if err == nil {
		return nil
	}
	if errors.Is(err, toolpin.ErrUnknown) {
		return &rejection{status: http.StatusOK, code: codeDenied, decision: audit.Deny, reason: "policy", rule: "pin:unknown",
			message: "denied by gateway policy: tool " + strconvQuote(x.call.Name) +
				" has not been listed through this gateway yet; call tools/list first"}
	}
	return &rejection{status: http.StatusOK, code: codeDenied, decision: audit.Deny, reason: "policy", rule: "pin:changed",
		message: "denied by gateway policy: the definition of tool " + strconvQuote(x.call.Name) +
			" changed since it was approved; an operator must review and approve it before it can be used"}
}

// completionRequest authorizes completion/complete like fetching the prompt
// or resource it completes, so completions cannot reveal what the caller
// may not use. A reference of any other shape is refused (ok false).
func completionRequest(c *inbound.Call, g policy.Grant) (req policy.Request, ok bool) {
	ref, _ := jsonrpc.Lookup(c.Msg.Params, "ref")
	typ, _ := jsonrpc.Lookup(ref, "type")
	t, _ := jsonrpc.DecodeString(typ)
	req = policy.Request{Grant: g}
	switch t {
	case "ref/prompt":
		name, _ := jsonrpc.Lookup(ref, "name")
		req.Method = "prompts/get"
		req.Name, _ = jsonrpc.DecodeString(name)
	case "ref/resource":
		uri, _ := jsonrpc.Lookup(ref, "uri")
		req.Method = "resources/read"
		req.URI, _ = jsonrpc.DecodeString(uri)
	default:
		return req, false
	}
	if ctxObj, ok := jsonrpc.Lookup(c.Msg.Params, "context"); ok {
		if args, ok := jsonrpc.Lookup(ctxObj, "arguments"); ok && len(args) > 0 && args[0] == '{' {
			req.Arguments = map[string]json.RawMessage{}
			for k, v := range jsonrpc.Members(args) {
				req.Arguments[k] = v
			}
		}
	}
	return req, true
}

// holdSlots takes the session or stream slot a request will occupy, so caps
// hold under concurrency.
func (x *exchange) holdSlots() *rejection {
	g := x.rt.g
	switch {
	case x.call != nil && x.call.Msg.Method == "initialize":
		res, err := g.sessions.Reserve(x.r.Context(), x.principal)
		if err != nil {
			return fromSession(err)
		}
		x.reservation = res
	case x.r.Method == http.MethodGet || (x.call != nil && x.call.Msg.Method == "subscriptions/listen"):
		rel, err := g.streams.Acquire(x.principal)
		if err != nil {
			return fromSession(err)
		}
		x.release = rel
	}
	return nil
}

func (x *exchange) releaseSlots() {
	if x.reservation != nil {
		x.reservation.Release()
	}
	if x.release != nil {
		x.release()
	}
}

// recordDecision writes the allow decision before the call is forwarded. A
// decision that cannot be recorded is not carried out.
func (x *exchange) recordDecision() *rejection {
	ev := x.event(audit.KindDecision)
	ev.Decision, ev.Rule = audit.Allow, x.decision.RuleID
	ev.CredentialMode, ev.CredentialID = x.rt.credMode, x.cred.ID
	ev.Findings = x.auditFindings()
	g := x.rt.g
	defer x.observe(false)
	if err := g.writeAudit(x.r.Context(), ev); err != nil {
		if g.cfg.Audit.OnFailure == "allow" {
			// The operator chose availability over the record: the call
			// goes ahead, and the loss is counted and logged loudly.
			g.auditLost.Add(1)
			g.metrics.AuditRecordsLost.Inc()
			g.log.LogAttrs(x.r.Context(), slog.LevelError, "audit record LOST: forwarding anyway (audit.on_failure: allow)",
				slog.String("request_id", x.id), slog.String("route", x.rt.name), slog.String("error", err.Error()))
			return nil
		}
		return &rejection{status: http.StatusServiceUnavailable, code: codeUnavailable, decision: audit.Error,
			reason: "audit_unavailable", cause: err,
			message: "the gateway cannot record this request, so it was not forwarded; try again later"}
	}
	return nil
}

// event returns an audit record pre-filled with what is known about the
// exchange. The shared fields are computed once: an exchange writes its
// records (decision, outcome) only after they are all known.
func (x *exchange) event(kind audit.Kind) *audit.Event {
	if x.base == nil {
		x.base = &x.evBase
		x.baseEvent(x.base)
	}
	// A sink is done with a record when Write returns, but a decision
	// and an outcome of one exchange are distinct records: each has its
	// own slot; anything else is allocated.
	var ev *audit.Event
	switch {
	case kind == audit.KindDecision && x.evDecision.Kind == "":
		ev = &x.evDecision
	case kind == audit.KindOutcome && x.evOutcome.Kind == "":
		ev = &x.evOutcome
	default:
		ev = new(audit.Event)
	}
	*ev = *x.base
	ev.Time, ev.Kind = x.rt.g.now().UTC(), kind
	return ev
}

func (x *exchange) baseEvent(ev *audit.Event) {
	*ev = audit.Event{
		RequestID: x.id, Route: x.rt.name, Upstream: x.rt.upstream,
		HTTPMethod: x.r.Method, ProtocolVersion: x.version,
	}
	if x.ip.IsValid() {
		ev.RemoteIP = x.ip.String()
	}
	if x.sessionID != "" {
		ev.Session = fingerprint(x.sessionID)
	}
	if id := x.ident; id != nil {
		ev.Issuer, ev.Subject, ev.ClientID, ev.Actor, ev.Token, ev.Scopes =
			id.Issuer, id.Subject, id.ClientID, id.Actor, id.Fingerprint, id.Scopes
	}
	if c := x.call; c != nil {
		ev.Method = c.Msg.Method
		ev.RPCID = c.Msg.ID.String()
		switch c.Msg.Method {
		case "tools/call":
			ev.Tool = c.Name
		case "prompts/get":
			ev.Prompt = c.Name
		}
		if c.Msg.Method == "tools/call" {
			ev.Labels = x.rt.toolLabels(c.Name)
		}
		ev.Resource = c.URI
		if !x.screened {
			// A request refused before (or by) the credential scan: its
			// names may carry what the scan would have removed.
			ev.Tool, ev.Prompt, ev.Resource, ev.RPCID = x.auditSafe(ev.Tool), x.auditSafe(ev.Prompt), x.auditSafe(ev.Resource), x.auditSafe(ev.RPCID)
		}
		ev.Tool, ev.Prompt, ev.Resource, ev.RPCID = capField(ev.Tool), capField(ev.Prompt), capField(ev.Resource), capField(ev.RPCID)
		if c.RawArguments != nil {
			sum := sha256.Sum256(c.RawArguments)
			var digest [2 * sha256.Size]byte
			hex.Encode(digest[:], sum[:])
			ev.ArgsDigest = string(digest[:])
			if x.rt.g.capture != nil {
				ev.Arguments = x.capturedArguments(c.RawArguments)
			}
		}
	}
}

// maxAuditField bounds a client-supplied name in an audit record; a longer
// one keeps its start and the digest of the whole.
const maxAuditField = 512

// capField bounds s for an audit record.
func capField(s string) string {
	if len(s) <= maxAuditField {
		return s
	}
	cut := 256
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	sum := sha256.Sum256([]byte(s))
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes, sha256:" + hex.EncodeToString(sum[:8]) + ")"
}

// fingerprint identifies a session id or token in logs without revealing it.
func fingerprint(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

func union(a, b []string) []string {
	seen := make(map[string]bool, len(a)+len(b))
	var out []string
	for _, s := range append(append([]string(nil), a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func strconvQuote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}
