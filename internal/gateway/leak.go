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
		x.scan = x.rt.g.redactor.Prepare(x.live)
	}
	return x.scan
}

// addLive adds a credential that must never reach the client.
func (x *exchange) addLive(v string) {
	x.live = append(x.live, v)
	if x.scan != nil {
		x.scan.Add(v)
	}
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
	if x.body == nil || x.call == nil {
		return nil
	}
	res, err := x.scanner().ScanJSON(x.body)
	if err != nil {
		return reject(http.StatusBadRequest, codeInvalidRequest, "unscannable", "the request cannot be scanned for credentials: "+err.Error())
	}
	x.note(whereArguments, res.Findings)
	if res.Blocked {
		status := http.StatusOK
		if x.call.Msg.Kind != jsonrpc.KindRequest {
			status = http.StatusForbidden
		}
		return &rejection{status: status, code: codeDenied, decision: audit.Deny, reason: "credential_in_arguments",
			rule: "redact:" + strings.ReplaceAll(blockedBy(res.Findings), ", ", ","),
			message: "denied by gateway policy: the request carries a credential (" + blockedBy(res.Findings) +
				"); credentials must not pass through tool arguments — remove it and retry"}
	}
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

// screenHeaders removes credentials from the upstream's response headers
// (an upstream that echoes its Authorization header must not leak it).
func (x *exchange) screenHeaders(h http.Header) error {
	for k, vs := range h {
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
			res := x.scanner().ScanText([]byte(v))
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
