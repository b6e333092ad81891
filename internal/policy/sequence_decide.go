package policy

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/mcpgate/mcpgate/internal/state"
)

// Call is what the sequence policy knows about one call (or, for
// [Sequence.ListFilter], one list request: Tool, Args and Labels unset).
type Call struct {
	// Issuer, Subject and ClientID identify the principal; Issuer and
	// Subject are required.
	Issuer, Subject, ClientID string
	// Grant is the caller's expanded scopes.
	Grant Grant
	// Route is the route name; Tool the tool called.
	Route, Tool string
	// Args are the call's arguments, keyed exactly (duplicate and
	// case-variant keys were rejected before this package).
	Args map[string]json.RawMessage
	// Labels are the tool's labels, from configuration and annotations.
	Labels []string
	// ResultLabels are labels the call's result brings in (the tool's
	// configured result_labels): they enter the taint with the call, in the
	// same store update, whatever the result turns out to be. They do not
	// take part in matching this call.
	ResultLabels []string
	// SessionID is the Mcp-Session-Id ("" if none).
	SessionID string
	// RunID comes from the configured run-id header ("" if none); it
	// narrows the history scope.
	RunID string
	// ClientIP is the caller's address as the gateway determined it.
	ClientIP string
	// Headers are request headers set by a trusted proxy (device, risk
	// signals), selected by configuration.
	Headers map[string]string
}

// errRefused makes a store Update write nothing after a refusal.
var errRefused = errors.New("policy: sequence: refused")

// Key derivation. The parts are hashed exactly as state.NewKey does, but
// without allocating.
const (
	keyHistory = "mcpgate/seq/history/v1"
	keyBudget  = "mcpgate/seq/budget/v1"
)

func seqKey(parts ...string) state.Key {
	var buf [256]byte
	b := buf[:0]
	for _, p := range parts {
		b = binary.LittleEndian.AppendUint64(b, uint64(len(p)))
		b = append(b, p...)
	}
	return state.Key(sha256.Sum256(b))
}

// HistoryKey returns the key of the history c belongs to (see
// [HistoryConfig]). The principal is part of every key: state never
// crosses principals.
func (s *Sequence) HistoryKey(c Call) state.Key {
	var buf [8]string
	p := append(buf[:0], keyHistory)
	switch {
	case s.scope == HistorySubject:
		p = append(p, HistorySubject, c.Issuer, c.Subject)
	case s.scope == HistorySession && c.SessionID != "":
		p = append(p, HistorySession, c.Issuer, c.Subject, c.ClientID, c.SessionID)
	default:
		p = append(p, HistoryPrincipal, c.Issuer, c.Subject, c.ClientID)
	}
	if c.RunID != "" {
		p = append(p, "run", c.RunID)
	}
	return seqKey(p...)
}

// budgetKey returns the counter key of budget rule r for c.
func budgetKey(r *seqRule, c *Call, hk state.Key) state.Key {
	switch r.per {
	case perSubject:
		return seqKey(keyBudget, r.tag, PerSubject, c.Issuer, c.Subject)
	case perClient:
		return seqKey(keyBudget, r.tag, PerClient, c.Issuer, c.ClientID)
	}
	return seqKey(keyBudget, r.tag, PerSession, string(hk[:]))
}

// orderProbe is what one call means for one order rule.
type orderProbe struct {
	onCall  bool      // the call is constrained by the rule
	onOther bool      // the call matches After / NeverAfter (recorded)
	bad     string    // a same_arguments argument missing or not comparable
	digest  digestHex // of the same_arguments values
}

// value is what is stored in History.Seen for the call.
func (p *orderProbe) value(r *seqRule) string {
	if len(r.same) == 0 {
		return "*"
	}
	return string(p.digest[:])
}

// seenIn reports whether list (History.Seen of r) holds the call's value,
// without allocating.
func (p *orderProbe) seenIn(list []string, r *seqRule) bool {
	want := "*"
	for _, v := range list {
		if len(r.same) > 0 && v == string(p.digest[:]) || (len(r.same) == 0 || r.never) && v == want {
			return true
		}
	}
	return false
}

