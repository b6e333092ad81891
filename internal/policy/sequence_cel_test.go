package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"cel.dev/cel-go/common/types"

	"github.com/mcpgate/mcpgate/internal/state"
)

// celCase runs a CEL rule, applied to send_email calls only, after a
// two-call history (read_doc at t0, fetch_url at t0+1m) for a send_email
// call at t0+2m, and returns the decision.
func celCase(t *testing.T, when string, extra func(context.Context, *Sequence, state.Store)) Decision {
	t.Helper()
	s, st, clk := newSeq(t, SequenceConfig{Rules: []RuleConfig{{ID: "t", When: `call.tool == "send_email" && (` + when + `)`}}})
	ctx := context.Background()
	for _, c := range []Call{alice("docs", "read_doc", LabelPrivateData), alice("web", "fetch_url", LabelUntrustedInput)} {
		if d, err := s.Decide(ctx, st, c); err != nil || d.Outcome != Allow {
			t.Fatalf("setup %s (rule %q): %+v %v", c.Tool, when, d, err)
		}
		clk.Advance(time.Minute)
	}
	if extra != nil {
		extra(ctx, s, st)
	}
	c := withArgs(alice("mail", "send_email", LabelEgress),
		"to", `"x@example.com"`, "n", "2", "obj", `{"k":["a","b"]}`, "flag", "true", "none", "null")
	c.Grant = testHierarchy(t).Expand([]string{"docs:admin", "mail:send"})
	c.ClientIP = "203.0.113.9"
	c.Headers = map[string]string{"x-device": "managed"}
	d, err := s.Decide(ctx, st, c)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCELVariables(t *testing.T) {
	for _, expr := range []string{
		`issuer == "https://idp.example" && subject == "alice" && client_id == "agent"`,
		`"docs:read" in scopes && "docs:admin" in scopes && "mail:send" in scopes && size(scopes) == 4`,
		`route == "mail" && call.tool == "send_email" && call.labels == ["egress"]`,
		`call.args.to == "x@example.com" && call.args.n == 2 && call.args.n == 2.0 && call.args.n > 1 && call.args.n < 2.5`,
		`call.args.obj.k[1] == "b" && call.args.flag && call.args.none == null && size(call.args) == 5`,
		`has(call.args.to) && !has(call.args.zzz) && call.args.?zzz.orValue(5) == 5`,
		`size(session.history) == 2 && session.history[0].tool == "read_doc" && session.history[0].route == "docs"`,
		`"private_data" in session.history[0].labels && session.history[1].labels == ["untrusted_input"]`,
		`session.history[1].at == now - duration("1m") && session.history[0].at < session.history[1].at`,
		`now == timestamp("2027-01-15T08:02:00Z")`,
		`session.taint == ["private_data", "untrusted_input"]`,
		`session.counts["docs/read_doc"] == 1 && session.counts["mail/never"] == 0 && size(session.counts) == 2`,
		`"docs/read_doc" in session.counts && !("mail/never" in session.counts)`,
		`session.counts.all(k, k.contains("/")) && session.counts == {"docs/read_doc": 1, "web/fetch_url": 1}`,
		`request.client_ip == "203.0.113.9" && request.headers["x-device"] == "managed" && !("x-risk" in request.headers)`,
		`session.firstCall("read_doc") == 0 && session.lastCall("fetch_url") == 1 && session.firstCall("nope") == -1`,
		`session.firstLabelled("private_data") == 0 && session.lastLabelled("untrusted_input") == 1 && session.lastLabelled("egress") == -1`,
		`session.history.exists(i, h, i == 1 && h.tool == "fetch_url")`,
		`session.history.map(h, h.tool) == ["read_doc", "fetch_url"]`,
		`session.history.slice(1, 2)[0].tool == "fetch_url" && session.history.reverse()[0].tool == "fetch_url"`,
		`size(session.history + session.history) == 4 && session.history[0] in session.history`,
		`session.history[0] == session.history[0] && session.history[0] != session.history[1] && session.history == session.history`,
		`session.history.filter(h, "untrusted_input" in h.labels).size() == 1`,
		`session.history[0].labels[0] == "private_data" && size(session.history[0].labels) == 1 && session.history[1].labels.size() == 1`,
		`session.history[0].labels.exists(l, l == "private_data") && session.history[0].labels.map(l, l + "!") == ["private_data!"]`,
		`session.history[0].labels + ["x"] == ["private_data", "x"] && ["private_data"] == session.history[0].labels`,
		`!("egress" in session.history[0].labels) && session.history.map(h, h.route) == ["docs", "web"] && session.history[1].route.startsWith("we")`,
	} {
		if d := celCase(t, expr, nil); d.Outcome != Deny || d.RuleID != "seq:t" {
			t.Errorf("%s: %+v, want it to hold (the rule fires)", expr, d)
		}
	}
	if d := celCase(t, `call.tool == "other"`, nil); d.Outcome != Allow {
		t.Errorf("a false condition: %+v", d)
	}
}

func TestCELErrorsDeny(t *testing.T) {
	longHistory := func(ctx context.Context, s *Sequence, st state.Store) {
		for range 300 {
			if d, err := s.Decide(ctx, st, alice("vault", "read_secret")); err != nil || d.Outcome != Allow {
				t.Fatalf("%+v %v", d, err)
			}
		}
	}
	bigTaint := func(ctx context.Context, s *Sequence, st state.Store) {
		var labels []string
		for i := range 5000 {
			labels = append(labels, fmt.Sprint("l", i))
		}
		if err := s.AddResultLabels(ctx, st, alice("", "x"), labels); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		expr   string
		extra  func(context.Context, *Sequence, state.Store)
		reason string
	}{
		{`session.history[5].tool == "x"`, nil, "index out of bounds: 5"},
		{`call.args.missing == "x"`, nil, "no such key: missing"},
		{`int(call.args.to) > 0`, nil, "could not be evaluated"},
		{`timestamp(call.args.to + "\n\u202e") > now`, nil, `a value it reads is missing or of the wrong type`}, // the value is never echoed
		{`1 / (size(call.labels) - 1) == 0`, nil, "division by zero"},
		// Nested scans of a long history exceed the cost limit.
		{`session.history.exists(i, h, h.tool == "read_secret" && session.history.exists(j, k, j > i && "untrusted_input" in k.labels))`, longHistory, "cost limit exceeded"},
		// A rule estimated to fit runs unaccounted only while the inputs
		// are within the estimate's bounds: a huge taint is accounted.
		{`session.taint.exists(l, l.startsWith("zz") || l.endsWith("zz") || l.contains("zz"))`, bigTaint, "cost limit exceeded"},
	} {
		d := celCase(t, tt.expr, tt.extra)
		if d.Outcome != Deny || d.RuleID != "seq:t" || !strings.Contains(d.Reason, tt.reason) || !strings.HasPrefix(d.Reason, `tool "send_email" is refused: rule t could not be evaluated (`) {
			t.Errorf("%s: %+v, want a denial naming the rule and %q", tt.expr, d, tt.reason)
		}
	}
}

func TestCELAccounting(t *testing.T) {
	envs, err := newCELEnvs()
	if err != nil {
		t.Fatal(err)
	}
	for expr, fast := range map[string]bool{
		`"private_data" in session.taint && call.tool.startsWith("send_")`:          true,
		`session.counts["docs/search"] > 10 && request.headers["x-risk"] == "high"`: true,
		`session.history.exists(h, h.tool == "read_secret")`:                        true,
		`session.history.exists(h, "untrusted_input" in h.labels)`:                  true,
		`session.firstCall("a") >= 0 && session.lastLabelled("b") > 0`:              true,
		`session.history.exists(i, h, session.history.exists(j, k, j > i))`:         false, // quadratic
		`session.history.exists(h, h.tool.matches(call.tool))`:                      false, // regexes built per entry
		`has(call.args.x)`: false, // arguments: always accounted
		`call.args.x == 1`: false,
		`call.args.list.exists(a, call.args.list.exists(b, a == b))`:                          false,
		`lists.range(1000).exists(i, lists.range(1000).exists(j, i == j))`:                    false,
		`request.headers.exists(k, v, v.contains("x")) && scopes.exists(s, s == "a")`:         true,
		`session.taint.exists(l, l.startsWith("zz") || l.endsWith("zz") || l.contains("zz"))`: true,
	} {
		p, err := envs.compile(expr, false)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if got := p.fast != nil; got != fast {
			t.Errorf("%s: unaccounted %v, want %v (estimate %+v)", expr, got, fast, p.estimate)
		}
		if p.fast != nil && p.estimate.Max > CELCostLimit {
			t.Errorf("%s runs unaccounted with an estimate of %d", expr, p.estimate.Max)
		}
	}
}

func TestCELInputBounds(t *testing.T) {
	base := func() *evalCtx {
		c := alice("docs", "search")
		c.Headers = map[string]string{"x-device": "managed"}
		return &evalCtx{c: &c, tool: c.Tool, labels: []string{"a"}, hist: &state.History{Taint: []string{"a"}, Counts: map[string]int{"a/b": 1}}}
	}
	long := strings.Repeat("x", celMaxString+1)
	many := func(n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprint(i)
		}
		return s
	}
	for name, tt := range map[string]struct {
		mod  func(*evalCtx)
		want bool
	}{
		"ok":              {func(*evalCtx) {}, true},
		"long tool":       {func(e *evalCtx) { e.tool = long }, false},
		"long subject":    {func(e *evalCtx) { e.c.Subject = long }, false},
		"long ip":         {func(e *evalCtx) { e.c.ClientIP = long }, false},
		"long header":     {func(e *evalCtx) { e.c.Headers["x"] = long }, false},
		"long header key": {func(e *evalCtx) { e.c.Headers[long] = "x" }, false},
		"many headers": {func(e *evalCtx) {
			for i := range celMaxHeaders {
				e.c.Headers[fmt.Sprint(i)] = "x"
			}
		}, false},
		"many labels": {func(e *evalCtx) { e.labels = many(celMaxLabels + 1) }, false},
		"large taint": {func(e *evalCtx) { e.hist.Taint = many(celMaxTaint + 1) }, false},
		"many counts": {func(e *evalCtx) {
			for i := range celMaxCounts {
				e.hist.Counts[fmt.Sprint(i)] = 1
			}
		}, false},
		"many scopes": {func(e *evalCtx) { e.c.Grant = testGrant(many(celMaxScopes + 1)...) }, false},
		"long scope":  {func(e *evalCtx) { e.c.Grant = testGrant(long) }, false},
	} {
		e := base()
		tt.mod(e)
		if got := e.withinBounds(); got != tt.want {
			t.Errorf("%s: withinBounds = %v, want %v", name, got, tt.want)
		}
	}
}

