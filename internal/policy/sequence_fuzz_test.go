package policy

import (
	"context"
	"testing"
	"time"
)

// FuzzCompileSequence feeds random CEL expressions, tool patterns and
// labels to the rule compiler. Compiling must never panic, and a rule that
// compiles must decide (or hide) without panicking, within the cost limit.
func FuzzCompileSequence(f *testing.F) {
	for _, s := range []struct {
		expr, tool, label string
		list              bool
	}{
		{`call.tool == "x"`, "send_*", "egress", false},
		{`call.args.a.b[0] > 1.5`, "x", "l", false},
		{`call.args.a == 1`, "x", "l", true},
		{`session.history.exists(i, h, session.history.exists(j, k, j > i && k.tool == h.tool))`, "[a-", "Bad", false},
		{`session.history.map(h, h.labels).flatten().size() > 2`, "*", "a:b", true},
		{`lists.range(1000).all(i, lists.range(1000).all(j, i != j || i == j))`, "?", "x", false},
		{`session.counts[call.tool] > 2 && request.headers[?"x"].orValue("") == ""`, "a\\", "", false},
		{`cel.bind(x, session.firstCall("a"), x >= 0 && session.history[x].tool == "a")`, "", "x", false},
		{`mcpgate.Session{}.taint == []`, "t", "x", false},
		{`now - session.history[0].at > duration("1h")`, "t", "x", true},
		{`call.tool.matches(call.args.re)`, "t", "x", false},
		{`"a" + `, "t", "x", false},
		{`1 / 0 == 1`, "t", "x", false},
		{`(((((((((((((((((((((1)))))))))))))))))))) == 1`, "t", "x", false},
		{`dyn(call.args).x.y.z == dyn(session).taint`, "t", "x", false},
		{`type(call) == type(session)`, "t", "x", false},
		{`int(call.args.n) * 9223372036854775807 > 0`, "t", "x", false},
	} {
		f.Add(s.expr, s.tool, s.label, s.list)
	}
	f.Fuzz(func(t *testing.T, expr, tool, label string, list bool) {
		phase := PhaseCall
		if list {
			phase = PhaseList
		}
		clk := newFakeClock()
		s, err := CompileSequence(SequenceConfig{Rules: []RuleConfig{
			{ID: "cel", Phase: phase, When: expr},
			{ID: "flow", Phase: phase, Flow: &FlowRule{Taint: []string{label}, To: Matcher{Tools: []string{tool}, Labels: []string{label}}}},
			{ID: "order", Phase: phase, Order: &OrderRule{Call: Matcher{Tools: []string{tool}}, NeverAfter: &Matcher{Labels: []string{label}}}},
		}}, clk.Now)
		if err != nil {
			return
		}
		_, st, _ := newSeq(t, SequenceConfig{})
		ctx := context.Background()
		for _, c := range []Call{
			withArgs(alice("r", "t", "x"), "a", `{"b":[2]}`, "n", "3", "re", `"a+"`),
			withArgs(alice("r", tool, label), "a", "1"),
			alice("r", "other"),
		} {
			d, err := s.Decide(ctx, st, c)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if d.Outcome != Allow && (d.RuleID == "" || d.Reason == "") {
				t.Fatalf("a refusal without rule or reason: %+v", d)
			}
			clk.Advance(time.Second)
		}
		filter, err := s.ListFilter(ctx, st, alice("r", ""))
		if err != nil {
			t.Fatalf("ListFilter: %v", err)
		}
		for _, tl := range []string{tool, "t", ""} {
			if visible, rule := filter(tl, []string{label}); !visible && rule == "" {
				t.Fatal("hidden without a rule")
			}
		}
	})
}
