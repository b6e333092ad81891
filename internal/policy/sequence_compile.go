package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
)

// compileSeqRule compiles one rule, returning every problem found.
func compileSeqRule(rc RuleConfig, envs *celEnvs) (*seqRule, []error) {
	var errs []error
	fail := func(field string, err error) {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("%s: %w", field, e))
		}
	}
	r := &seqRule{id: rc.ID, decID: "seq:" + rc.ID, message: rc.Message, desc: rc.Description}
	switch rc.Phase {
	case "", PhaseCall:
	case PhaseList:
		r.list = true
	default:
		fail("phase", fmt.Errorf("%s is not one of call, list", quote(rc.Phase)))
	}
	switch rc.Action {
	case "", ActionDeny:
		if rc.Scope != "" {
			fail("scope", errors.New("only a step_up rule has a scope"))
		}
	case ActionStepUp:
		r.stepUp, r.scope = true, rc.Scope
		if rc.Scope == "" {
			fail("scope", errors.New("required for a step_up rule (the scope that unlocks the call)"))
		} else if err := checkLiteralScope(rc.Scope); err != nil {
			fail("scope", err)
		}
	default:
		fail("action", fmt.Errorf("%s is not one of deny, step_up", quote(rc.Action)))
	}
	n := 0
	for _, set := range []bool{rc.Flow != nil, rc.Order != nil, rc.Budget != nil, rc.When != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		fail("rule", fmt.Errorf("exactly one of flow, order, budget, when must be set (found %d)", n))
		return nil, errs
	}
	switch {
	case rc.Flow != nil:
		r.kind = kindFlow
		if len(rc.Flow.Taint) == 0 {
			fail("flow.taint", errors.New("required"))
		}
		fail("flow.taint", checkLabels(rc.Flow.Taint))
		r.taint = slices.Clone(rc.Flow.Taint)
		r.to, _ = compileMatcher(rc.Flow.To, "flow.to", fail)
	case rc.Order != nil:
		r.kind = kindOrder
		o := rc.Order
		var fp string
		r.on, _ = compileMatcher(o.Call, "order.call", fail)
		switch {
		case (o.After == nil) == (o.NeverAfter == nil):
			fail("order", errors.New("exactly one of after, never_after must be set"))
		case o.After != nil:
			r.other, fp = compileMatcher(*o.After, "order.after", fail)
		default:
			r.never = true
			r.other, fp = compileMatcher(*o.NeverAfter, "order.never_after", fail)
		}
		for i, a := range o.SameArguments {
			if a == "" || slices.Contains(o.SameArguments[:i], a) {
				fail(fmt.Sprintf("order.same_arguments[%d]", i), fmt.Errorf("%s is empty or repeated", quote(a)))
			}
		}
		if len(o.SameArguments) > 0 && r.list {
			fail("order.same_arguments", errors.New("a list-phase rule sees no arguments"))
		}
		r.same = slices.Clone(o.SameArguments)
		r.seenKey = "order/" + rc.ID + "/" + fingerprint(fmt.Sprint(r.never, fp, r.same))
	case rc.Budget != nil:
		r.kind = kindBudget
		b := rc.Budget
		var fp string
		r.on, fp = compileMatcher(b.Match, "budget.match", fail)
		r.max, r.window = b.Max, b.Window
		if b.Max < 1 || b.Max > maxBudget {
			fail("budget.max", fmt.Errorf("%d: must be 1 to %d (to forbid calls, use a deny rule; a window keeps one timestamp per call)", b.Max, maxBudget))
		}
		if b.Window <= 0 {
			fail("budget.window", fmt.Errorf("%v: must be positive", b.Window))
		}
		switch b.Per {
		case "", PerSession:
		case PerSubject:
			r.per = perSubject
		case PerClient:
			r.per = perClient
		default:
			fail("budget.per", fmt.Errorf("%s is not one of session, subject, client", quote(b.Per)))
		}
		r.tag = rc.ID + "/" + fingerprint(fp)
	default:
		r.kind = kindCEL
		prg, err := envs.compile(rc.When, r.list)
		if err != nil {
			fail("when", err)
		}
		r.prg = prg
	}
	return r, errs
}

// maxBudget bounds BudgetRule.Max: a sliding window keeps the time of
// each counted call.
const maxBudget = 10_000

// validRuleID reports whether id is 1 to 64 characters from [a-z0-9_.-].
func validRuleID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// fingerprint is a short digest naming a rule's stored state, so that a
// changed rule starts afresh instead of reading what another form wrote.
func fingerprint(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}
