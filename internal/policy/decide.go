package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Request is what Decide needs to know about one JSON-RPC request.
type Request struct {
	// Method is the JSON-RPC method. tools/call, prompts/get,
	// resources/read, resources/subscribe and resources/unsubscribe are
	// decided by their rules; any other method needs the route's
	// RequiredScopes only.
	Method string
	// Name is the tool (tools/call) or prompt (prompts/get) name.
	Name string
	// URI is the resource URI (resources/read, subscribe, unsubscribe).
	URI string
	// Arguments are the tools/call or prompts/get arguments, keyed
	// exactly; duplicate and case-variant keys were rejected upstream of
	// this package.
	Arguments map[string]json.RawMessage
	// Grant is the caller's expanded scopes.
	Grant Grant
}

// Outcome is the result of a decision. The zero value is Deny, so that a
// Decision nobody filled in fails closed.
type Outcome uint8

const (
	// Deny refuses the request with a JSON-RPC error; stepping up cannot
	// help.
	Deny Outcome = iota
	// Allow lets the request through.
	Allow
	// InsufficientScope refuses the request with 403 and an
	// insufficient_scope challenge: a token with more scopes would pass.
	InsufficientScope
)

// String returns "deny", "allow" or "insufficient_scope", for logs,
// metrics and audit.
func (o Outcome) String() string {
	switch o {
	case Allow:
		return "allow"
	case InsufficientScope:
		return "insufficient_scope"
	case Deny:
		return "deny"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// Decision is the answer to a request.
type Decision struct {
	// Outcome says what to do.
	Outcome Outcome
	// Required lists every concrete scope the operation needs (the route's
	// and the rule's, templates filled), sorted. It is set for Allow and
	// InsufficientScope, and shared between decisions: do not modify it.
	Required []string
	// Reason tells an agent why a request was refused; "" when allowed.
	// Untrusted values in it are quoted, escaped and truncated.
	Reason string
	// RuleID identifies the deciding rule for audit and metrics: "route",
	// "tool:<name>", "prompt:<name>", "resource:<index>", "default:tool",
	// "default:prompt", "default:resource", or "invalid:tool",
	// "invalid:prompt", "invalid:resource" for a request that names no
	// item or an unsafe URI. It never contains caller-supplied text.
	RuleID string
}

// Sentinel errors for decisions, matched with errors.Is on [Decision.Err].
var (
	ErrDenied            = errors.New("policy: denied")
	ErrInsufficientScope = errors.New("policy: insufficient scope")
)

// DecisionError carries a refusing Decision through error-returning code.
// It unwraps to ErrDenied or ErrInsufficientScope.
type DecisionError struct {
	Decision Decision
}

func (e *DecisionError) Error() string {
	return e.Unwrap().Error() + ": " + e.Decision.Reason
}

func (e *DecisionError) Unwrap() error {
	if e.Decision.Outcome == InsufficientScope {
		return ErrInsufficientScope
	}
	return ErrDenied
}

// Err returns nil if d allows the request, and a *DecisionError otherwise.
func (d Decision) Err() error {
	if d.Outcome == Allow {
		return nil
	}
	return &DecisionError{Decision: d}
}

// Decide decides req. It never returns Allow for a request it cannot fully
// check.
func (r *Route) Decide(req Request) Decision {
	switch req.Method {
	case "tools/call":
		return r.decideNamed(r.tools, r.defTool, "tool", req)
	case "prompts/get":
		return r.decideNamed(r.prompts, r.defPrompt, "prompt", req)
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		return r.decideResource(req)
	}
	return r.route.check(req.Grant, r.route.static, item{})
}

func (r *Route) decideNamed(rules map[string]*compiledRule, def *compiledRule, kind string, req Request) Decision {
	if req.Name == "" {
		return Decision{Outcome: Deny, RuleID: "invalid:" + kind, Reason: fmt.Sprintf("%s name is missing", kind)}
	}
	label := item{kind, req.Name}
	c, ok := rules[req.Name]
	if !ok {
		c = def
	}
	if c.deny {
		return c.denied(label)
	}
	if len(c.args) == 0 {
		return c.check(req.Grant, c.static, label)
	}
	var buf [4]string
	vals := buf[:0]
	for _, a := range c.args {
		raw, present := req.Arguments[a.name]
		if !present {
			return Decision{Outcome: Deny, RuleID: c.id, Reason: label.String() + ": " + a.reason("argument", valueMissing, "")}
		}
		v, isString := jsonString(raw)
		if !isString {
			return Decision{Outcome: Deny, RuleID: c.id, Reason: label.String() + ": " + a.reason("argument", valueNotString, "")}
		}
		if p := a.check(v); p != valueOK {
			return Decision{Outcome: Deny, RuleID: c.id, Reason: label.String() + ": " + a.reason("argument", p, v)}
		}
		vals = append(vals, v)
	}
	return c.check(req.Grant, c.required(vals), label)
}

func (r *Route) decideResource(req Request) Decision {
	if req.URI == "" {
		return Decision{Outcome: Deny, RuleID: "invalid:resource", Reason: "resource URI is missing"}
	}
	label := item{"resource", req.URI}
	if why := uriProblem(req.URI); why != "" {
		return Decision{Outcome: Deny, RuleID: "invalid:resource", Reason: label.String() + " is refused: it " + why}
	}
	var buf [8]string
	c, vals := r.matchResource(req.URI, buf[:])
	if c.deny {
		return c.denied(label)
	}
	for i, a := range c.args {
		if p := a.check(vals[i]); p != valueOK {
			return Decision{Outcome: Deny, RuleID: c.id, Reason: label.String() + ": " + a.reason("URI variable", p, vals[i])}
		}
	}
	return c.check(req.Grant, c.required(vals), label)
}

// matchResource returns the first rule whose shape matches safe URI u, or
// the default, with the rule's variable values stored in buf (or a new
// slice if buf is too short).
func (r *Route) matchResource(u string, buf []string) (*compiledRule, []string) {
	if len(buf) < r.maxVars {
		buf = make([]string, r.maxVars)
	}
	for _, c := range r.resources {
		vals := buf[:len(c.uri.vars)]
		if c.uri.match(u, vals) {
			return c, vals
		}
	}
	return r.defRes, nil
}

// required returns the concrete scopes for validated values.
func (c *compiledRule) required(vals []string) []string {
	if len(c.tmpls) == 0 {
		return c.static
	}
	req := make([]string, 0, len(c.static)+len(c.tmpls))
	req = append(req, c.static...)
	for _, t := range c.tmpls {
		req = append(req, t.expand(vals))
	}
	slices.Sort(req)
	return slices.Clip(slices.Compact(req))
}

// denied is the decision for a listed Deny rule or a denying default.
func (c *compiledRule) denied(label item) Decision {
	if strings.HasPrefix(c.id, "default:") {
		return Decision{Outcome: Deny, RuleID: c.id, Reason: label.String() + " is not allowed by this gateway's policy"}
	}
	return Decision{Outcome: Deny, RuleID: c.id, Reason: label.String() + " is not available through this gateway"}
}

// check decides by scopes alone: Allow if g holds every required scope,
// else InsufficientScope listing them all.
func (c *compiledRule) check(g Grant, required []string, label item) Decision {
	var missing []string
	for _, s := range required {
		if !g.Has(s) {
			missing = append(missing, s)
		}
	}
	if missing == nil {
		return Decision{Outcome: Allow, Required: required, RuleID: c.id}
	}
	return Decision{
		Outcome:  InsufficientScope,
		Required: required,
		RuleID:   c.id,
		Reason:   fmt.Sprintf("%s requires scopes %q (missing %q)", label.String(), strings.Join(required, " "), strings.Join(missing, " ")),
	}
}

// item names what a decision is about, for Reasons; formatted only when a
// request is refused.
type item struct {
	kind string // "tool", "prompt", "resource", or "" for the route
	name string // untrusted: quoted and truncated when formatted
}

func (it item) String() string {
	if it.kind == "" {
		return "this route"
	}
	return it.kind + " " + quote(it.name)
}
