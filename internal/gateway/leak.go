package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/inbound"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
	"github.com/mcpgate/mcpgate/internal/redact"
	"github.com/mcpgate/mcpgate/internal/upstream"
)

// Where a finding was made, in audit records.
const (
	whereArguments = "arguments"
	whereResult    = "result"
	whereHeaders   = "headers"
	// whereRequestHeaders: the client's request headers forwarded upstream.
	whereRequestHeaders = "request_headers"
)

// newRedactor builds the credential scanner from the configuration.
func newRedactor(c config.Redaction) (*redact.Scanner, error) {
	rc := redact.Config{Actions: map[string]redact.Action{}, MaxScanBytes: int64(c.MaxScanBytes)}
	for name, a := range c.Detectors {
		if a == "off" {
			rc.Disabled = append(rc.Disabled, name)
			continue
		}
		act, err := redact.ParseAction(a)
		if err != nil {
			return nil, fmt.Errorf("redaction.detectors.%s: %w", name, err)
		}
		rc.Actions[name] = act
	}
	for _, p := range c.Patterns {
		act, err := redact.ParseAction(p.Action)
		if err != nil {
			return nil, fmt.Errorf("redaction.patterns %s: %w", p.Name, err)
		}
		rc.Patterns = append(rc.Patterns, redact.Pattern{Name: p.Name, Regex: p.Regex, Action: act})
	}
	s, err := redact.New(rc)
	if err != nil {
		return nil, fmt.Errorf("redaction: %w", err)
	}
	return s, nil
}

// scanner returns the exchange's credential scanner, its live credentials
// (the client's token, the credential attached upstream) prepared once.
func (x *exchange) scanner() *redact.Live {
	if x.scan == nil {
		x.scanState.Init(x.rt.g.redactor, x.live)
		x.scan = &x.scanState
	}
	return x.scan
}

// addLive adds a credential that must never reach the client.
func (x *exchange) addLive(v string) {
	if x.live == nil {
		x.live = x.liveBuf[:0]
	}
	x.live = append(x.live, v)
	if x.scan != nil {
		x.scan.Add(v)
	}
}

// auditSafe returns s with credentials redacted, for audit records of
// requests the scan refused or never saw.
func (x *exchange) auditSafe(s string) string {
	if s == "" {
		return s
	}
	res := x.scanner().ScanString(s)
	switch {
	case res.Blocked:
		return "[REDACTED]"
	case res.Changed:
		return string(res.Out)
	}
	return s
}

// capturedArguments returns the arguments as the audit record keeps them
// (audit.capture_arguments): every detector redacting, whatever its
// configured action, and the live credentials removed.
func (x *exchange) capturedArguments(args []byte) []byte {
	if len(args) > maxCapturedArguments {
		return []byte(`"[not recorded: larger than 64 KiB; see args_digest]"`)
	}
	res, err := x.rt.g.capture.Prepare(x.live).ScanJSON(args)
	if err != nil || res.Blocked {
		return []byte(`"[not recorded: the arguments could not be redacted]"`)
	}
	return res.Out
}

// maxCapturedArguments bounds the arguments an audit record keeps.
const maxCapturedArguments = 64 << 10

// newCaptureRedactor builds the scanner for captured arguments: the
// configured detectors and patterns, all redacting.
func newCaptureRedactor(c config.Redaction) (*redact.Scanner, error) {
	rc := redact.Config{MaxScanBytes: int64(c.MaxScanBytes)}
	for _, p := range c.Patterns {
		rc.Patterns = append(rc.Patterns, redact.Pattern{Name: p.Name, Regex: p.Regex, Action: redact.ActionRedact})
	}
	return redact.New(rc)
}

// findingKey aggregates findings per detector, action and place.
type findingKey struct{ detector, action, where string }

// note records a scan's findings for the exchange's audit records.
func (x *exchange) note(where string, fs []redact.Finding) {
	if len(fs) == 0 {
		return
	}
	if x.findings == nil {
		x.findings = map[findingKey]int{}
	}
	for _, f := range fs {
		x.findings[findingKey{f.Detector, f.Action.String(), where}] += f.Count
		x.rt.g.metrics.Redactions.WithLabelValues(x.rt.name, f.Detector, f.Action.String(), metricsWhere(where)).Add(float64(f.Count))
	}
}

// auditFindings lists the exchange's findings in a stable order.
func (x *exchange) auditFindings() []audit.Finding {
	if len(x.findings) == 0 {
		return nil
	}
	out := make([]audit.Finding, 0, len(x.findings))
	for k, n := range x.findings {
		out = append(out, audit.Finding{Detector: k.detector, Action: k.action, Where: k.where, Count: n})
	}
	slices.SortFunc(out, func(a, b audit.Finding) int {
		return strings.Compare(a.Where+"\x00"+a.Detector+"\x00"+a.Action, b.Where+"\x00"+b.Detector+"\x00"+b.Action)
	})
	return out
}

// blockedBy names the detectors that blocked a scan, for messages.
func blockedBy(fs []redact.Finding) string {
	var names []string
	for _, f := range fs {
		if f.Action == redact.ActionBlock && !slices.Contains(names, f.Detector) {
			names = append(names, f.Detector)
		}
	}
	if len(names) == 0 {
		return "too large to scan"
	}
	return strings.Join(names, ", ")
}

