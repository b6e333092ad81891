package policy

import (
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// CELCostLimit bounds the cost of one evaluation of a rule's When
// expression, in CEL cost units (about one per value visited, compared or
// called; string operations count a tenth per byte; a unit is about 10 ns
// of CPU). A scan of the whole history with a few tests per entry, label
// membership included (about 25–35 per entry, 35,000 for 1000 calls),
// fits; a nested scan of a long history does not.
//
// When a rule loads, its worst-case cost is estimated assuming the bounds
// below. A rule whose estimate fits runs without run-time cost accounting
// whenever the evaluation's inputs are within those bounds; any other rule,
// or input, runs with the limit enforced at run time, and a rule that
// exceeds it denies.
const CELCostLimit = 50_000

// Bounds of the CEL inputs assumed by the cost estimate. Those marked
// "enforced" always hold; the others are checked before an evaluation
// (see evalCtx.withinBounds).
const (
	celMaxHistory = 1000 // session.history: the newest calls (enforced)
	celMaxLabels  = 16   // labels of one tool (enforced for recorded calls)
	celMaxTaint   = 256
	celMaxCounts  = 1024
	celMaxScopes  = 256
	celMaxHeaders = 64
	celMaxString  = 1024 // any string but an argument (tool names: enforced)
)

// celProgram is a compiled When expression.
type celProgram struct {
	tracked  cel.Program // with the run-time cost limit
	fast     cel.Program // without; nil unless the estimate fits the limit
	estimate cost.Estimate
}

// newCELProgram plans a checked expression. A rule reading call.args is
// always accounted at run time: arguments have no size bound, and the
// estimator cannot see the cost of functions on their dynamic values.
func newCELProgram(env *cel.Env, a *cel.Ast, readsArgs bool) (*celProgram, error) {
	p := &celProgram{}
	var err error
	if p.tracked, err = env.Program(a, cel.CostLimit(CELCostLimit), cel.CostTracking(nativeCosts{}), cel.EvalOptions(cel.OptOptimize)); err != nil {
		return nil, err
	}
	if p.estimate, err = env.EstimateCost(a, celSizes{}); err == nil && p.estimate.Max <= CELCostLimit && !readsArgs {
		if p.fast, err = env.Program(a, cel.EvalOptions(cel.OptOptimize)); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// celSizes gives the cost estimator the bounds above. Arguments are
// unbounded: a rule iterating over them is always accounted at run time.
type celSizes struct{}

func (celSizes) EstimateCallCost(fn, _ string, _ *cost.AstNode, _ []cost.AstNode) *cost.CallEstimate {
	switch fn {
	case "firstCall", "lastCall", "firstLabelled", "lastLabelled":
		// A native scan of the history: about a tenth of a unit per entry.
		return &cost.CallEstimate{CostEstimate: cost.Estimate{Min: 1, Max: celMaxHistory / 10}}
	case scanFunction, countFunction:
		// A native predicate per entry: a few string comparisons.
		return &cost.CallEstimate{CostEstimate: cost.Estimate{Min: 1, Max: celMaxHistory}}
	}
	return nil
}

func (celSizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	path := n.Path()
	if len(path) == 0 || len(path) > 1 && path[0] == "call" && path[1] == "args" {
		return nil
	}
	size := func(m uint64) *cost.SizeEstimate { return &cost.SizeEstimate{Min: 0, Max: m} }
	switch strings.Join(path, ".") {
	case "session.history":
		return size(celMaxHistory)
	case "session.history.@items.labels", "call.labels":
		return size(celMaxLabels)
	case "session.taint":
		return size(celMaxTaint)
	case "session.counts":
		return size(celMaxCounts)
	case "session.counts.@keys":
		return size(2*celMaxString + 1)
	case "scopes":
		return size(celMaxScopes)
	case "request.headers":
		return size(celMaxHeaders)
	}
	if t := n.Type(); t != nil && t.Kind() == types.StringKind {
		return size(celMaxString)
	}
	return nil
}

// withinBounds reports whether this evaluation's inputs respect the bounds
// the cost estimate assumed (computed once).
func (e *evalCtx) withinBounds() bool {
	if e.within == 0 {
		e.within = -1
		if e.inputsWithinBounds() {
			e.within = 1
		}
	}
	return e.within > 0
}

func (e *evalCtx) inputsWithinBounds() bool {
	c := e.c
	short := func(ss ...string) bool {
		for _, s := range ss {
			if len(s) > celMaxString {
				return false
			}
		}
		return true
	}
	if !short(e.tool, c.Route, c.Issuer, c.Subject, c.ClientID, c.ClientIP) || !short(e.labels...) ||
		len(e.labels) > celMaxLabels || len(e.hist.Taint) > celMaxTaint || len(e.hist.Counts) > celMaxCounts ||
		len(c.Headers) > celMaxHeaders {
		return false
	}
	scopes := c.Grant.expandedScopes()
	if len(scopes) > celMaxScopes || !short(scopes...) || !short(e.hist.Taint...) {
		return false
	}
	for k, v := range c.Headers {
		if !short(k, v) {
			return false
		}
	}
	return true
}

// nativeCosts charges the native history functions at run time for the
// entries they look at, as the estimate does: otherwise a native scan
// would cost one unit however long the history, and a rule running
// scans inside a loop over the history would escape the limit.
type nativeCosts struct{}

func (nativeCosts) CallCost(fn, _ string, args []ref.Val, _ ref.Val) *uint64 {
	var per uint64
	switch fn {
	case scanFunction, countFunction:
		per = 10 // per ten entries: a few string comparisons each
	case "firstCall", "lastCall", "firstLabelled", "lastLabelled":
		per = 1
	default:
		return nil
	}
	n := uint64(1)
	if len(args) > 0 {
		if o, ok := args[0].(*celObject); ok {
			n += uint64(len(o.ctx.historyView())) * per / 10
		}
	}
	return &n
}
