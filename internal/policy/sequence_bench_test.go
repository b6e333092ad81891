package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/state"
)

// benchRules are 20 rules of every form: 5 flow, 5 order, 5 budget and 5
// CEL rules over precomputed features (taint, counts, call, scopes,
// request). None fires for the benchmarked call, so all are evaluated.
func benchRules() []RuleConfig {
	m := func(tools ...string) *Matcher { return &Matcher{Tools: tools} }
	return []RuleConfig{
		{ID: "no-exfil", Flow: &FlowRule{Taint: []string{"untrusted_input", "private_data"}, To: Matcher{Labels: []string{"egress"}}}},
		{ID: "secret-to-web", Flow: &FlowRule{Taint: []string{"secret"}, To: Matcher{Tools: []string{"http_*"}}}},
		{ID: "pii-to-mail", Flow: &FlowRule{Taint: []string{"pii"}, To: Matcher{Routes: []string{"mail"}}}},
		{ID: "untrusted-destroy", Action: ActionStepUp, Scope: "admin", Flow: &FlowRule{Taint: []string{"untrusted_input"}, To: Matcher{Labels: []string{"destructive"}}}},
		{ID: "finance-out", Flow: &FlowRule{Taint: []string{"finance"}, To: Matcher{Labels: []string{"egress", "share"}}}},
		{ID: "refund-after-lookup", Order: &OrderRule{Call: *m("refund"), After: m("lookup_order"), SameArguments: []string{"order_id"}}},
		{ID: "no-double-refund", Order: &OrderRule{Call: *m("refund"), NeverAfter: m("refund"), SameArguments: []string{"order_id"}}},
		{ID: "deploy-after-tests", Order: &OrderRule{Call: *m("deploy"), After: m("run_tests")}},
		{ID: "no-push-after-reset", Order: &OrderRule{Call: *m("git_push"), NeverAfter: m("git_reset_hard")}},
		{ID: "search-after-login", Order: &OrderRule{Call: Matcher{Routes: []string{"docs"}, Tools: []string{"search"}}, After: m("login", "search")}},
		{ID: "deletes", Budget: &BudgetRule{Match: Matcher{Labels: []string{"destructive"}}, Max: 3, Window: 5 * time.Minute}},
		{ID: "search-rate", Budget: &BudgetRule{Match: *m("search"), Max: 1000, Window: time.Minute}},
		{ID: "user-rate", Budget: &BudgetRule{Match: *m("*"), Max: 1000, Window: time.Minute, Per: PerSubject}},
		{ID: "client-rate", Budget: &BudgetRule{Match: *m("*"), Max: 1000, Window: time.Minute, Per: PerClient}},
		{ID: "egress-rate", Budget: &BudgetRule{Match: Matcher{Labels: []string{"egress"}}, Max: 10, Window: time.Hour}},
		{ID: "cel-send", When: `"private_data" in session.taint && call.tool.startsWith("send_")`},
		{ID: "cel-count", When: `session.counts["docs/search"] > 1000000`},
		{ID: "cel-risk", When: `request.headers["x-risk"] == "high" && "destructive" in call.labels`},
		{ID: "cel-admin", When: `call.tool == "admin_panel" && !("admin" in scopes)`},
		{ID: "cel-night", When: `"destructive" in call.labels && now.getHours() < 6`},
	}
}

type benchClock struct{ t time.Time }

func (c *benchClock) now() time.Time { return c.t }

// benchSetup returns a sequence over benchRules, a store holding a history
// of n calls (the store keeps exactly n), and the call to decide.
func benchSetup(b testing.TB, n int) (*Sequence, *state.Memory, Call, *benchClock) {
	clk := &benchClock{t: time.Unix(1_800_000_000, 0)}
	s, err := CompileSequence(SequenceConfig{Rules: benchRules()}, clk.now)
	if err != nil {
		b.Fatal(err)
	}
	st := state.NewMemory(state.MemoryConfig{MaxEntries: n, IdleTimeout: 24 * time.Hour, Now: clk.now})
	c := Call{
		Issuer: "https://idp.example", Subject: "alice", ClientID: "agent",
		Grant: testGrant("docs:read", "mail:send"),
		Route: "docs", Tool: "search", Labels: []string{"private_data"},
		Args:    map[string]json.RawMessage{"q": json.RawMessage(`"roadmap"`)},
		Headers: map[string]string{"x-risk": "low"},
	}
	ctx := context.Background()
	for i := range n {
		clk.t = clk.t.Add(100 * time.Millisecond)
		h := c
		h.Tool = []string{"login", "search", "read_doc", "list"}[i%4]
		if d, err := s.Decide(ctx, st, h); err != nil || d.Outcome != Allow {
			b.Fatalf("history call %d: %+v %v", i, d, err)
		}
	}
	return s, st, c, clk
}

