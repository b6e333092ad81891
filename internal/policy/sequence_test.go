package policy

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpgate/mcpgate/internal/state"
)

// fakeClock is a settable clock shared by a Sequence and its store.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// newSeq compiles rules with a fake clock and returns an empty memory
// store on the same clock.
func newSeq(t testing.TB, cfg SequenceConfig) (*Sequence, *state.Memory, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	s, err := CompileSequence(cfg, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return s, state.NewMemory(state.MemoryConfig{MaxEntries: 10000, IdleTimeout: 24 * time.Hour, Now: clk.Now}), clk
}

// alice returns a call by the default principal.
func alice(route, tool string, labels ...string) Call {
	return Call{Issuer: "https://idp.example", Subject: "alice", ClientID: "agent", Route: route, Tool: tool, Labels: labels, Grant: testGrant("mcp")}
}

// withArgs returns c with arguments from key/raw-JSON pairs.
func withArgs(c Call, kv ...string) Call {
	c.Args = map[string]json.RawMessage{}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Args[kv[i]] = json.RawMessage(kv[i+1])
	}
	return c
}

// snapshot reads the history at c's key and the given counters without
// changing them.
func snapshot(t testing.TB, s *Sequence, st state.Store, c Call, counters ...state.Key) (state.History, []state.Counter) {
	t.Helper()
	var h state.History
	var cs []state.Counter
	stop := errors.New("read only")
	err := st.Update(context.Background(), s.HistoryKey(c), counters, func(hh *state.History, cc []*state.Counter) error {
		h = state.History{Entries: append([]state.Entry(nil), hh.Entries...), Taint: append([]string(nil), hh.Taint...), Counts: map[string]int{}, Seen: map[string][]string{}}
		for k, v := range hh.Counts {
			h.Counts[k] = v
		}
		for k, v := range hh.Seen {
			h.Seen[k] = append([]string(nil), v...)
		}
		for _, c := range cc {
			cs = append(cs, state.Counter{Times: append([]time.Time(nil), c.Times...)})
		}
		return stop
	})
	if !errors.Is(err, stop) {
		t.Fatal(err)
	}
	return h, cs
}

