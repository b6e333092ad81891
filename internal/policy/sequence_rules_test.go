package policy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// step is one call of a scenario and the decision expected for it.
type step struct {
	advance  time.Duration // before the call
	call     Call
	want     Outcome
	rule     string   // RuleID; "" for Allow
	reason   string   // substring of Reason
	required []string // for InsufficientScope
	result   []string // result labels added after an allowed call
}

// runScenario plays steps in order against one sequence and store.
func runScenario(t *testing.T, cfg SequenceConfig, steps []step) {
	t.Helper()
	s, st, clk := newSeq(t, cfg)
	ctx := context.Background()
	for i, sp := range steps {
		clk.Advance(sp.advance)
		d, err := s.Decide(ctx, st, sp.call)
		if err != nil {
			t.Fatalf("step %d (%s): %v", i, sp.call.Tool, err)
		}
		if d.Outcome != sp.want || d.RuleID != sp.rule || !strings.Contains(d.Reason, sp.reason) {
			t.Errorf("step %d (%s): got %v %q %q, want %v %q containing %q", i, sp.call.Tool, d.Outcome, d.RuleID, d.Reason, sp.want, sp.rule, sp.reason)
		}
		if d.Outcome == Allow && d.Reason != "" {
			t.Errorf("step %d: an allowed call has a reason %q", i, d.Reason)
		}
		if diff := cmp.Diff(sp.required, d.Required); diff != "" {
			t.Errorf("step %d: Required (-want +got):\n%s", i, diff)
		}
		if d.Outcome == Allow && sp.result != nil {
			if err := s.AddResultLabels(ctx, st, sp.call, sp.result); err != nil {
				t.Fatal(err)
			}
		}
	}
}

var trifecta = RuleConfig{ID: "no-exfil", Flow: &FlowRule{
	Taint: []string{LabelUntrustedInput, LabelPrivateData},
	To:    Matcher{Labels: []string{LabelEgress}},
}}

func TestFlowRule(t *testing.T) {
	cfg := SequenceConfig{Rules: []RuleConfig{trifecta}}
	read := alice("docs", "read_roadmap", LabelPrivateData)
	fetch := alice("web", "fetch_url", LabelUntrustedInput)
	send := alice("mail", "send_email", LabelEgress)
	search := alice("docs", "search")
	allow := func(c Call) step { return step{call: c, want: Allow} }
	denied := step{call: send, want: Deny, rule: "seq:no-exfil",
		reason: `tool "send_email" is not allowed by rule no-exfil: this run has handled data labelled untrusted_input and private_data, after which a tool labelled egress may not be called`}
	for name, steps := range map[string][]step{
		"the trifecta is refused":     {allow(read), allow(send), allow(fetch), denied, allow(search), denied},
		"every taint label is needed": {allow(read), allow(read), allow(send), allow(search), allow(send)},
		"reverse order is allowed":    {allow(send), allow(fetch), allow(send), allow(read)},
		"a call's own labels count only after it": {
			allow(read), allow(alice("web", "post_form", LabelUntrustedInput, LabelEgress)), denied,
		},
		"result labels taint the run": {
			{call: read, want: Allow, result: []string{LabelUntrustedInput}}, denied,
		},
		"labels from another principal do not count": {
			allow(read), allow(func() Call { c := fetch; c.Subject = "bob"; return c }()), allow(send),
		},
	} {
		t.Run(name, func(t *testing.T) { runScenario(t, cfg, steps) })
	}
}

