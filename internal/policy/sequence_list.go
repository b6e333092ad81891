package policy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/mcpgate/mcpgate/internal/state"
)

// errSnapshot makes a read-only store Update write nothing.
var errSnapshot = errors.New("policy: sequence: snapshot")

// ListFilter loads the run's state once for a list request (c without
// Tool, Args and Labels) and returns a predicate that applies the
// list-phase rules to each listed tool: visible, or hidden by ruleID
// ("seq:<id>"). A rule that fires hides the tool whatever its action,
// except a step_up rule whose scope the caller holds; a rule that cannot be
// evaluated hides it. The predicate is safe for concurrent use. An error
// means the store failed: the caller must fail the list request.
func (s *Sequence) ListFilter(ctx context.Context, st state.Store, c Call) (func(tool string, labels []string) (visible bool, ruleID string), error) {
	if len(s.list) == 0 {
		return func(string, []string) (bool, string) { return true, "" }, nil
	}
	if c.Issuer == "" || c.Subject == "" {
		return func(string, []string) (bool, string) { return false, "seq:identity" }, nil
	}
	now := s.now()
	hk := s.HistoryKey(c)
	var keys []state.Key
	var budgets []*seqRule
	for _, r := range s.budgets {
		if r.list {
			keys = append(keys, budgetKey(r, &c, hk))
			budgets = append(budgets, r)
		}
	}
	snap := &state.History{}
	seen := map[*seqRule]bool{}      // list order rules whose other matcher an earlier call matched
	exhausted := map[*seqRule]bool{} // list budget rules at their maximum
	err := st.Update(ctx, hk, keys, func(h *state.History, cs []*state.Counter) error {
		clear(seen)
		clear(exhausted)
		*snap = state.History{Taint: slices.Clone(h.Taint)}
		if s.listNeed&needHistory != 0 {
			snap.Entries = slices.Clone(h.Entries)
		}
		if s.listNeed&needCounts != 0 {
			snap.Counts = maps.Clone(h.Counts)
		}
		for _, r := range s.orders {
			if r.list {
				seen[r] = slices.Contains(h.Seen[r.seenKey], "*")
			}
		}
		for i, r := range budgets {
			exhausted[r] = inWindow(cs[i], now, r.window) >= r.max
		}
		return errSnapshot
	})
	if !errors.Is(err, errSnapshot) {
		return nil, fmt.Errorf("policy: sequence state: %w", err)
	}
	ts := types.Timestamp{Time: now}
	return func(tool string, labels []string) (bool, string) {
		ev := evalCtx{c: &c, tool: tool, labels: labels, hist: snap, now: ts, list: true, names: s.names, scans: s.scans}
		for _, r := range s.list {
			if r.stepUp && c.Grant.Has(r.scope) {
				continue
			}
			var fires bool
			var err error
			switch r.kind {
			case kindFlow:
				fires = flowFires(r, snap.Taint, c.Route, tool, labels)
			case kindOrder:
				fires = r.on.match(c.Route, tool, labels) && seen[r] == r.never
			case kindBudget:
				fires = r.on.match(c.Route, tool, labels) && exhausted[r]
			case kindCEL:
				fires, err = ev.eval(r.prg)
			}
			if fires || err != nil {
				return false, r.decID
			}
		}
		return true, ""
	}, nil
}

// AddResultLabels adds labels learnt from a call's result to the taint of
// its run (after the response; a later call sees them). Labels must be
// valid ([ValidLabel]).
func (s *Sequence) AddResultLabels(ctx context.Context, st state.Store, c Call, labels []string) error {
	if len(labels) == 0 {
		return nil
	}
	if err := checkLabels(labels); err != nil {
		return fmt.Errorf("policy: result labels: %w", err)
	}
	if err := st.AddTaint(ctx, s.HistoryKey(c), labels); err != nil {
		return fmt.Errorf("policy: sequence state: %w", err)
	}
	return nil
}

// reason is the agent-facing Reason of a refusal by r (scopes: the
// step_up scopes asked for).
func (d *decideRun) reason(r *seqRule, cs []*state.Counter, scopes []string) string {
	if r.message != "" {
		return r.message
	}
	what := "tool " + quote(d.c.Tool)
	var why string
	same := ""
	if len(r.same) > 0 {
		same = " with the same " + andList(r.same)
	}
	switch r.kind {
	case kindFlow:
		why = fmt.Sprintf("this run has handled data labelled %s, after which %s may not be called", andList(r.taint), r.to.desc)
	case kindOrder:
		if r.never {
			why = fmt.Sprintf("it may not be called after a call to %s%s in this run", r.other.desc, same)
		} else {
			why = fmt.Sprintf("it may only be called after a call to %s%s in this run; make that call first", r.other.desc, same)
		}
	case kindBudget:
		per := map[budgetPer]string{perSession: "run", perSubject: "user", perClient: "client"}[r.per]
		why = fmt.Sprintf("at most %d calls to %s are allowed per %s per %s; the next one is possible in %s",
			r.max, r.on.desc, fmtDuration(r.window), per, fmtDuration(d.retryAfter(r, cs)))
	default:
		why = r.desc
		if why == "" {
			why = "the call meets the rule's condition"
		}
	}
	if r.stepUp {
		s := "scope " + quote(scopes[0])
		if len(scopes) > 1 {
			s = "scopes " + quote(strings.Join(scopes, " "))
		}
		return fmt.Sprintf("%s requires %s (rule %s): %s", what, s, r.id, why)
	}
	return fmt.Sprintf("%s is not allowed by rule %s: %s", what, r.id, why)
}

// errReason is the Reason when r could not be evaluated.
func (d *decideRun) errReason(r *seqRule, err error) string {
	var ae errArgument
	if errors.As(err, &ae) {
		return fmt.Sprintf("tool %s is not allowed by rule %s: %s, and the rule compares it", quote(d.c.Tool), r.id, ae.Error())
	}
	return fmt.Sprintf("tool %s is refused: rule %s could not be evaluated (%s)", quote(d.c.Tool), r.id, celErrText(err))
}

// retryAfter returns how long until budget rule r admits a call.
func (d *decideRun) retryAfter(r *seqRule, cs []*state.Counter) time.Duration {
	i := d.cidx[r.idx]
	if i < 0 {
		return 0
	}
	var in []time.Time
	for _, t := range cs[i].Times {
		if t.After(d.now.Add(-r.window)) {
			in = append(in, t)
		}
	}
	if len(in) < r.max {
		return 0
	}
	slices.SortFunc(in, time.Time.Compare)
	return in[len(in)-r.max].Add(r.window).Sub(d.now)
}

// fmtDuration renders d rounded up to a second: "42s", "5m", "1h30m".
func fmtDuration(d time.Duration) string {
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	if d <= 0 {
		d = time.Second
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
