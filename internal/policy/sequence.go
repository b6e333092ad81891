package policy

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// SequenceConfig is the sequence-aware policy shared by every route: rules
// that decide a call with what the agent's run has done so far. The zero
// value has no rule and keeps histories per principal.
type SequenceConfig struct {
	// History says which calls share a history. Default: per principal.
	History HistoryConfig
	// Rules are evaluated in order. Default: none.
	Rules []RuleConfig

	interpretOnly bool // tests: no native history scans
}

// History scopes ([HistoryConfig.Scope]).
const (
	HistoryPrincipal = "principal"
	HistorySubject   = "subject"
	HistorySession   = "session"
)

// HistoryConfig says which calls form one run.
type HistoryConfig struct {
	// Scope is "principal" (issuer + subject + client_id, across every
	// route and MCP session), "subject" (issuer + subject, across clients)
	// or "session" (per Mcp-Session-Id, within the principal; a request
	// without one, e.g. on protocol 2026-07-28, uses the principal's
	// history). A non-empty [Call.RunID] narrows any scope; it never
	// replaces the principal. Histories end after the store's inactivity
	// timeout. Default (""): "principal".
	Scope string
}

// Rule phases and actions ([RuleConfig.Phase], [RuleConfig.Action]).
const (
	PhaseCall    = "call"
	PhaseList    = "list"
	ActionDeny   = "deny"
	ActionStepUp = "step_up"
)

// Budget partitions ([BudgetRule.Per]).
const (
	PerSession = "session"
	PerSubject = "subject"
	PerClient  = "client"
)

// RuleConfig is one sequence rule. Exactly one of Flow, Order, Budget and
// When is set.
type RuleConfig struct {
	// ID names the rule in decisions ("seq:<id>"), audit and metrics:
	// 1 to 64 characters from [a-z0-9_.-], unique. Required.
	ID string
	// Description is for people (docs, CLI); it also explains a CEL rule
	// in the generated message. Default: "".
	Description string
	// Phase is "call" (decides tools/call) or "list" (hides tools from
	// tools/list). Default: "call".
	Phase string
	// Action is "deny" (a JSON-RPC error) or "step_up" (403
	// insufficient_scope naming Scope). In the list phase a firing rule
	// hides the tool whatever its action. Default: "deny".
	Action string
	// Scope unlocks a step_up rule: a caller holding it (after hierarchy
	// expansion) is not stopped by the rule. Required for step_up, not
	// allowed for deny.
	Scope string
	// Message replaces the generated agent-facing reason. Write what is not
	// allowed, why, and what to do instead. Default: generated from the
	// rule.
	Message string

	// Flow fires when the run's taint holds every listed label and the
	// call matches To.
	Flow *FlowRule
	// Order constrains the order of calls.
	Order *OrderRule
	// Budget limits matching calls per sliding window.
	Budget *BudgetRule
	// When is a CEL expression of type bool; the rule fires when it is
	// true. See the package documentation for its variables.
	When string
}

// Matcher selects calls. Every non-empty field must match; at least one
// must be set.
type Matcher struct {
	// Routes are route names, compared exactly. Default: any route.
	Routes []string
	// Tools are tool names or path.Match globs ("delete_*"; '*' does not
	// match '/'). Default: any tool.
	Tools []string
	// Labels match a tool carrying any of them. Default: any labels.
	Labels []string
}

// FlowRule fires when the taint of the run (before this call) holds every
// label in Taint and the call matches To. The "lethal trifecta":
// Taint [untrusted_input, private_data], To {Labels: [egress]}.
type FlowRule struct {
	// Taint lists labels that must all have been acquired. Required.
	Taint []string
	// To selects the calls refused after them. Required.
	To Matcher
}

// OrderRule constrains a call matching Call by the earlier allowed calls of
// the run. Exactly one of After and NeverAfter is set.
type OrderRule struct {
	// Call selects the calls the rule constrains. Required.
	Call Matcher
	// After: the rule fires unless an earlier allowed call matched After.
	After *Matcher
	// SameArguments names arguments that the earlier call (matching After
	// or NeverAfter) and this call must both carry with equal decoded JSON
	// values. A constrained call without one of them is refused. Call
	// phase only. Default: none (any earlier matching call counts).
	SameArguments []string
	// NeverAfter: the rule fires if an earlier allowed call matched it.
	NeverAfter *Matcher
}

// BudgetRule fires when Max matching calls were allowed within the sliding
// Window: the call that would exceed the budget is refused.
type BudgetRule struct {
	// Match selects the calls counted and limited. Required.
	Match Matcher
	// Max is the number of calls allowed per Window; at least 1.
	Max int
	// Window is the sliding window; an event exactly Window old no longer
	// counts. Positive; keep it within the store's idle timeout, which
	// forgets an idle budget. Required.
	Window time.Duration
	// Per is "session" (the history key), "subject" (the user, across
	// clients and runs) or "client" (the OAuth client, across its users).
	// Default: "session".
	Per string
}

type ruleKind uint8

const (
	kindFlow ruleKind = iota + 1
	kindOrder
	kindBudget
	kindCEL
)

type budgetPer uint8

const (
	perSession budgetPer = iota
	perSubject
	perClient
)