func TestOrderRule(t *testing.T) {
	tools := func(names ...string) *Matcher { return &Matcher{Tools: names} }
	cfg := SequenceConfig{Rules: []RuleConfig{
		{ID: "deploy-after-tests", Order: &OrderRule{Call: *tools("deploy"), After: tools("run_tests")}},
		{ID: "refund-after-lookup", Order: &OrderRule{Call: *tools("refund"), After: tools("lookup_order"), SameArguments: []string{"order_id", "shop"}}},
		{ID: "no-double-refund", Order: &OrderRule{Call: *tools("refund"), NeverAfter: tools("refund"), SameArguments: []string{"order_id"}}},
		{ID: "no-push-after-reset", Order: &OrderRule{Call: *tools("git_push"), NeverAfter: tools("git_reset_*")}},
		{ID: "no-lookup-of-7", When: `call.tool == "lookup_order" && has(call.args.order_id) && call.args.order_id == 7`},
	}}
	c := func(tool string, kv ...string) Call { return withArgs(alice("shop", tool), kv...) }
	lookup := func(id string) Call { return c("lookup_order", "order_id", id, "shop", `"eu"`) }
	refund := func(id string) Call { return c("refund", "order_id", id, "shop", `"eu"`) }
	allow := func(c Call) step { return step{call: c, want: Allow} }
	needLookup := func(c Call) step {
		return step{call: c, want: Deny, rule: "seq:refund-after-lookup",
			reason: `tool "refund" is not allowed by rule refund-after-lookup: it may only be called after a call to tool lookup_order with the same order_id and shop in this run; make that call first`}
	}
	double := func(c Call) step {
		return step{call: c, want: Deny, rule: "seq:no-double-refund", reason: "it may not be called after a call to tool refund with the same order_id in this run"}
	}
	for name, steps := range map[string][]step{
		"after": {
			{call: c("deploy"), want: Deny, rule: "seq:deploy-after-tests", reason: "it may only be called after a call to tool run_tests in this run; make that call first"},
			allow(c("run_tests")), allow(c("deploy")), allow(c("deploy")),
		},
		"after with the same arguments": {
			needLookup(refund("1")), allow(lookup("1")), allow(refund("1")),
			needLookup(refund("2")), allow(lookup("2")), allow(refund("2")),
		},
		"arguments compare as JSON values": {
			allow(c("lookup_order", "order_id", `{"a":1,"b":[1.0,"x"]}`, "shop", `"eu"`)),
			allow(c("refund", "order_id", `{ "b" : [1, "\u0078"], "a" : 10e-1 }`, "shop", "\"\\u0065u\"")),
			allow(lookup("100")), allow(refund("1e2")),
			allow(lookup(`"A"`)), allow(refund(`"\u0041"`)),
		},
		"exact where a match allows": {
			allow(lookup("9007199254740992")), needLookup(refund("9007199254740993")),
			allow(lookup(`"abc"`)), needLookup(refund(`"ABC"`)), needLookup(refund(`"abc "`)),
			{call: refund(`"\ud800"`), want: Deny, rule: "seq:refund-after-lookup", reason: `argument "order_id" is missing or not a comparable JSON value`},
			allow(lookup(`1`)), needLookup(refund(`"1"`)),
		},
		"a missing argument refuses": {
			allow(lookup("1")),
			{call: c("refund", "order_id", "1"), want: Deny, rule: "seq:refund-after-lookup", reason: `argument "shop" is missing or not a comparable JSON value, and the rule compares it`},
			{call: c("refund", "shop", `"eu"`), want: Deny, rule: "seq:refund-after-lookup", reason: `argument "order_id" is missing`},
		},
		"a lookup without the argument is not remembered": {
			allow(c("lookup_order", "shop", `"eu"`)), needLookup(refund("null")),
			allow(lookup("null")), allow(refund("null")),
		},
		"a refused call is not remembered": {
			{call: lookup("7"), want: Deny, rule: "seq:no-lookup-of-7"}, needLookup(refund("7")),
		},
		"never after": {
			allow(c("git_push")), allow(c("git_status")), allow(c("git_push")), allow(c("git_reset_hard")),
			{call: c("git_push"), want: Deny, rule: "seq:no-push-after-reset", reason: "it may not be called after a call to tool git_reset_* in this run"},
		},
		"never after with the same arguments, compared loosely": {
			allow(lookup("1")), allow(refund("1")), double(refund("1.0")),
			allow(lookup("2")), allow(refund("2")),
			allow(lookup(`"ab"`)), allow(refund(`"ab"`)), allow(lookup(`"AB"`)), double(refund(`"AB"`)),
			allow(lookup("9007199254740992")), allow(refund("9007199254740992")), allow(lookup("9007199254740993")), double(refund("9007199254740993")),
			allow(lookup(`"3"`)), allow(refund(`"3"`)), allow(lookup(`3`)), double(refund(`3`)),
		},
	} {
		t.Run(name, func(t *testing.T) { runScenario(t, cfg, steps) })
	}
}