func testGrant(scopes ...string) Grant { return (*Hierarchy)(nil).Expand(scopes) }

// BenchmarkSequenceDecide: 20 rules over precomputed features, with
// histories of 10, 100 and 1000 calls; the call is allowed and recorded.
func BenchmarkSequenceDecide(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("history=%d", n), func(b *testing.B) {
			s, st, c, clk := benchSetup(b, n)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				clk.t = clk.t.Add(100 * time.Millisecond)
				if d, err := s.Decide(ctx, st, c); err != nil || d.Outcome != Allow {
					b.Fatalf("%+v %v", d, err)
				}
			}
		})
	}
}

// BenchmarkSequenceDecideOrderedCEL: one CEL rule over the raw history of
// 100 calls. The benchmark cycles through 100 calls (two of them
// read_secret, none labelled untrusted_input) and the store keeps the
// last 100, so the history always has the same composition; no call is
// refused, so every scan runs to its end:
//   - exists: one scan for a tool never called;
//   - pair: an ordered pair, "an untrusted_input call after a read_secret
//     call", with the native index functions;
//   - pair-nested: the same pair as nested comprehensions (the inner scan
//     runs for each read_secret). Its worst case over 1000 calls exceeds
//     CELCostLimit, so it runs with run-time cost accounting.
func BenchmarkSequenceDecideOrderedCEL(b *testing.B) {
	for _, tc := range []struct{ name, when string }{
		{"exists", `session.history.exists(h, h.tool == "delete_repo")`},
		{"pair", `session.firstCall("read_secret") >= 0 && session.lastLabelled("untrusted_input") > session.firstCall("read_secret")`},
		{"pair-nested", `session.history.exists(i, h, h.tool == "read_secret" &&
			session.history.exists(j, k, j > i && "untrusted_input" in k.labels))`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const n = 100
			clk := &benchClock{t: time.Unix(1_800_000_000, 0)}
			s, err := CompileSequence(SequenceConfig{Rules: []RuleConfig{{ID: "ordered", When: tc.when}}}, clk.now)
			if err != nil {
				b.Fatal(err)
			}
			st := state.NewMemory(state.MemoryConfig{MaxEntries: n, IdleTimeout: 24 * time.Hour, Now: clk.now})
			calls := make([]Call, n)
			for i := range calls {
				c := Call{Issuer: "i", Subject: "alice", ClientID: "agent", Route: "docs", Tool: []string{"search", "read_doc", "list"}[i%3], Labels: []string{"private_data"}}
				if i == 10 || i == 60 {
					c.Route, c.Tool = "vault", "read_secret"
				}
				calls[i] = c
			}
			ctx := context.Background()
			for i := range n {
				if _, err := s.Decide(ctx, st, calls[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				clk.t = clk.t.Add(time.Millisecond)
				if d, err := s.Decide(ctx, st, calls[i%n]); err != nil || d.Outcome != Allow {
					b.Fatalf("%+v %v", d, err)
				}
				i++
			}
		})
	}
}

// BenchmarkHistoryScan: one CEL rule scanning a history of 1000 calls
// (the most CEL sees) to its end, the forms rules over the raw history
// take: a field, a label, a filtered count.
//
//	go test ./internal/policy -run '^$' -bench HistoryScan -benchmem
func BenchmarkHistoryScan(b *testing.B) {
	for _, tc := range []struct{ name, when string }{
		{"exists-tool", `session.history.exists(e, e.tool == "delete_repo")`},
		{"exists-tool-label", `session.history.exists(e, e.tool == "export" && "secrets" in e.labels)`},
		{"filter-label", `session.history.filter(e, "destructive" in e.labels).size() > 10`},
		{"exists-index", `session.history.exists(i, e, i > 2000 && e.route == "x")`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const n = 1000
			clk := &benchClock{t: time.Unix(1_800_000_000, 0)}
			s, err := CompileSequence(SequenceConfig{Rules: []RuleConfig{{ID: "scan", When: tc.when}}}, clk.now)
			if err != nil {
				b.Fatal(err)
			}
			st := state.NewMemory(state.MemoryConfig{MaxEntries: n, IdleTimeout: 24 * time.Hour, Now: clk.now})
			ctx := context.Background()
			calls := make([]Call, n)
			for i := range calls {
				calls[i] = Call{Issuer: "i", Subject: "alice", ClientID: "agent", Route: "docs",
					Tool: []string{"search", "read_doc", "export"}[i%3], Labels: []string{"private_data", "read_only"}}
			}
			for i := range n {
				clk.t = clk.t.Add(time.Millisecond)
				if _, err := s.Decide(ctx, st, calls[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				clk.t = clk.t.Add(time.Millisecond)
				if d, err := s.Decide(ctx, st, calls[i%n]); err != nil || d.Outcome != Allow {
					b.Fatalf("%+v %v", d, err)
				}
				i++
			}
		})
	}
}
