package policy

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestListFilter(t *testing.T) {
	rules := []RuleConfig{
		trifecta, // a call rule: never applied to lists
		{ID: "hide-egress", Phase: PhaseList, Flow: &FlowRule{Taint: []string{LabelPrivateData}, To: Matcher{Labels: []string{LabelEgress}}}},
		{ID: "hide-refund", Phase: PhaseList, Order: &OrderRule{Call: Matcher{Tools: []string{"refund"}}, After: &Matcher{Tools: []string{"lookup_order"}}}},
		{ID: "hide-push", Phase: PhaseList, Order: &OrderRule{Call: Matcher{Tools: []string{"git_push"}}, NeverAfter: &Matcher{Tools: []string{"git_reset"}}}},
		{ID: "hide-deletes", Phase: PhaseList, Budget: &BudgetRule{Match: Matcher{Labels: []string{LabelDestructive}}, Max: 1, Window: time.Minute}},
		{ID: "admin-only", Phase: PhaseList, Action: ActionStepUp, Scope: "admin", When: `call.tool.startsWith("admin_")`},
		{ID: "after-search", Phase: PhaseList, When: `call.tool == "summarize" && session.counts["docs/search"] == 0`},
		{ID: "recent", Phase: PhaseList, When: `call.tool == "undo" && !session.history.exists(h, h.tool == "rm" && now - h.at < duration("1m"))`},
		{ID: "broken", Phase: PhaseList, When: `"x" in call.labels && request.headers["missing"] == "y"`},
	}
	s, st, clk := newSeq(t, SequenceConfig{Rules: rules})
	ctx := context.Background()
	type item struct {
		tool   string
		labels []string
	}
	tools := []item{
		{"send_email", []string{LabelEgress}}, {"search", nil}, {"refund", nil}, {"git_push", nil},
		{"rm", []string{LabelDestructive}}, {"admin_panel", nil}, {"summarize", nil}, {"undo", nil}, {"odd", []string{"x"}},
	}
	list := func(c Call) map[string]string {
		t.Helper()
		f, err := s.ListFilter(ctx, st, c)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, it := range tools {
			if visible, rule := f(it.tool, it.labels); !visible {
				got[it.tool] = rule
			} else if rule != "" {
				t.Errorf("%s visible with rule %q", it.tool, rule)
			}
		}
		return got
	}
	call := func(c Call) {
		t.Helper()
		if d, err := s.Decide(ctx, st, c); err != nil || d.Outcome != Allow {
			t.Fatalf("%s: %+v %v", c.Tool, d, err)
		}
	}
	lister := alice("docs", "")
	for _, tt := range []struct {
		before func()
		c      Call
		hidden map[string]string
	}{
		{nil, lister, map[string]string{"refund": "seq:hide-refund", "admin_panel": "seq:admin-only", "summarize": "seq:after-search", "undo": "seq:recent", "odd": "seq:broken"}},
		{func() { call(alice("docs", "search")); call(alice("shop", "lookup_order")) }, lister,
			map[string]string{"admin_panel": "seq:admin-only", "undo": "seq:recent", "odd": "seq:broken"}},
		{func() { call(alice("docs", "read", LabelPrivateData)); call(alice("files", "rm", LabelDestructive)) }, func() Call { c := lister; c.Grant = testGrant("admin"); return c }(),
			map[string]string{"send_email": "seq:hide-egress", "rm": "seq:hide-deletes", "odd": "seq:broken"}},
		{func() { call(alice("git", "git_reset")); clk.Advance(time.Minute) }, lister,
			map[string]string{"send_email": "seq:hide-egress", "git_push": "seq:hide-push", "admin_panel": "seq:admin-only", "undo": "seq:recent", "odd": "seq:broken"}},
		{nil, func() Call { c := lister; c.Subject = "bob"; return c }(), // bob's run is empty
			map[string]string{"refund": "seq:hide-refund", "admin_panel": "seq:admin-only", "summarize": "seq:after-search", "undo": "seq:recent", "odd": "seq:broken"}},
		{nil, func() Call { c := lister; c.Subject = ""; return c }(), // no principal: hide all
			map[string]string{"send_email": "seq:identity", "search": "seq:identity", "refund": "seq:identity", "git_push": "seq:identity", "rm": "seq:identity", "admin_panel": "seq:identity", "summarize": "seq:identity", "undo": "seq:identity", "odd": "seq:identity"}},
	} {
		if tt.before != nil {
			tt.before()
		}
		if diff := cmp.Diff(tt.hidden, list(tt.c)); diff != "" {
			t.Errorf("hidden (-want +got):\n%s", diff)
		}
	}
	// Listing records nothing.
	h, _ := snapshot(t, s, st, lister)
	if len(h.Entries) != 5 {
		t.Errorf("history has %d entries after listing, want the 5 calls", len(h.Entries))
	}
}

func TestListSnapshotNeeds(t *testing.T) {
	envs, err := newCELEnvs()
	if err != nil {
		t.Fatal(err)
	}
	for expr, want := range map[string]celNeeds{
		`"x" in session.taint`:                                 0,
		`call.tool == "a"`:                                     0,
		`session.counts["a/b"] > 1`:                            needCounts,
		`session.history.exists(h, h.tool == "x")`:             needHistory,
		`session.firstCall("x") >= 0`:                          needHistory | needCounts,
		`size(session.history) > 0 && "a/b" in session.counts`: needHistory | needCounts,
	} {
		if got := envs.needs(expr); got != want {
			t.Errorf("needs(%q) = %b, want %b", expr, got, want)
		}
	}
}
