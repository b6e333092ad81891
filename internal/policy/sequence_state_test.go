package policy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mcpgate/mcpgate/internal/state"
)

// stateRules exercise every kind of recorded state.
var stateRules = []RuleConfig{
	trifecta,
	{ID: "refund", Order: &OrderRule{Call: Matcher{Tools: []string{"refund"}}, After: &Matcher{Tools: []string{"lookup_order"}}, SameArguments: []string{"order_id"}}},
	{ID: "no-push", Order: &OrderRule{Call: Matcher{Tools: []string{"git_push"}}, NeverAfter: &Matcher{Labels: []string{LabelDestructive}}}},
	{ID: "deletes", Budget: &BudgetRule{Match: Matcher{Labels: []string{LabelDestructive}}, Max: 2, Window: time.Hour}},
	{ID: "users", Budget: &BudgetRule{Match: Matcher{Tools: []string{"*"}}, Max: 100, Window: time.Hour, Per: PerSubject}},
	{ID: "confirm", Action: ActionStepUp, Scope: "shop:admin", When: `call.tool == "refund" && call.args.amount > 100`},
	{ID: "cel", When: `call.tool == "wipe" && "private_data" in session.taint`},
}

// budgetKeys returns the counter keys of the stateRules budgets for c.
func budgetKeys(s *Sequence, c Call) []state.Key {
	var keys []state.Key
	for _, r := range s.budgets {
		keys = append(keys, budgetKey(r, &c, s.HistoryKey(c)))
	}
	return keys
}