// decideRun is one Decide.
type decideRun struct {
	s      *Sequence
	call   Call
	c      *Call                                        // &call
	fn     func(*state.History, []*state.Counter) error // update, bound once
	now    time.Time
	ev     evalCtx
	orders []orderProbe // per s.orders
	cidx   []int        // per s.budgets: index into the counters, or -1
	ckeys  []state.Key
	dec    Decision

	orderBuf [8]orderProbe
	cidxBuf  [8]int
	ckeyBuf  [4]state.Key
}

// Decide decides c against the call-phase rules and the history of its
// run; if it is allowed, it records the call in the same store update:
// the history entry, its labels into the taint, the per-tool count, the
// argument digests order rules compare, and the budget events. A refused
// call records nothing. Concurrent calls of one run are serialised by the
// store. An error means the store failed: the caller must refuse the call
// (503), and the returned Decision denies.
func (s *Sequence) Decide(ctx context.Context, st state.Store, c Call) (Decision, error) {
	if c.Issuer == "" || c.Subject == "" {
		return Decision{Outcome: Deny, RuleID: "seq:identity", Reason: "the call has no authenticated principal to keep a history for"}, nil
	}
	if why := callProblem(&c); why != "" {
		return Decision{Outcome: Deny, RuleID: "seq:invalid", Reason: why}, nil
	}
	d := s.runs.Get().(*decideRun)
	defer s.putRun(d)
	d.s, d.call, d.now = s, c, s.now()
	d.ev = evalCtx{c: d.c, tool: c.Tool, labels: c.Labels, now: types.Timestamp{Time: d.now}, found: d.ev.found[:0], names: s.names, refs: d.ev.refs[:0], scans: s.scans}
	hk := s.HistoryKey(c)
	d.prepare(hk)
	err := st.Update(ctx, hk, d.ckeys, d.fn)
	switch {
	case err == nil:
		return Decision{Outcome: Allow}, nil
	case errors.Is(err, errRefused):
		return d.dec, nil
	}
	return Decision{Outcome: Deny, RuleID: "seq:state", Reason: "the gateway cannot check this call's history right now; retry later"},
		fmt.Errorf("policy: sequence state: %w", err)
}

// callProblem returns why c cannot be recorded in a history, or "". The
// bounds keep every recorded entry within what CEL cost estimates assume.
func callProblem(c *Call) string {
	switch {
	case c.Tool == "" || len(c.Tool) > celMaxString:
		return fmt.Sprintf("the tool name must be 1 to %d bytes long", celMaxString)
	case len(c.Route) > celMaxString:
		return "the route name is too long"
	case len(c.Labels) > celMaxLabels || len(c.ResultLabels) > celMaxLabels:
		return fmt.Sprintf("tool %s has more than %d labels (a gateway configuration problem)", quote(c.Tool), celMaxLabels)
	}
	for _, l := range append(slices.Clip(c.Labels), c.ResultLabels...) {
		if !ValidLabel(l) {
			return fmt.Sprintf("tool %s has an invalid label %s (a gateway configuration problem)", quote(c.Tool), quote(l))
		}
	}
	return ""
}

// newRun allocates a decideRun for the Sequence's pool.
func newRun() any {
	d := &decideRun{}
	d.c = &d.call
	d.fn = d.update
	return d
}

// putRun clears d of the request's data and returns it to the pool.
func (s *Sequence) putRun(d *decideRun) {
	clear(d.ev.refs[:cap(d.ev.refs)]) // no history kept alive by a pooled run
	d.call, d.ev, d.dec = Call{}, evalCtx{found: d.ev.found[:0], refs: d.ev.refs[:0]}, Decision{}
	d.orders, d.cidx, d.ckeys = nil, nil, nil
	s.runs.Put(d)
}