func TestCELHistoryView(t *testing.T) {
	// session.history shows the newest celMaxHistory calls of a longer
	// history; the index functions see the same view.
	h := &state.History{}
	for i := range celMaxHistory + 5 {
		h.Entries = append(h.Entries, state.Entry{Tool: fmt.Sprint("t", i)})
	}
	envs, _ := newCELEnvs()
	c := alice("r", "x")
	for _, expr := range []string{
		fmt.Sprintf(`size(session.history) == %d && session.history[0].tool == "t5"`, celMaxHistory),
		`session.firstCall("t4") == -1 && session.firstCall("t5") == 0`,
	} {
		p, err := envs.compile(expr, false)
		if err != nil {
			t.Fatal(err)
		}
		e := &evalCtx{c: &c, tool: c.Tool, hist: h}
		if ok, err := e.eval(p); !ok || err != nil {
			t.Errorf("%s: %v %v", expr, ok, err)
		}
	}
}

func TestCELErrText(t *testing.T) {
	for in, want := range map[string]string{
		"no such key: x":                               "no such key: x",
		"no such key: \n\u202e\x00":                    `no such key: \n\u202e\x00`,
		"no such key: " + strings.Repeat("é", 100):     "no such key: " + strings.Repeat(`\u00e9`, 73) + "...",
		`invalid RFC 3339 timestamp "SECRET-TS"`:       "a value it reads is missing or of the wrong type",
		`type conversion error from 'string' to 'int'`: "a value it reads is missing or of the wrong type",
	} {
		if got := celErrText(errors.New(in)); got != want {
			t.Errorf("celErrText(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestHistoryIndexAnsweredPerDecision: the history index functions are
// answered once per decision and question, shared by every rule of it,
// and never carried into the next decision (whose history differs) nor
// confused between firstCall/lastCall/…Labelled of the same argument.
func TestHistoryIndexAnsweredPerDecision(t *testing.T) {
	s, st, clk := newSeq(t, SequenceConfig{Rules: []RuleConfig{
		// Both rules ask the same question; the second also asks others.
		{ID: "a", When: `call.tool == "send" && session.lastCall("read") >= 0 && session.lastCall("read") < session.lastCall("fetch")`},
		{ID: "b", When: `call.tool == "send" && session.lastCall("read") == 5 && session.firstCall("read") == 5`},
		{ID: "c", When: `call.tool == "send" && session.lastLabelled("read") >= 0`},
	}})
	ctx := context.Background()
	step := func(tool string, want Outcome, rule string) {
		t.Helper()
		clk.Advance(time.Second)
		d, err := s.Decide(ctx, st, alice("r", tool))
		if err != nil || d.Outcome != want || d.RuleID != rule {
			t.Fatalf("%s: %+v %v, want %v %q", tool, d, err, want, rule)
		}
	}
	step("send", Allow, "") // no read yet: lastCall = -1
	step("read", Allow, "")
	step("send", Allow, "") // read at 1, no fetch
	step("fetch", Allow, "")
	step("send", Deny, "seq:a") // read (1) before fetch (3): the answer changed with the history
	step("read", Allow, "")     // index 5
	step("send", Allow, "")     // read (5) after fetch (3); rule b: firstCall("read") is 1, not 5
}

// TestNameTable: names come back as the CEL strings they are, boxed once;
// the table stops growing at its bound; concurrent readers and writers
// are safe (-race).
func TestNameTable(t *testing.T) {
	var nt nameTable
	a, b := nt.str("search"), nt.str("search")
	if a != b || a != types.String("search") {
		t.Fatalf("str(search) = %v, %v", a, b)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range maxNames {
				name := "tool-" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
				if v := nt.str(name); v != types.String(name) {
					t.Errorf("str(%s) = %v", name, v)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := len(*nt.vals.Load()); n > maxNames {
		t.Fatalf("%d names kept, bound %d", n, maxNames)
	}
	// Interned names and label sets: equal to what was given, shared
	// between callers, bounded.
	a1, a2 := nt.intern(strings.Repeat("a", 3)), nt.intern("aaa")
	if a1 != "aaa" || unsafe.StringData(a1) != unsafe.StringData(a2) {
		t.Fatal("intern did not share the string")
	}
	l1, l2 := nt.labels([]string{"x", "y"}), nt.labels([]string{"x", "y"})
	if !slices.Equal(l1, []string{"x", "y"}) || &l1[0] != &l2[0] {
		t.Fatalf("labels %q %q not shared", l1, l2)
	}
	if l3 := nt.labels([]string{"x\x00y"}); slices.Equal(l3, l1) || len(l3) != 1 {
		t.Fatalf("label sets confused: %q", l3)
	}
	if nt.labels(nil) != nil {
		t.Fatal("no labels should stay nil")
	}
	for i := range maxNames + 10 {
		if got := nt.intern("n" + strconv.Itoa(i)); got != "n"+strconv.Itoa(i) {
			t.Fatalf("intern past the bound: %q", got)
		}
	}
	if n := len(*nt.strs.Load()); n > maxNames {
		t.Fatalf("%d interned strings, bound %d", n, maxNames)
	}
	if v := (*nameTable)(nil).str("x"); v != types.String("x") {
		t.Fatalf("nil table: %v", v)
	}
}