func TestDecideRecords(t *testing.T) {
	s, st, clk := newSeq(t, SequenceConfig{Rules: stateRules})
	ctx := context.Background()
	lookup := withArgs(alice("shop", "lookup_order", LabelPrivateData), "order_id", "42")
	if d, err := s.Decide(ctx, st, lookup); err != nil || d.Outcome != Allow || d.RuleID != "" || d.Reason != "" {
		t.Fatalf("%+v %v", d, err)
	}
	clk.Advance(time.Second)
	wipe := alice("files", "wipe_disk", LabelDestructive, LabelEgress)
	if d, err := s.Decide(ctx, st, wipe); err != nil || d.Outcome != Allow {
		t.Fatalf("%+v %v", d, err)
	}
	wipe.Labels[0] = "changed" // the history keeps its own copy

	h, cs := snapshot(t, s, st, lookup, budgetKeys(s, lookup)...)
	t0 := clk.Now().Add(-time.Second)
	wantEntries := []state.Entry{
		{At: t0, Route: "shop", Tool: "lookup_order", Labels: []string{LabelPrivateData}},
		{At: clk.Now(), Route: "files", Tool: "wipe_disk", Labels: []string{LabelDestructive, LabelEgress}},
	}
	if diff := cmp.Diff(wantEntries, h.Entries, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{LabelPrivateData, LabelDestructive, LabelEgress}, h.Taint); diff != "" {
		t.Errorf("taint (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"shop/lookup_order": 1, "files/wipe_disk": 1}, h.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	refund, noPush := s.orders[0], s.orders[1]
	d42, _ := argsDigest(lookup.Args, []string{"order_id"}, argsExact)
	if diff := cmp.Diff(map[string][]string{refund.seenKey: {string(d42[:])}, noPush.seenKey: {"*"}}, h.Seen); diff != "" {
		t.Errorf("seen (-want +got):\n%s", diff)
	}
	// deletes (per run): the wipe; users (per subject): both calls.
	if len(cs) != 2 || len(cs[0].Times) != 1 || !cs[0].Times[0].Equal(clk.Now()) || len(cs[1].Times) != 2 {
		t.Errorf("counters = %+v", cs)
	}
}

func TestRefusedCallRecordsNothing(t *testing.T) {
	s, st, _ := newSeq(t, SequenceConfig{Rules: stateRules})
	ctx := context.Background()
	for _, c := range []Call{
		alice("docs", "read", LabelPrivateData), alice("web", "fetch", LabelUntrustedInput),
		alice("files", "rm", LabelDestructive), alice("files", "rm", LabelDestructive),
	} {
		if d, err := s.Decide(ctx, st, c); err != nil || d.Outcome != Allow {
			t.Fatalf("setup %s: %+v %v", c.Tool, d, err)
		}
	}
	before, beforeC := snapshot(t, s, st, alice("", "x"), budgetKeys(s, alice("", "x"))...)
	for _, tt := range []struct {
		call Call
		rule string
		want Outcome
	}{
		{alice("mail", "send", LabelEgress), "seq:no-exfil", Deny},
		{withArgs(alice("shop", "refund", LabelPrivateData), "order_id", "1", "amount", "5"), "seq:refund", Deny},
		{alice("git", "git_push", LabelEgress, "vcs"), "seq:no-exfil", Deny},
		{alice("git", "git_push", "vcs"), "seq:no-push", Deny},
		{alice("files", "rm", LabelDestructive, "new_label"), "seq:deletes", Deny},
		{withArgs(alice("shop", "refund"), "order_id", "9", "amount", "500"), "seq:refund", Deny},
		{alice("files", "wipe", "new_label"), "seq:cel", Deny},
	} {
		d, err := s.Decide(ctx, st, tt.call)
		if err != nil || d.Outcome != tt.want || d.RuleID != tt.rule {
			t.Errorf("%s: %+v %v, want %v by %s", tt.call.Tool, d, err, tt.want, tt.rule)
		}
		after, afterC := snapshot(t, s, st, alice("", "x"), budgetKeys(s, alice("", "x"))...)
		if diff := cmp.Diff(before, after, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s refused by %s changed the history (-before +after):\n%s", tt.call.Tool, d.RuleID, diff)
		}
		if diff := cmp.Diff(beforeC, afterC, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s refused by %s changed a budget (-before +after):\n%s", tt.call.Tool, d.RuleID, diff)
		}
	}
	// A step_up refusal records nothing either; the holder of the scope
	// then passes and is recorded.
	s2, st2, _ := newSeq(t, SequenceConfig{Rules: stateRules})
	refund := withArgs(alice("shop", "refund"), "order_id", "1", "amount", "500")
	lookup := withArgs(alice("shop", "lookup_order"), "order_id", "1")
	if d, _ := s2.Decide(ctx, st2, lookup); d.Outcome != Allow {
		t.Fatal(d)
	}
	if d, _ := s2.Decide(ctx, st2, refund); d.Outcome != InsufficientScope || d.RuleID != "seq:confirm" {
		t.Fatalf("%+v", d)
	}
	if h, _ := snapshot(t, s2, st2, refund); len(h.Entries) != 1 || h.Counts["shop/refund"] != 0 {
		t.Errorf("a step_up refusal was recorded: %+v", h)
	}
	refund.Grant = testGrant("shop:admin")
	if d, _ := s2.Decide(ctx, st2, refund); d.Outcome != Allow {
		t.Fatalf("%+v", d)
	}
	if h, _ := snapshot(t, s2, st2, refund); len(h.Entries) != 2 || h.Counts["shop/refund"] != 1 {
		t.Errorf("the stepped-up call was not recorded: %+v", h)
	}
}

// failingStore fails every operation, as an unreachable store does.
type failingStore struct{ calls int }

func (f *failingStore) Update(context.Context, state.Key, []state.Key, func(*state.History, []*state.Counter) error) error {
	f.calls++
	return state.ErrUnavailable
}

func (f *failingStore) AddTaint(context.Context, state.Key, []string) error {
	f.calls++
	return state.ErrUnavailable
}

func TestStoreFailure(t *testing.T) {
	s, _, _ := newSeq(t, SequenceConfig{Rules: []RuleConfig{trifecta, {ID: "hide", Phase: PhaseList, When: "true"}}})
	ctx := context.Background()
	fs := &failingStore{}
	d, err := s.Decide(ctx, fs, alice("docs", "read"))
	if !errors.Is(err, state.ErrUnavailable) || d.Outcome != Deny || d.RuleID != "seq:state" || d.Reason == "" {
		t.Errorf("Decide = %+v, %v; want a denying decision and the store's error", d, err)
	}
	if f, err := s.ListFilter(ctx, fs, alice("docs", "")); !errors.Is(err, state.ErrUnavailable) || f != nil {
		t.Errorf("ListFilter = %v, %v; want the store's error", f != nil, err)
	}
	if err := s.AddResultLabels(ctx, fs, alice("docs", "read"), []string{LabelUntrustedInput}); !errors.Is(err, state.ErrUnavailable) {
		t.Errorf("AddResultLabels = %v", err)
	}
	fs.calls = 0
	if err := s.AddResultLabels(ctx, fs, alice("docs", "read"), nil); err != nil || fs.calls != 0 {
		t.Errorf("no labels: %v, %d store calls", err, fs.calls)
	}
	if err := s.AddResultLabels(ctx, fs, alice("docs", "read"), []string{"Not Valid"}); err == nil || fs.calls != 0 {
		t.Errorf("invalid label: %v, %d store calls", err, fs.calls)
	}
	// Without list rules, listing needs no state.
	s2, _, _ := newSeq(t, SequenceConfig{Rules: []RuleConfig{trifecta}})
	if f, err := s2.ListFilter(ctx, fs, alice("docs", "")); err != nil || fs.calls != 0 {
		t.Errorf("ListFilter without list rules: %v, %d store calls", err, fs.calls)
	} else if v, _ := f("anything", nil); !v {
		t.Error("hidden without list rules")
	}
}

func TestConcurrentDecide(t *testing.T) {
	const workers, each = 8, 40
	for _, tt := range []struct {
		name   string
		rules  []RuleConfig
		runIDs bool // each worker its own run (per-subject budget across history keys)
		want   int
	}{
		{"no rule: no lost history", nil, false, workers * each},
		{"per-run budget exactly respected", []RuleConfig{{ID: "b", Budget: &BudgetRule{Match: Matcher{Tools: []string{"*"}}, Max: 100, Window: time.Hour}}}, false, 100},
		{"per-subject budget across runs", []RuleConfig{{ID: "b", Budget: &BudgetRule{Match: Matcher{Tools: []string{"*"}}, Max: 70, Window: time.Hour, Per: PerSubject}}}, true, 70},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, st, _ := newSeq(t, SequenceConfig{Rules: tt.rules})
			var wg sync.WaitGroup
			var mu sync.Mutex
			allowed := 0
			for w := range workers {
				wg.Go(func() {
					c := alice("docs", fmt.Sprint("tool", w), fmt.Sprint("l", w))
					if tt.runIDs {
						c.RunID = fmt.Sprint("run", w)
					}
					for range each {
						d, err := s.Decide(context.Background(), st, c)
						if err != nil {
							t.Error(err)
							return
						}
						if d.Outcome == Allow {
							mu.Lock()
							allowed++
							mu.Unlock()
						}
					}
				})
			}
			wg.Wait()
			histories := []Call{alice("docs", "")}
			if tt.runIDs {
				histories = nil
				for w := range workers {
					c := alice("docs", "")
					c.RunID = fmt.Sprint("run", w)
					histories = append(histories, c)
				}
			}
			entries, taint, counts := 0, 0, 0
			for _, c := range histories {
				h, _ := snapshot(t, s, st, c)
				entries, taint = entries+len(h.Entries), taint+len(h.Taint)
				for _, n := range h.Counts {
					counts += n
				}
			}
			if allowed != tt.want || entries != tt.want || counts != tt.want {
				t.Errorf("allowed %d, history entries %d, counts %d; want exactly %d each", allowed, entries, counts, tt.want)
			}
			if tt.want == workers*each && taint != workers {
				t.Errorf("taint has %d labels, want %d", taint, workers)
			}
		})
	}
}