// prepare computes what does not depend on the history: which rules the
// call matches, argument digests and the budget counters to load.
func (d *decideRun) prepare(hk state.Key) {
	c := d.c
	d.orders = d.orderBuf[:0]
	if len(d.s.orders) > len(d.orderBuf) {
		d.orders = make([]orderProbe, 0, len(d.s.orders))
	}
	for _, r := range d.s.orders {
		p := orderProbe{
			onCall:  !r.list && r.on.match(c.Route, c.Tool, c.Labels),
			onOther: r.other.match(c.Route, c.Tool, c.Labels),
		}
		if len(r.same) > 0 && (p.onCall || p.onOther) {
			mode := argsExact // a match allows the call
			if r.never {
				mode = argsLoose // a match refuses it
			}
			p.digest, p.bad = argsDigest(c.Args, r.same, mode)
		}
		d.orders = append(d.orders, p)
	}
	d.cidx = d.cidxBuf[:0]
	if len(d.s.budgets) > len(d.cidxBuf) {
		d.cidx = make([]int, 0, len(d.s.budgets))
	}
	d.ckeys = d.ckeyBuf[:0]
	for _, r := range d.s.budgets {
		i := -1
		if r.on.match(c.Route, c.Tool, c.Labels) {
			i = len(d.ckeys)
			d.ckeys = append(d.ckeys, budgetKey(r, c, hk))
		}
		d.cidx = append(d.cidx, i)
	}
}

// update is the store transaction: decide, then record only if allowed.
func (d *decideRun) update(h *state.History, cs []*state.Counter) error {
	d.ev.hist, d.ev.within, d.ev.found = h, 0, d.ev.found[:0] // a store may retry with another history
	d.dec = d.evaluate(h, cs)
	if d.dec.Outcome != Allow {
		return errRefused
	}
	d.record(h, cs)
	return nil
}

// evaluate decides without modifying anything: the first firing deny
// rule (or rule that cannot be evaluated) decides; otherwise the firing
// step_up rules together ask for their scopes.
func (d *decideRun) evaluate(h *state.History, cs []*state.Counter) Decision {
	var first *seqRule
	var scopes []string
	for _, r := range d.s.call {
		if r.stepUp && d.c.Grant.Has(r.scope) {
			continue
		}
		fires, err := d.check(r, h, cs)
		if err != nil {
			return Decision{Outcome: Deny, RuleID: r.decID, Reason: d.errReason(r, err)}
		}
		if !fires {
			continue
		}
		if !r.stepUp {
			return Decision{Outcome: Deny, RuleID: r.decID, Reason: d.reason(r, cs, nil)}
		}
		if first == nil {
			first = r
		}
		scopes = append(scopes, r.scope)
	}
	if first == nil {
		return Decision{Outcome: Allow}
	}
	scopes = sortedUnique(scopes)
	return Decision{Outcome: InsufficientScope, Required: scopes, RuleID: first.decID, Reason: d.reason(first, cs, scopes)}
}

// errArgument reports a same_arguments argument that cannot be compared.
type errArgument struct{ name string }

func (e errArgument) Error() string {
	return "argument " + quote(e.name) + " is missing or not a comparable JSON value"
}

// check reports whether call-phase rule r fires.
func (d *decideRun) check(r *seqRule, h *state.History, cs []*state.Counter) (bool, error) {
	c := d.c
	switch r.kind {
	case kindFlow:
		return flowFires(r, h.Taint, c.Route, c.Tool, c.Labels), nil
	case kindOrder:
		p := &d.orders[r.idx]
		if !p.onCall {
			return false, nil
		}
		if p.bad != "" {
			return false, errArgument{p.bad}
		}
		return p.seenIn(h.Seen[r.seenKey], r) == r.never, nil
	case kindBudget:
		i := d.cidx[r.idx]
		return i >= 0 && inWindow(cs[i], d.now, r.window) >= r.max, nil
	case kindCEL:
		return d.ev.eval(r.prg)
	}
	return false, fmt.Errorf("unknown rule kind %d", r.kind)
}