func TestBudgetRule(t *testing.T) {
	const window = 5 * time.Minute
	budget := func(per string) SequenceConfig {
		return SequenceConfig{Rules: []RuleConfig{{ID: "deletes", Budget: &BudgetRule{
			Match: Matcher{Labels: []string{LabelDestructive}}, Max: 3, Window: window, Per: per}}}}
	}
	del := alice("files", "delete_file", LabelDestructive)
	user := func(c Call, sub, client, run string) Call {
		c.Subject, c.ClientID, c.RunID = sub, client, run
		return c
	}
	allow := func(c Call, after time.Duration) step { return step{call: c, advance: after, want: Allow} }
	over := func(c Call, after time.Duration, retry string) step {
		return step{call: c, advance: after, want: Deny, rule: "seq:deletes",
			reason: "at most 3 calls to a tool labelled destructive are allowed per 5m per run; the next one is possible in " + retry}
	}
	for name, tt := range map[string]struct {
		cfg   SequenceConfig
		steps []step
	}{
		"max then refused": {budget(""), []step{allow(del, 0), allow(del, 0), allow(del, 0), over(del, 0, "5m"), allow(alice("files", "list"), 0)}},
		"window boundary: exactly window old no longer counts": {budget(""), []step{
			allow(del, 0), allow(del, time.Minute), allow(del, time.Minute),
			over(del, window-2*time.Minute-time.Nanosecond, "1s"), // the first is window-1ns old
			allow(del, time.Nanosecond),                           // now exactly window old
			over(del, 0, "1m"),
			allow(del, time.Minute), over(del, 0, "1m"),
		}},
		"refused calls use no budget": {budget(""), []step{
			allow(del, 0), allow(del, 0), allow(del, 0), over(del, time.Minute, "4m"), over(del, time.Minute, "3m"), allow(del, 3*time.Minute),
		}},
		"per session: runs are separate": {budget(PerSession), []step{
			allow(user(del, "alice", "agent", "r1"), 0), allow(user(del, "alice", "agent", "r1"), 0), allow(user(del, "alice", "agent", "r1"), 0),
			over(user(del, "alice", "agent", "r1"), 0, "5m"),
			allow(user(del, "alice", "agent", "r2"), 0), allow(user(del, "alice", "other", "r1"), 0), allow(user(del, "bob", "agent", "r1"), 0),
		}},
		"per subject: shared across clients and runs, not users": {budget(PerSubject), []step{
			allow(user(del, "alice", "agent", "r1"), 0), allow(user(del, "alice", "other", ""), 0), allow(user(del, "alice", "agent", "r2"), 0),
			{call: user(del, "alice", "third", ""), want: Deny, rule: "seq:deletes", reason: "per 5m per user"},
			allow(user(del, "bob", "agent", "r1"), 0),
		}},
		"per client: shared across users, not clients": {budget(PerClient), []step{
			allow(user(del, "alice", "agent", ""), 0), allow(user(del, "bob", "agent", ""), 0), allow(user(del, "carol", "agent", "r9"), 0),
			{call: user(del, "dave", "agent", ""), want: Deny, rule: "seq:deletes", reason: "per 5m per client"},
			allow(user(del, "alice", "other", ""), 0),
		}},
	} {
		t.Run(name, func(t *testing.T) { runScenario(t, tt.cfg, tt.steps) })
	}
}