func TestCompileSequenceErrors(t *testing.T) {
	m := Matcher{Tools: []string{"x"}}
	cfg := SequenceConfig{
		History: HistoryConfig{Scope: "tenant"},
		Rules: []RuleConfig{
			{ID: "Bad ID", When: "true"},
			{ID: "dup", When: "true"},
			{ID: "dup", When: "true"},
			{ID: "phase", Phase: "later", When: "true"},
			{ID: "action", Action: "warn", When: "true"},
			{ID: "stepup-no-scope", Action: ActionStepUp, When: "true"},
			{ID: "stepup-bad-scope", Action: ActionStepUp, Scope: "a b", When: "true"},
			{ID: "deny-scope", Scope: "admin", When: "true"},
			{ID: "no-form"},
			{ID: "two-forms", When: "true", Flow: &FlowRule{Taint: []string{"a"}, To: m}},
			{ID: "flow-empty", Flow: &FlowRule{}},
			{ID: "flow-label", Flow: &FlowRule{Taint: []string{"Private Data"}, To: Matcher{Labels: []string{"egress!"}}}},
			{ID: "glob", Flow: &FlowRule{Taint: []string{"a"}, To: Matcher{Tools: []string{"send_[", ""}, Routes: []string{""}}}},
			{ID: "order-both", Order: &OrderRule{Call: m, After: &m, NeverAfter: &m}},
			{ID: "order-neither", Order: &OrderRule{Call: m}},
			{ID: "order-same", Order: &OrderRule{Call: m, After: &m, SameArguments: []string{"id", "id", ""}}},
			{ID: "order-list-args", Phase: PhaseList, Order: &OrderRule{Call: m, After: &m, SameArguments: []string{"id"}}},
			{ID: "budget", Budget: &BudgetRule{Match: m, Max: 0, Window: 0, Per: "tenant"}},
			{ID: "big-budget", Budget: &BudgetRule{Match: m, Max: 10001, Window: time.Second}},
			{ID: "cel-syntax", When: "call.tool =="},
			{ID: "cel-type", When: "call.tool"},
			{ID: "cel-undeclared", When: "secret == 1"},
			{ID: "cel-list-args", Phase: PhaseList, When: `call.args.x == 1`},
			{ID: "cel-construct", When: `mcpgate.Call{tool: "x"}.tool == "x"`},
		},
	}
	_, err := CompileSequence(cfg, nil)
	if err == nil {
		t.Fatal("CompileSequence accepted a bad configuration")
	}
	msg := err.Error()
	for _, want := range []string{
		`history.scope: "tenant" is not one of principal, subject, session`,
		`rules[0]: id: "Bad ID" must be 1 to 64 characters`,
		`rule "dup": id: duplicate`,
		`rule "phase": phase: "later" is not one of call, list`,
		`rule "action": action: "warn" is not one of deny, step_up`,
		`rule "stepup-no-scope": scope: required for a step_up rule`,
		`rule "stepup-bad-scope": scope: scope "a b" contains a character not allowed`,
		`rule "deny-scope": scope: only a step_up rule has a scope`,
		`rule "no-form": rule: exactly one of flow, order, budget, when must be set (found 0)`,
		`rule "two-forms": rule: exactly one of flow, order, budget, when must be set (found 2)`,
		`rule "flow-empty": flow.taint: required`,
		`rule "flow-empty": flow.to: empty: set routes, tools or labels`,
		`rule "flow-label": flow.taint: [0]: label "Private Data" must be`,
		`rule "flow-label": flow.to.labels: [0]: label "egress!" must be`,
		`rule "glob": flow.to.tools[0]: glob "send_[": syntax error in pattern`,
		`rule "glob": flow.to.tools[1]: empty tool name`,
		`rule "glob": flow.to.routes[0]: empty route name`,
		`rule "order-both": order: exactly one of after, never_after must be set`,
		`rule "order-neither": order: exactly one of after, never_after must be set`,
		`rule "order-same": order.same_arguments[1]: "id" is empty or repeated`,
		`rule "order-same": order.same_arguments[2]: "" is empty or repeated`,
		`rule "order-list-args": order.same_arguments: a list-phase rule sees no arguments`,
		`rule "budget": budget.max: 0: must be 1 to 10000`,
		`rule "big-budget": budget.max: 10001: must be 1 to 10000`,
		`rule "budget": budget.window: 0s: must be positive`,
		`rule "budget": budget.per: "tenant" is not one of session, subject, client`,
		`rule "cel-syntax": when: ERROR`,
		`rule "cel-type": when: must be a bool expression, not string`,
		`rule "cel-undeclared": when: ERROR: <input>:1:1: undeclared reference to 'secret'`,
		`rule "cel-list-args": when: a list-phase rule can read call.tool and call.labels only`,
		`rule "cel-construct": when: mcpgate.Call values cannot be constructed`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if n := len(unjoin(err)); n != 31 {
		t.Errorf("%d problems reported, want 31 (one per line above):\n%s", n, msg)
	}
}

func TestCompileSequenceRules(t *testing.T) {
	after := &Matcher{Tools: []string{"lookup_order"}}
	in := []RuleConfig{
		{ID: "refund", Order: &OrderRule{Call: Matcher{Tools: []string{"refund"}}, After: after, SameArguments: []string{"order_id"}}},
		{ID: "deletes", Action: ActionStepUp, Scope: "admin", Budget: &BudgetRule{Match: Matcher{Labels: []string{"destructive"}}, Max: 3, Window: time.Minute}},
		{ID: "hide", Phase: PhaseList, When: `"egress" in call.labels && "private_data" in session.taint`},
	}
	s, err := CompileSequence(SequenceConfig{Rules: in}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := s.Rules()
	want := []RuleConfig{
		{ID: "refund", Phase: PhaseCall, Action: ActionDeny, Order: &OrderRule{Call: Matcher{Tools: []string{"refund"}}, After: after, SameArguments: []string{"order_id"}}},
		{ID: "deletes", Phase: PhaseCall, Action: ActionStepUp, Scope: "admin", Budget: &BudgetRule{Match: Matcher{Labels: []string{"destructive"}}, Max: 3, Window: time.Minute, Per: PerSession}},
		{ID: "hide", Phase: PhaseList, Action: ActionDeny, When: `"egress" in call.labels && "private_data" in session.taint`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Rules() (-want +got):\n%s", diff)
	}
	// Deep copies: changing the input or the output changes nothing.
	after.Tools[0] = "changed"
	got[0].Order.After.Tools[0] = "changed"
	if again := s.Rules(); again[0].Order.After.Tools[0] != "lookup_order" {
		t.Errorf("Rules() shares memory with the configuration: %v", again[0].Order.After.Tools)
	}
	if s2, err := CompileSequence(SequenceConfig{}, nil); err != nil || len(s2.Rules()) != 0 {
		t.Errorf("empty config: %v, %v", s2, err)
	}
}

func TestHistoryKey(t *testing.T) {
	base := alice("docs", "search")
	mod := func(f func(*Call)) Call { c := base; f(&c); return c }
	session := func(c Call, sid string) Call { c.SessionID = sid; return c }
	run := func(c Call, id string) Call { c.RunID = id; return c }
	otherClient := mod(func(c *Call) { c.ClientID = "other-agent" })
	otherIssuer := mod(func(c *Call) { c.Issuer = "https://evil.example" })
	bob := mod(func(c *Call) { c.Subject = "bob" })
	otherRoute := mod(func(c *Call) { c.Route = "mail"; c.Tool = "send" })
	for _, tt := range []struct {
		scope string
		a, b  Call
		same  bool
	}{
		{HistoryPrincipal, base, otherRoute, true},
		{HistoryPrincipal, base, session(base, "s1"), true},
		{HistoryPrincipal, session(base, "s1"), session(base, "s2"), true},
		{HistoryPrincipal, base, otherClient, false},
		{HistoryPrincipal, base, otherIssuer, false},
		{HistoryPrincipal, base, bob, false},
		{HistoryPrincipal, base, run(base, "r1"), false},
		{HistoryPrincipal, run(base, "r1"), run(base, "r2"), false},
		{HistoryPrincipal, run(base, "r1"), run(otherRoute, "r1"), true},
		{HistoryPrincipal, run(base, "r1"), run(bob, "r1"), false},
		{HistorySubject, base, otherClient, true},
		{HistorySubject, base, otherIssuer, false},
		{HistorySubject, base, bob, false},
		{HistorySubject, run(base, "r1"), run(otherClient, "r1"), true},
		{HistorySubject, run(base, "r1"), otherClient, false},
		{HistorySession, session(base, "s1"), session(otherRoute, "s1"), true},
		{HistorySession, session(base, "s1"), session(base, "s2"), false},
		{HistorySession, session(base, "s1"), session(bob, "s1"), false},
		{HistorySession, session(base, "s1"), session(otherClient, "s1"), false},
		{HistorySession, base, otherRoute, true}, // no session id: the principal's history
		{HistorySession, session(base, "s1"), base, false},
		{HistorySession, session(run(base, "r1"), "s1"), session(base, "s1"), false},
	} {
		s, err := CompileSequence(SequenceConfig{History: HistoryConfig{Scope: tt.scope}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.HistoryKey(tt.a) == s.HistoryKey(tt.b); got != tt.same {
			t.Errorf("%s: same key for %+v and %+v = %v, want %v", tt.scope, tt.a, tt.b, got, tt.same)
		}
	}
	// The session-less fallback of the session scope is the principal's
	// history, and the default scope is the principal.
	ps, _ := CompileSequence(SequenceConfig{}, nil)
	ss, _ := CompileSequence(SequenceConfig{History: HistoryConfig{Scope: HistorySession}}, nil)
	if ps.HistoryKey(base) != ss.HistoryKey(base) {
		t.Error("a request without a session id does not use the principal's history")
	}
	// Keys are derived as state.NewKey derives them.
	if seqKey("a", "bc", "") != state.NewKey("a", "bc", "") || seqKey(strings.Repeat("x", 300)) != state.NewKey(strings.Repeat("x", 300)) {
		t.Error("seqKey differs from state.NewKey")
	}
}

func TestAnnotationLabels(t *testing.T) {
	yes, no := true, false
	for _, tt := range []struct {
		readOnly, destructive, openWorld *bool
		want                             []string
	}{
		{nil, nil, nil, nil},
		{&no, &no, &no, nil},
		{&yes, nil, nil, []string{LabelReadOnly}},
		{nil, &yes, nil, []string{LabelDestructive}},
		{nil, nil, &yes, []string{LabelEgress, LabelUntrustedInput}},
		{&no, &yes, &yes, []string{LabelDestructive, LabelEgress, LabelUntrustedInput}},
		{&yes, &yes, &yes, []string{LabelDestructive, LabelEgress, LabelReadOnly, LabelUntrustedInput}},
	} {
		if diff := cmp.Diff(tt.want, AnnotationLabels(tt.readOnly, tt.destructive, tt.openWorld)); diff != "" {
			t.Errorf("AnnotationLabels(%v, %v, %v) (-want +got):\n%s", tt.readOnly, tt.destructive, tt.openWorld, diff)
		}
	}
}

func TestValidLabel(t *testing.T) {
	for l, want := range map[string]bool{
		"private_data": true, "pii:email": true, "a.b-c_9": true, strings.Repeat("a", 64): true,
		"": false, "Egress": false, "with space": false, "é": false, strings.Repeat("a", 65): false, "a/b": false,
	} {
		if got := ValidLabel(l); got != want {
			t.Errorf("ValidLabel(%q) = %v, want %v", l, got, want)
		}
	}
}

func TestMatcher(t *testing.T) {
	fail := func(string, error) { t.Fatal("unexpected compile error") }
	m, _ := compileMatcher(Matcher{Routes: []string{"mail"}, Tools: []string{"send", "post_*"}, Labels: []string{"egress", "share"}}, "m", fail)
	for _, tt := range []struct {
		route, tool string
		labels      []string
		want        bool
	}{
		{"mail", "send", []string{"egress"}, true},
		{"mail", "post_form", []string{"share", "x"}, true},
		{"docs", "send", []string{"egress"}, false},     // route
		{"mail", "receive", []string{"egress"}, false},  // tool
		{"mail", "post_a/b", []string{"egress"}, false}, // '*' stops at '/'
		{"mail", "send", []string{"private_data"}, false},
		{"mail", "send", nil, false},
	} {
		if got := m.match(tt.route, tt.tool, tt.labels); got != tt.want {
			t.Errorf("match(%q, %q, %v) = %v, want %v", tt.route, tt.tool, tt.labels, got, tt.want)
		}
	}
	if want := "tool send or post_* labelled egress or share on route mail"; m.desc != want {
		t.Errorf("desc = %q, want %q", m.desc, want)
	}
}
