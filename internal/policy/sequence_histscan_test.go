package policy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/state"
)

// scanGen builds random history predicates from the forms that run
// natively, and some that must stay with CEL.
type scanGen struct{ r *rand.Rand }

var (
	genTools  = []string{"search", "export", "read_doc", "x"}
	genRoutes = []string{"docs", "mail"}
	genLabels = []string{"secrets", "egress", "private_data"}
)

func (g scanGen) pick(s []string) string { return s[g.r.IntN(len(s))] }

// pred returns a predicate over the entry variable v.
func (g scanGen) pred(v string, depth int) string {
	if depth <= 0 {
		switch g.r.IntN(8) {
		case 0:
			return fmt.Sprintf("%s.tool == %q", v, g.pick(genTools))
		case 1:
			return fmt.Sprintf("%q != %s.route", g.pick(genRoutes), v)
		case 2:
			return fmt.Sprintf("%q in %s.labels", g.pick(genLabels), v)
		case 3:
			return fmt.Sprintf("%s.tool in [%q, %q]", v, g.pick(genTools), g.pick(genTools))
		case 4:
			return fmt.Sprintf("%q == %s.tool", g.pick(genTools), v)
		case 5:
			return []string{"true", "false"}[g.r.IntN(2)]
		case 6: // not native: a function of the entry
			return fmt.Sprintf("%s.tool.startsWith(%q)", v, g.pick(genTools)[:1])
		default: // not native: the call's own fields
			return fmt.Sprintf("%s.tool == call.tool", v)
		}
	}
	switch g.r.IntN(4) {
	case 0:
		return "(" + g.pred(v, depth-1) + " && " + g.pred(v, depth-1) + ")"
	case 1:
		return "(" + g.pred(v, depth-1) + " || " + g.pred(v, depth-1) + ")"
	case 2:
		return "!(" + g.pred(v, depth-1) + ")"
	}
	return g.pred(v, depth-1)
}

// expr returns a rule condition over the history.
func (g scanGen) expr() string {
	p := g.pred("e", g.r.IntN(3))
	switch g.r.IntN(7) {
	case 0:
		return "session.history.exists(e, " + p + ")"
	case 1:
		return "session.history.all(e, " + p + ")"
	case 2:
		return "session.history.exists_one(e, " + p + ")"
	case 3:
		return fmt.Sprintf("session.history.filter(e, %s).size() >= %d", p, g.r.IntN(4))
	case 4:
		return fmt.Sprintf("size(session.history.filter(e, %s)) == %d", p, g.r.IntN(4))
	case 5: // nested in another comprehension, and beside one CEL keeps
		return "[1, 2].exists(n, n == 2 && session.history.exists(e, " + p + ")) || session.history.exists(i, e, i > 99 && " + p + ")"
	default: // combined with other terms
		return "call.tool == \"send\" && !session.history.all(e, " + p + ")"
	}
}

// history returns n random calls.
func (g scanGen) history(n int) []Call {
	out := make([]Call, n)
	for i := range out {
		var labels []string
		for _, l := range genLabels {
			if g.r.IntN(3) == 0 {
				labels = append(labels, l)
			}
		}
		out[i] = Call{Issuer: "i", Subject: "alice", ClientID: "agent", Route: g.pick(genRoutes), Tool: g.pick(genTools), Labels: labels}
	}
	return out
}