// flowFires reports whether flow rule r fires for a call given the taint.
func flowFires(r *seqRule, taint []string, route, tool string, labels []string) bool {
	if !r.to.match(route, tool, labels) {
		return false
	}
	for _, l := range r.taint {
		if !slices.Contains(taint, l) {
			return false
		}
	}
	return true
}

// inWindow counts the events of c within window before now: an event
// exactly window old no longer counts. c.Times is sorted (record keeps it
// so), which makes this O(log n).
func inWindow(c *state.Counter, now time.Time, window time.Duration) int {
	cut := now.Add(-window)
	i, _ := slices.BinarySearchFunc(c.Times, cut, func(t, cut time.Time) int {
		if t.After(cut) {
			return 1
		}
		return -1
	})
	return len(c.Times) - i
}

// record adds an allowed call to the run's state.
func (d *decideRun) record(h *state.History, cs []*state.Counter) {
	c := d.c
	names := d.s.names
	h.Entries = append(h.Entries, state.Entry{At: d.now, Route: names.intern(c.Route), Tool: names.intern(c.Tool), Labels: names.labels(c.Labels)})
	h.AddTaint(c.Labels...)
	h.AddTaint(c.ResultLabels...)
	if h.Counts == nil {
		h.Counts = map[string]int{}
	}
	if k := c.Route + "/" + c.Tool; len(h.Counts) < maxCounts || h.Counts[k] > 0 {
		h.Counts[k]++ // bounded: beyond maxCounts distinct tools, new ones are not counted
	}
	for i, r := range d.s.orders {
		p := &d.orders[i]
		if !p.onOther {
			continue
		}
		if h.Seen == nil {
			h.Seen = map[string][]string{}
		}
		switch {
		case r.never && (p.bad != "" || len(h.Seen[r.seenKey]) >= maxSeen):
			// A never_after call whose value cannot be told (the argument
			// is missing: the upstream uses its default), or one more
			// than can be remembered, forbids every value: forgetting
			// must make the rule stricter, never weaker.
			h.Seen[r.seenKey] = []string{"*"}
		case p.bad != "":
			// An "after" call without the argument satisfies nothing.
		default:
			h.Seen[r.seenKey] = touch(h.Seen[r.seenKey], p.value(r))
		}
	}
	if len(h.Seen) > len(d.s.orders) {
		for k := range h.Seen {
			if !d.s.seenKeys[k] {
				delete(h.Seen, k) // state of a rule no longer configured
			}
		}
	}
	for i, r := range d.s.budgets {
		j := d.cidx[i]
		if j < 0 {
			continue
		}
		ctr := cs[j]
		ctr.Prune(d.now, r.window)
		// Times stay sorted and only ever grow at the end (a shared store
		// relies on it): an event is recorded at the newest time already
		// there when the clock stepped back, or another replica's clock is
		// ahead — it then counts a little longer, never less.
		at := d.now
		if n := len(ctr.Times); n > 0 && ctr.Times[n-1].After(at) {
			at = ctr.Times[n-1]
		}
		ctr.Times = append(ctr.Times, at)
		if n := len(ctr.Times) - r.max; n > 0 {
			ctr.Times = ctr.Times[n:] // only the newest max events matter
		}
	}
}

// touch moves v to the end of list (most recent), appending it if absent.
// maxCounts bounds the distinct tools whose calls a run counts.
const maxCounts = 4096

// maxSeen bounds the values an order rule remembers per run; an "after"
// rule forgets the oldest (stricter), a never_after rule forbids every value
// from then on (stricter too).
const maxSeen = 256

func touch(list []string, v string) []string {
	if len(list) >= maxSeen {
		list = slices.Delete(list, 0, len(list)-maxSeen+1)
	}
	if i := slices.Index(list, v); i >= 0 {
		if i == len(list)-1 {
			return list
		}
		list = slices.Delete(list, i, i+1)
	}
	return append(list, v)
}