// Sequence is a compiled [SequenceConfig]. It is immutable and safe for
// concurrent use.
type Sequence struct {
	scope string
	now   func() time.Time
	cfgs  []RuleConfig // as configured, defaults filled in

	call     []*seqRule      // call-phase rules, in order
	list     []*seqRule      // list-phase rules, in order
	orders   []*seqRule      // order rules of both phases (recorded on allow)
	budgets  []*seqRule      // budget rules of both phases (counted on allow)
	listNeed celNeeds        // the session fields list-phase CEL rules read
	seenKeys map[string]bool // the History.Seen keys of s.orders
	runs     sync.Pool       // of *decideRun, reused across Decide calls
	names    *nameTable      // names as CEL values, for history scans
	scans    []histScan      // native history scans, by index
}

// seqRule is one compiled rule.
type seqRule struct {
	id      string // RuleConfig.ID
	decID   string // "seq:" + id
	kind    ruleKind
	idx     int // index in Sequence.orders or Sequence.budgets
	list    bool
	stepUp  bool
	scope   string // step_up unlock scope
	message string // custom Reason, or ""
	desc    string // Description

	taint []string // flow
	to    *matcher // flow

	on      *matcher // order: Call; budget: Match
	other   *matcher // order: After or NeverAfter
	never   bool     // order: NeverAfter
	same    []string // order: SameArguments
	seenKey string   // order: state.History.Seen key

	max    int           // budget
	window time.Duration // budget
	per    budgetPer     // budget
	tag    string        // budget: counter key part (id and matcher fingerprint)

	prg *celProgram // CEL
}

// CompileSequence validates cfg and compiles it. It reports every problem
// at once, joined, each naming the rule and the field. now is the clock
// (nil: time.Now).
func CompileSequence(cfg SequenceConfig, now func() time.Time) (*Sequence, error) {
	if now == nil {
		now = time.Now
	}
	s := &Sequence{now: now, scope: cfg.History.Scope, seenKeys: map[string]bool{}, runs: sync.Pool{New: newRun}, names: &nameTable{}}
	var errs []error
	switch cfg.History.Scope {
	case "":
		s.scope = HistoryPrincipal
	case HistoryPrincipal, HistorySubject, HistorySession:
	default:
		errs = append(errs, fmt.Errorf("history.scope: %s is not one of principal, subject, session", quote(cfg.History.Scope)))
	}
	envs, err := newCELEnvs()
	if err != nil {
		return nil, fmt.Errorf("policy: cel environment: %w", err)
	}
	envs.interpretOnly = cfg.interpretOnly
	ids := map[string]bool{}
	for i, rc := range cfg.Rules {
		where := fmt.Sprintf("rules[%d]", i)
		if validRuleID(rc.ID) {
			where = fmt.Sprintf("rule %q", rc.ID)
			if ids[rc.ID] {
				errs = append(errs, fmt.Errorf("%s: id: duplicate", where))
			}
			ids[rc.ID] = true
		} else {
			errs = append(errs, fmt.Errorf("%s: id: %s must be 1 to 64 characters from [a-z0-9_.-]", where, quote(rc.ID)))
		}
		r, rerrs := compileSeqRule(rc, envs)
		for _, e := range rerrs {
			errs = append(errs, fmt.Errorf("%s: %w", where, e))
		}
		if len(rerrs) > 0 {
			continue
		}
		s.cfgs = append(s.cfgs, normalized(rc))
		if r.list {
			s.list = append(s.list, r)
		} else {
			s.call = append(s.call, r)
		}
		switch r.kind {
		case kindOrder:
			r.idx = len(s.orders)
			s.orders = append(s.orders, r)
			s.seenKeys[r.seenKey] = true
		case kindBudget:
			r.idx = len(s.budgets)
			s.budgets = append(s.budgets, r)
		case kindCEL:
			if r.list {
				s.listNeed |= envs.needs(rc.When)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.scans = envs.scans
	return s, nil
}

// Rules returns the rules as configured, with the defaults of Phase,
// Action and Budget.Per filled in.
func (s *Sequence) Rules() []RuleConfig {
	out := make([]RuleConfig, len(s.cfgs))
	for i, rc := range s.cfgs {
		out[i] = normalized(rc)
	}
	return out
}

// normalized returns a deep copy of rc with defaults filled in.
func normalized(rc RuleConfig) RuleConfig {
	if rc.Phase == "" {
		rc.Phase = PhaseCall
	}
	if rc.Action == "" {
		rc.Action = ActionDeny
	}
	cm := func(m Matcher) Matcher {
		return Matcher{Routes: slices.Clone(m.Routes), Tools: slices.Clone(m.Tools), Labels: slices.Clone(m.Labels)}
	}
	cmp := func(m *Matcher) *Matcher {
		if m == nil {
			return nil
		}
		c := cm(*m)
		return &c
	}
	if f := rc.Flow; f != nil {
		rc.Flow = &FlowRule{Taint: slices.Clone(f.Taint), To: cm(f.To)}
	}
	if o := rc.Order; o != nil {
		rc.Order = &OrderRule{Call: cm(o.Call), After: cmp(o.After), SameArguments: slices.Clone(o.SameArguments), NeverAfter: cmp(o.NeverAfter)}
	}
	if b := rc.Budget; b != nil {
		nb := *b
		nb.Match = cm(b.Match)
		if nb.Per == "" {
			nb.Per = PerSession
		}
		rc.Budget = &nb
	}
	return rc
}