// screenRequest scans what the client sends upstream (tool arguments from
// the model, a client's answers to server requests) for credentials: the
// client's own token is always removed, detectors redact or block. The
// redacted message is parsed again, so policy, audit and the upstream all
// see the same bytes.
func (x *exchange) screenRequest() *rejection {
	if rej := x.screenRequestHeaders(); rej != nil {
		return rej
	}
	if x.body == nil || x.call == nil {
		x.screened = true
		return nil
	}
	res, err := x.scanner().ScanJSON(x.body)
	if err != nil {
		return reject(http.StatusBadRequest, codeInvalidRequest, "unscannable", "the request cannot be scanned for credentials")
	}
	x.note(whereArguments, res.Findings)
	if res.Blocked {
		return x.credentialInRequest(res.Findings)
	}
	x.screened = true
	if !res.Changed {
		return nil
	}
	c, e := inbound.Parse(res.Out, x.rt.g.limits)
	if e != nil {
		return fromInbound(e)
	}
	x.body, x.call = res.Out, c
	return nil
}

// credentialInRequest refuses a request a blocking detector matched.
func (x *exchange) credentialInRequest(fs []redact.Finding) *rejection {
	return &rejection{status: deniedStatus(x), code: codeDenied, decision: audit.Deny, reason: "credential_in_arguments",
		rule: "redact:" + strings.ReplaceAll(blockedBy(fs), ", ", ","),
		message: "denied by gateway policy: the request carries a credential (" + blockedBy(fs) +
			"); credentials must not pass through tool arguments — remove it and retry"}
}

// screenRequestHeaders applies the same scan to the request headers that
// are forwarded (Mcp-Param-*, tracing, User-Agent…): a credential in one
// is redacted, or the request refused when the detector blocks.
// Mcp-Session-Id is exempt: only ids the upstream assigned and mcpgate
// bound pass the session stage.
func (x *exchange) screenRequestHeaders() *rejection {
	for k, vs := range x.r.Header {
		if k == "Mcp-Session-Id" || !x.rt.proxy.Forwards(k) {
			continue
		}
		for i, v := range vs {
			res := x.scanner().ScanString(v)
			x.note(whereRequestHeaders, res.Findings)
			if res.Blocked {
				return x.credentialInRequest(res.Findings)
			}
			if res.Changed {
				vs[i] = string(res.Out)
			}
		}
	}
	return nil
}

// errWithheld fails a response that cannot be relayed safely.
var errWithheld = &upstream.Refusal{Message: "the gateway withheld the upstream's response: it carried a credential, which must not reach the model"}

// screenMessage scans one JSON-RPC message on its way to the client. A
// blocked answer becomes a JSON-RPC error for the same id; a blocked
// notification or server request is dropped (an empty non-nil slice).
func (x *exchange) screenMessage(msg []byte) ([]byte, error) {
	res, err := x.scanner().ScanJSON(msg)
	if err != nil {
		return nil, fmt.Errorf("cannot scan the upstream's message for credentials: %w", err)
	}
	x.note(whereResult, res.Findings)
	if !res.Blocked {
		return res.Out, nil
	}
	m, err := jsonrpc.Decode(msg, jsonrpc.Limits{MaxDepth: x.rt.g.limits.MaxDepth})
	if err != nil || (m.Kind != jsonrpc.KindResult && m.Kind != jsonrpc.KindError) {
		return []byte{}, nil
	}
	return jsonrpc.EncodeError(m.ID, codeDenied, "the gateway withheld this result: it contained a credential ("+
		blockedBy(res.Findings)+"), which must not reach the model", nil), nil
}

// screenRaw scans a body that is neither JSON nor an event stream.
func (x *exchange) screenRaw(body []byte) ([]byte, error) {
	res := x.scanner().ScanText(body)
	x.note(whereResult, res.Findings)
	if res.Blocked {
		return nil, errWithheld
	}
	return res.Out, nil
}

// screenEventField checks an event stream's lines other than data
// (comments, id, event, retry): one that carries a credential is dropped.
func (x *exchange) screenEventField(line []byte) (bool, error) {
	res := x.scanner().ScanText(line)
	x.note(whereResult, res.Findings)
	return !res.Changed && !res.Blocked, nil
}

// screenHeaders removes credentials from the upstream's response headers
// (an upstream that echoes its Authorization header must not leak it).
func (x *exchange) screenHeaders(h http.Header) error {
	for k, vs := range h {
		if res := x.scanner().ScanString(k); res.Changed || res.Blocked {
			x.note(whereHeaders, res.Findings)
			delete(h, k) // a credential in a header name
			continue
		}
		if k == "Mcp-Session-Id" {
			// Checked for live credentials only: a detector rewriting a
			// session id would break the session.
			for _, v := range vs {
				for _, l := range x.live {
					if l != "" && strings.Contains(v, l) {
						return errWithheld
					}
				}
			}
			continue
		}
		for i, v := range vs {
			res := x.scanner().ScanString(v)
			x.note(whereHeaders, res.Findings)
			if res.Blocked {
				return errWithheld
			}
			if res.Changed {
				vs[i] = string(res.Out)
			}
		}
		h[k] = vs
	}
	return nil
}