func TestStateNeverCrossesPrincipals(t *testing.T) {
	s, st, _ := newSeq(t, SequenceConfig{Rules: stateRules})
	ctx := context.Background()
	if d, _ := s.Decide(ctx, st, alice("docs", "read", LabelPrivateData, LabelUntrustedInput)); d.Outcome != Allow {
		t.Fatal(d)
	}
	for _, other := range []func(*Call){
		func(c *Call) { c.Subject = "bob" },
		func(c *Call) { c.Issuer = "https://other-idp.example" },
		func(c *Call) { c.ClientID = "other-agent" },
	} {
		c := alice("mail", "send", LabelEgress)
		other(&c)
		if d, _ := s.Decide(ctx, st, c); d.Outcome != Allow {
			t.Errorf("%+v was refused by another principal's history: %+v", c, d)
		}
		if h, _ := snapshot(t, s, st, c); len(h.Entries) != 1 || len(h.Taint) != 1 {
			t.Errorf("%+v sees %+v", c, h)
		}
	}
}

func TestOrderStateFollowsTheRule(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	st := state.NewMemory(state.MemoryConfig{Now: clk.Now})
	rule := func(after string) SequenceConfig {
		return SequenceConfig{Rules: []RuleConfig{{ID: "r", Order: &OrderRule{Call: Matcher{Tools: []string{"b"}}, After: &Matcher{Tools: []string{after}}}}}}
	}
	s1, _ := CompileSequence(rule("a"), clk.Now)
	s1again, _ := CompileSequence(rule("a"), clk.Now)
	s2, _ := CompileSequence(rule("c"), clk.Now)
	if d, _ := s1.Decide(ctx, st, alice("r", "a")); d.Outcome != Allow {
		t.Fatal(d)
	}
	if d, _ := s1again.Decide(ctx, st, alice("r", "b")); d.Outcome != Allow {
		t.Errorf("a reloaded, unchanged rule lost its state: %+v", d)
	}
	// A changed rule starts afresh, and the old rule's state is dropped.
	if d, _ := s2.Decide(ctx, st, alice("r", "c")); d.Outcome != Allow {
		t.Fatal(d)
	}
	h, _ := snapshot(t, s2, st, alice("r", "x"))
	if _, ok := h.Seen[s1.orders[0].seenKey]; ok || len(h.Seen) != 1 {
		t.Errorf("seen = %v, want only the current rule's key", h.Seen)
	}
}