func TestDecisionSemantics(t *testing.T) {
	del := alice("files", "delete_file", LabelDestructive)
	fires := func(id, action, scope string) RuleConfig {
		return RuleConfig{ID: id, Action: action, Scope: scope, When: `"destructive" in call.labels`}
	}
	admin := func(c Call, scopes ...string) Call { c.Grant = testGrant(scopes...); return c }
	for name, tt := range map[string]struct {
		rules []RuleConfig
		steps []step
	}{
		"deny beats an earlier step_up": {
			[]RuleConfig{fires("confirm", ActionStepUp, "files:admin"), fires("never", "", "")},
			[]step{{call: del, want: Deny, rule: "seq:never", reason: `tool "delete_file" is not allowed by rule never: the call meets the rule's condition`}},
		},
		"deny beats a later step_up": {
			[]RuleConfig{fires("never", "", ""), fires("confirm", ActionStepUp, "files:admin")},
			[]step{{call: del, want: Deny, rule: "seq:never"}},
		},
		"step_up asks for its scope": {
			[]RuleConfig{fires("confirm", ActionStepUp, "files:admin")},
			[]step{{call: del, want: InsufficientScope, rule: "seq:confirm", required: []string{"files:admin"},
				reason: `tool "delete_file" requires scope "files:admin" (rule confirm): the call meets the rule's condition`}},
		},
		"step_up rules ask together": {
			[]RuleConfig{fires("b", ActionStepUp, "z:admin"), fires("a", ActionStepUp, "a:admin"), fires("c", ActionStepUp, "z:admin")},
			[]step{{call: del, want: InsufficientScope, rule: "seq:b", required: []string{"a:admin", "z:admin"}, reason: `requires scopes "a:admin z:admin" (rule b)`}},
		},
		"step_up satisfied by the scope, also through the hierarchy": {
			[]RuleConfig{fires("confirm", ActionStepUp, "docs:read"), fires("other", ActionStepUp, "files:admin")},
			[]step{
				{call: admin(del, "docs:read", "files:admin"), want: Allow},
				{call: func() Call {
					c := del
					c.Grant = testHierarchy(t).Expand([]string{"docs:admin", "files:admin"})
					return c
				}(), want: Allow},
				{call: admin(del, "files:admin"), want: InsufficientScope, rule: "seq:confirm", required: []string{"docs:read"}},
			},
		},
		"a custom message is the reason": {
			[]RuleConfig{{ID: "m", Message: "Deleting is paused; archive the file with archive_file instead.", When: "true"}},
			[]step{{call: del, want: Deny, rule: "seq:m", reason: "Deleting is paused; archive the file with archive_file instead."}},
		},
		"a rule that errs denies": {
			[]RuleConfig{{ID: "size", When: `call.args.size > 10`}},
			[]step{
				{call: withArgs(del, "size", "11"), want: Deny, rule: "seq:size"},
				{call: withArgs(del, "size", "9"), want: Allow},
				{call: del, want: Deny, rule: "seq:size", reason: `tool "delete_file" is refused: rule size could not be evaluated (no such key: size)`},
				{call: withArgs(del, "size", `"big"`), want: Deny, rule: "seq:size", reason: "could not be evaluated (no such overload"},
			},
		},
		"an erring step_up rule denies too": {
			[]RuleConfig{{ID: "s", Action: ActionStepUp, Scope: "x", When: `call.args.missing == 1`}},
			[]step{{call: del, want: Deny, rule: "seq:s"}, {call: admin(del, "x"), want: Allow}},
		},
		"no principal, bad tool names and labels are refused": {
			[]RuleConfig{},
			[]step{
				{call: func() Call { c := del; c.Subject = ""; return c }(), want: Deny, rule: "seq:identity"},
				{call: func() Call { c := del; c.Issuer = ""; return c }(), want: Deny, rule: "seq:identity"},
				{call: alice("files", ""), want: Deny, rule: "seq:invalid", reason: "the tool name must be 1 to 1024 bytes long"},
				{call: alice("files", strings.Repeat("x", 1025)), want: Deny, rule: "seq:invalid"},
				{call: alice("files", "t", "Bad Label"), want: Deny, rule: "seq:invalid", reason: `tool "t" has an invalid label "Bad Label"`},
				{call: alice("files", "t", strings.Split("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", ",")...), want: Deny, rule: "seq:invalid", reason: "more than 16 labels"},
				{call: alice("files", strings.Repeat("x", 1024), strings.Split("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p", ",")...), want: Allow},
			},
		},
	} {
		t.Run(name, func(t *testing.T) { runScenario(t, SequenceConfig{Rules: tt.rules}, tt.steps) })
	}
}