// checkNativeAgrees decides the same call on the same history with the
// rule interpreted by CEL and with its native scans, and reports any
// difference.
func checkNativeAgrees(t *testing.T, expr string, hist []Call) {
	t.Helper()
	decide := func(interpretOnly bool) (Decision, int) {
		clk := newFakeClock()
		s, err := CompileSequence(SequenceConfig{Rules: []RuleConfig{{ID: "scan", When: expr}}, interpretOnly: interpretOnly}, clk.Now)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		st := state.NewMemory(state.MemoryConfig{MaxEntries: 1000, IdleTimeout: time.Hour, Now: clk.Now})
		ctx := context.Background()
		for _, c := range hist {
			clk.Advance(time.Second)
			// The history is recorded by a sequence without rules.
			rec, _ := CompileSequence(SequenceConfig{}, clk.Now)
			if _, err := rec.Decide(ctx, st, c); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(time.Second)
		d, err := s.Decide(ctx, st, Call{Issuer: "i", Subject: "alice", ClientID: "agent", Route: "mail", Tool: "send"})
		if err != nil {
			t.Fatal(err)
		}
		return d, len(s.scans)
	}
	want, none := decide(true)
	got, scans := decide(false)
	if none != 0 {
		t.Fatalf("interpret-only compiled %d native scans", none)
	}
	if got.Outcome != want.Outcome || got.RuleID != want.RuleID {
		t.Fatalf("%s over %d calls: native %v %q, CEL %v %q", expr, len(hist), got.Outcome, got.RuleID, want.Outcome, want.RuleID)
	}
	if strings.Contains(expr, "startsWith") || strings.Contains(expr, "== call.tool") {
		return
	}
	if scans == 0 && !strings.HasPrefix(expr, "[1, 2]") {
		t.Fatalf("%s: no native scan", expr)
	}
}

// TestNativeScansAgreeWithCEL: random rules over random histories give
// the same decision with native scans as with CEL alone.
func TestNativeScansAgreeWithCEL(t *testing.T) {
	g := scanGen{rand.New(rand.NewPCG(1, 2))}
	for range 300 {
		checkNativeAgrees(t, g.expr(), g.history(g.r.IntN(12)))
	}
}

func FuzzNativeScans(f *testing.F) {
	f.Add(uint64(1), uint8(5))
	f.Add(uint64(42), uint8(0))
	f.Fuzz(func(t *testing.T, seed uint64, n uint8) {
		g := scanGen{rand.New(rand.NewPCG(seed, uint64(n)))}
		checkNativeAgrees(t, g.expr(), g.history(int(n%40)))
	})
}

// TestNativeScanForms: which forms run natively.
func TestNativeScanForms(t *testing.T) {
	for _, tc := range []struct {
		expr   string
		native int
	}{
		{`session.history.exists(e, e.tool == "x")`, 1},
		{`session.history.all(e, e.route != "x" || "y" in e.labels)`, 1},
		{`session.history.exists_one(e, e.tool in ["a", "b"])`, 1},
		{`session.history.filter(e, "y" in e.labels).size() > 2 && size(session.history.filter(e, !(e.tool == "b"))) < 5`, 2},
		{`session.history.exists(e, e.tool == "x") || session.history.exists(e, e.tool == "y")`, 2},
		{`session.history.exists(e, e.tool == call.tool)`, 0},                    // another variable
		{`session.history.exists(e, e.tool.startsWith("x"))`, 0},                 // a function
		{`session.history.exists(e, e.at > now - duration("1h"))`, 0},            // a timestamp
		{`session.history.exists(i, e, i > 0 && e.tool == "x")`, 0},              // two variables
		{`session.history.map(e, e.tool).exists(t, t == "x")`, 0},                // not the history itself
		{`session.history.filter(e, e.tool == "x").exists(f, f.tool == "y")`, 0}, // over a filtered list
	} {
		clk := newFakeClock()
		s, err := CompileSequence(SequenceConfig{Rules: []RuleConfig{{ID: "r", When: tc.expr}}}, clk.Now)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		if len(s.scans) != tc.native {
			t.Errorf("%s: %d native scans, want %d", tc.expr, len(s.scans), tc.native)
		}
	}
}

// TestNativeScanCostCounted: a native scan inside a loop over the history
// costs what CEL's own would at run time, so the rule exceeds the cost
// limit and denies, as without native scans.
func TestNativeScanCostCounted(t *testing.T) {
	hist := make([]Call, 1000)
	for i := range hist {
		hist[i] = Call{Issuer: "i", Subject: "alice", ClientID: "agent", Route: "docs", Tool: "search"}
	}
	expr := `session.history.filter(a, session.history.exists(b, b.tool == "export")).size() > 0`
	for _, interpretOnly := range []bool{true, false} {
		clk := newFakeClock()
		s, err := CompileSequence(SequenceConfig{Rules: []RuleConfig{{ID: "nested", When: expr}}, interpretOnly: interpretOnly}, clk.Now)
		if err != nil {
			t.Fatal(err)
		}
		st := state.NewMemory(state.MemoryConfig{MaxEntries: 1000, IdleTimeout: time.Hour, Now: clk.Now})
		rec, _ := CompileSequence(SequenceConfig{}, clk.Now)
		ctx := context.Background()
		for _, c := range hist {
			if _, err := rec.Decide(ctx, st, c); err != nil {
				t.Fatal(err)
			}
		}
		d, err := s.Decide(ctx, st, Call{Issuer: "i", Subject: "alice", ClientID: "agent", Route: "mail", Tool: "send"})
		if err != nil {
			t.Fatal(err)
		}
		if d.Outcome != Deny || !strings.Contains(d.Reason, "cost") {
			t.Errorf("interpretOnly=%v: %+v, want a denial for the cost limit", interpretOnly, d)
		}
	}
}