func TestBudgetClockStepsBack(t *testing.T) {
	s, st, clk := newSeq(t, SequenceConfig{Rules: []RuleConfig{{ID: "b", Budget: &BudgetRule{Match: Matcher{Tools: []string{"*"}}, Max: 3, Window: time.Minute}}}})
	ctx := context.Background()
	c := alice("r", "t")
	for _, back := range []time.Duration{0, -10 * time.Second, 5 * time.Second} {
		clk.Advance(back)
		if d, _ := s.Decide(ctx, st, c); d.Outcome != Allow {
			t.Fatal(d)
		}
	}
	_, cs := snapshot(t, s, st, c, budgetKeys(s, c)...)
	for i := 1; i < len(cs[0].Times); i++ {
		if cs[0].Times[i].Before(cs[0].Times[i-1]) {
			t.Fatalf("counter out of order: %v", cs[0].Times)
		}
	}
	// The event of the stepped-back clock is recorded at the newest time
	// (appended, never inserted: a shared store relies on it).
	if ts := cs[0].Times; len(ts) != 3 || !ts[1].Equal(ts[0]) {
		t.Errorf("counter %v, want the second event at the first's time", ts)
	}
	// Events "in the future" still count: fail closed.
	if d, _ := s.Decide(ctx, st, c); d.Outcome != Deny {
		t.Errorf("fourth call: %+v", d)
	}
}

func TestDecideAllocsIndependentOfHistory(t *testing.T) {
	// Both histories are long enough for the CEL rule reading
	// session.counts to see counts above 255, which box with an allocation.
	allocs := map[int]float64{}
	for _, n := range []int{1100, 4000} {
		s, st, c, clk := benchSetup(t, n)
		ctx := context.Background()
		allocs[n] = testing.AllocsPerRun(200, func() {
			clk.t = clk.t.Add(100 * time.Millisecond)
			if d, err := s.Decide(ctx, st, c); err != nil || d.Outcome != Allow {
				t.Fatalf("%+v %v", d, err)
			}
		})
	}
	if allocs[4000] > allocs[1100] {
		t.Errorf("allocations grow with the history: %v", allocs)
	}
}
