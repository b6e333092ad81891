package anomaly

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const routeA = "/mcp/a"

var baseTools = []string{"search", "read_file", "write_file"}

// prelude: 20 minutes of steady traffic of one principal: 30 calls a
// minute over three tools, one call in 20 denied, one token.
func prelude(o Observation) []Observation {
	obs := steady(o, t0, 20*time.Minute, 30, baseTools)
	for i := range obs {
		obs[i].Denied = i%20 == 19
	}
	return obs
}

func TestScenarios(t *testing.T) {
	p := Observation{Route: routeA, Principal: principalKey(1), TokenFP: "fp-1"}
	at := t0.Add(20 * time.Minute)  // scenario start, after warm-up
	after := func() []Observation { // ten more quiet minutes after the scenario
		obs := steady(p, at.Add(time.Minute), 10*time.Minute, 30, baseTools)
		for i := range obs {
			obs[i].Denied = i%20 == 19
		}
		return obs
	}
	for _, tt := range []struct {
		name     string
		scenario func() []Observation
		want     tally
	}{
		{"steady", func() []Observation { return steady(p, at, time.Minute, 30, baseTools) }, tally{}},
		{"burst x10", func() []Observation { return steady(p, at, time.Minute, 300, baseTools) },
			tally{"principal/call_rate": 1, "route/call_rate": 1}},
		{"burst x4 below factor", func() []Observation { return steady(p, at, time.Minute, 120, baseTools) }, tally{}},
		{"denial storm", func() []Observation {
			obs := steady(p, at, time.Minute, 30, baseTools)
			for i := range obs {
				obs[i].Denied = true
			}
			return obs
		}, tally{"principal/denial_rate": 1, "route/denial_rate": 1}},
		{"many tools", func() []Observation {
			return merge(steady(p, at, time.Minute, 30, baseTools), steady(p, at, 20*time.Second, 60, names("tool-", 20)))
		}, tally{"principal/distinct_tools": 1, "route/distinct_tools": 1, "principal/new_tool": 1, "route/new_tool": 1}},
		{"one new tool", func() []Observation {
			return merge(steady(p, at, time.Minute, 30, baseTools), steady(p, at, time.Second, 60, []string{"delete_repo"}))
		}, tally{"principal/new_tool": 1, "route/new_tool": 1}},
		{"token churn", func() []Observation {
			obs := steady(p, at, time.Minute, 30, baseTools)
			for i := range obs {
				obs[i].TokenFP = fmt.Sprintf("fp-churn-%d", i)
			}
			return obs
		}, tally{"principal/token_churn": 1}},
		{"token refresh", func() []Observation {
			obs := steady(p, at, time.Minute, 30, baseTools)
			for i := range obs[10:] {
				obs[10+i].TokenFP = "fp-2"
			}
			return obs
		}, tally{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDetector(t, Config{})
			if got, all := run(d, prelude(p)); len(got) != 0 {
				t.Fatalf("prelude raised %v", all)
			}
			got, all := run(d, merge(tt.scenario(), after()))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("anomalies (-want +got):\n%s\n%v", diff, all)
			}
			for _, a := range all {
				if a.Route != routeA || a.Action != ActionNone || !a.Until.IsZero() || a.StepUpScope != "" {
					t.Errorf("anomaly fields: %+v", a)
				}
				if a.Kind != KindNewTool && a.Value <= a.Baseline {
					t.Errorf("value %v not above baseline %v", a.Value, a.Baseline)
				}
				if (a.Kind == KindNewTool) != (a.Tool != "") {
					t.Errorf("tool %q on %s", a.Tool, a.Kind)
				}
			}
			checkInvariants(t, d)
		})
	}
}

func TestBurstValues(t *testing.T) {
	p := Observation{Route: routeA, Principal: principalKey(1), TokenFP: "fp-1"}
	d := newDetector(t, Config{})
	run(d, prelude(p))
	_, all := run(d, steady(p, t0.Add(20*time.Minute), time.Minute, 300, baseTools))
	if len(all) != 2 {
		t.Fatalf("got %v", all)
	}
	a := all[0]
	if a.Scope != ScopePrincipal || a.Kind != KindCallRate || a.Value != math.Floor(5*a.Baseline)+1 ||
		a.Baseline < 28 || a.Baseline > 32 {
		t.Errorf("anomaly %+v: want the first call above 5 x ~30", a)
	}
}

func TestNothingDuringWarmUp(t *testing.T) {
	// A fresh principal on a fresh route behaves as wildly as it can.
	wild := func(o Observation, from time.Time) []Observation {
		obs := steady(o, from, time.Minute, 400, names("tool-", 40))
		for i := range obs {
			obs[i].Denied = true
			obs[i].TokenFP = fmt.Sprintf("fp-%d", i)
		}
		return obs
	}
	p := Observation{Route: routeA, Principal: principalKey(2), TokenFP: "fp"}
	d := newDetector(t, Config{})
	warm := steady(p, t0, 9*time.Minute, 20, baseTools)
	if got, all := run(d, merge(warm, wild(p, t0.Add(3*time.Minute)))); len(got) != 0 {
		t.Fatalf("during warm-up: %v", all)
	}
	// The same once warm raises every kind.
	d = newDetector(t, Config{})
	warm = steady(p, t0, 15*time.Minute, 20, baseTools)
	got, all := run(d, merge(warm, wild(p, t0.Add(15*time.Minute))))
	for _, k := range []string{"principal/call_rate", "principal/denial_rate", "principal/distinct_tools",
		"principal/new_tool", "principal/token_churn", "route/call_rate", "route/denial_rate",
		"route/distinct_tools", "route/new_tool"} {
		if got[k] != 1 {
			t.Errorf("%s raised %d times: %v", k, got[k], all)
		}
	}
	// Warm-up counts active time, not age: a call keeps a window active
	// for one minute, so four calls an hour apart are four minutes, and the
	// wild minute takes it to five.
	d = newDetector(t, Config{})
	var sparse []Observation
	for h := range 4 {
		sparse = append(sparse, steady(p, t0.Add(time.Duration(h)*time.Hour), 10*time.Second, 6, baseTools)...)
	}
	if got, all := run(d, merge(sparse, wild(p, t0.Add(10*time.Hour)))); len(got) != 0 {
		t.Fatalf("sparse principal: %v", all)
	}
}

func TestFloors(t *testing.T) {
	// A quiet principal: 2 calls a minute, one tool, one token, warm. Each
	// case packs its calls in 30 s, well inside one window.
	p := Observation{Route: routeA, Principal: principalKey(3), TokenFP: "fp2"}
	tools := names("t", 7)
	for _, tt := range []struct {
		name string
		obs  func(at time.Time) []Observation
		want tally
	}{
		{"25 calls is 12x but under MinCalls", func(at time.Time) []Observation {
			return steady(p, at, 30*time.Second, 50, tools[:1])
		}, tally{}},
		{"30 calls", func(at time.Time) []Observation {
			return steady(p, at, 30*time.Second, 60, tools[:1])
		}, tally{"principal/call_rate": 1, "route/call_rate": 1}},
		{"9 denials is 100% but under MinDenials", func(at time.Time) []Observation {
			obs := steady(p, at, 30*time.Second, 18, tools[:1])
			for i := range obs {
				obs[i].Denied = true
			}
			return obs
		}, tally{}},
		// The baseline folds the storm in as ticks close, so the excess
		// over it falls a little short of the count.
		{"11 denials", func(at time.Time) []Observation {
			obs := steady(p, at, 30*time.Second, 22, tools[:1])
			for i := range obs {
				obs[i].Denied = true
			}
			return obs
		}, tally{"principal/denial_rate": 1, "route/denial_rate": 1}},
		{"7 known tools is 7x but under MinTools", func(at time.Time) []Observation {
			return steady(p, at, 30*time.Second, 14, tools)
		}, tally{}},
		{"3 tokens is 3x but under MinChurn", func(at time.Time) []Observation {
			obs := steady(p, at, 30*time.Second, 6, tools[:1])
			for i := range obs {
				obs[i].TokenFP = fmt.Sprint("fp", i%3) // fp0 and fp1 are new
			}
			return obs
		}, tally{}},
		{"4 tokens", func(at time.Time) []Observation {
			obs := steady(p, at, 30*time.Second, 8, tools[:1])
			for i := range obs {
				obs[i].TokenFP = fmt.Sprint("fp", i%4)
			}
			return obs
		}, tally{"principal/token_churn": 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDetector(t, Config{})
			// Warm up on all seven tools once, then use only the first.
			warm := merge(steady(p, t0, 20*time.Minute, 2, tools[:1]), steady(p, t0, 7*time.Second, 60, tools))
			if got, all := run(d, warm); len(got) != 0 {
				t.Fatalf("warm-up raised %v", all)
			}
			if got, all := run(d, tt.obs(t0.Add(20*time.Minute))); !cmp.Equal(got, tt.want) {
				t.Errorf("got %v, want %v: %v", got, tt.want, all)
			}
		})
	}
}

func TestSteadyTrafficForHours(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tools := names("tool-", 8)
	var streams [][]Observation
	for i := range 24 {
		o := Observation{Route: fmt.Sprintf("/mcp/%d", i%3), Principal: principalKey(i), TokenFP: fmt.Sprint("p", i)}
		perMin := 2 + r.Float64()*60 // 2 to 62 calls a minute
		var active, idle time.Duration
		if i%2 == 0 { // sessions of 20 to 60 minutes with idle gaps
			active = time.Duration(20+r.IntN(40)) * time.Minute
			idle = time.Duration(5+r.IntN(90)) * time.Minute
		}
		own := tools[:3+i%5]
		streams = append(streams, poisson(r, o, t0.Add(time.Duration(r.IntN(600))*time.Second), 6*time.Hour,
			perMin, active, idle, own, 0.03*float64(i%3), 45*time.Minute))
	}
	all := merge(streams...)
	d := newDetector(t, Config{})
	got, as := run(d, all)
	if len(got) != 0 {
		t.Errorf("%d calls over 6 hours raised %v", len(all), as)
	}
	checkInvariants(t, d)
	t.Logf("%d calls, %d principals, no anomaly", len(all), d.principals())
}

func TestActionDeny(t *testing.T) {
	p := Observation{Route: routeA, Principal: principalKey(1), TokenFP: "fp-1"}
	other := principalKey(9)
	d := newDetector(t, Config{Action: ActionDeny, CoolDown: 5 * time.Minute})
	run(d, prelude(p))
	at := t0.Add(20 * time.Minute)
	if a, ok := d.Check(p.Principal, at); ok {
		t.Fatalf("cool-down before any anomaly: %+v", a)
	}
	var first Anomaly
	var raisedAt time.Time
	for _, o := range steady(p, at, time.Minute, 300, baseTools) {
		if as := d.Observe(o); len(as) > 0 {
			first, raisedAt = as[0], o.Time
			break
		}
	}
	if first.Kind != KindCallRate || first.Scope != ScopePrincipal || first.Action != ActionDeny ||
		!first.Until.Equal(raisedAt.Add(5*time.Minute)) {
		t.Fatalf("raised %+v at %v", first, raisedAt)
	}
	st := d.lookup(p.Principal).stats
	// Observe during the cool-down refuses and records nothing.
	o := p
	o.Time = raisedAt.Add(2 * time.Minute)
	if as := d.Observe(o); len(as) != 1 || !cmp.Equal(as[0], first) {
		t.Errorf("Observe in cool-down = %+v", as)
	}
	if now := d.lookup(p.Principal).stats; !cmp.Equal(now, st, cmp.AllowUnexported(stats{}, seen{})) {
		t.Error("Observe in cool-down changed the baseline")
	}
	for _, tt := range []struct {
		at   time.Time
		want bool
	}{
		{raisedAt, true}, {raisedAt.Add(time.Minute), true}, {first.Until.Add(-time.Nanosecond), true},
		{first.Until, false}, {first.Until.Add(time.Hour), false},
	} {
		a, ok := d.Check(p.Principal, tt.at)
		if ok != tt.want || ok && !cmp.Equal(a, first) {
			t.Errorf("Check at %v = %+v, %v; want %v", tt.at.Sub(raisedAt), a, ok, tt.want)
		}
	}
	// Other principals are not affected; the route's action is none.
	if a, ok := d.Check(other, raisedAt.Add(time.Minute)); ok {
		t.Errorf("other principal: %+v", a)
	}
	if a, ok := d.CheckRoute(routeA, raisedAt.Add(time.Minute)); ok {
		t.Errorf("route: %+v", a)
	}
	// After the cool-down, normal traffic is accepted and raises nothing.
	if got, all := run(d, steady(p, first.Until, 10*time.Minute, 30, baseTools)); len(got) != 0 {
		t.Errorf("after the cool-down: %v", all)
	}
	if _, ok := d.Check(p.Principal, time.Time{}); ok { // zero time: Config.Now, long before
		t.Error("Check with zero time uses Config.Now")
	}
}

func TestActionStepUp(t *testing.T) {
	p := Observation{Route: routeA, Principal: principalKey(1), TokenFP: "fp-1"}
	d := newDetector(t, Config{Action: ActionStepUp, StepUpScope: "mcp:elevated audit"})
	run(d, prelude(p))
	at := t0.Add(20 * time.Minute)
	got, all := run(d, steady(p, at, time.Minute, 300, baseTools))
	if got["principal/call_rate"] != 1 {
		t.Fatalf("got %v", all)
	}
	a := all[0]
	if a.Action != ActionStepUp || a.StepUpScope != "mcp:elevated audit" || a.Until.Sub(at) > 6*time.Minute {
		t.Errorf("anomaly %+v", a)
	}
	if c, ok := d.Check(p.Principal, at.Add(2*time.Minute)); !ok || c.StepUpScope != a.StepUpScope || c.Action != ActionStepUp {
		t.Errorf("Check = %+v, %v", c, ok)
	}
	if _, ok := d.Check(p.Principal, a.Until); ok {
		t.Error("step-up outlived the cool-down")
	}
	// Route anomalies carry RouteAction, none by default.
	for _, a := range all {
		if a.Scope == ScopeRoute && (a.Action != ActionNone || a.StepUpScope != "" || !a.Until.IsZero()) {
			t.Errorf("route anomaly %+v", a)
		}
	}
}

func TestStepUpObserveStillRecords(t *testing.T) {
	p := Observation{Principal: principalKey(1), TokenFP: "fp-1"}
	d := newDetector(t, Config{Action: ActionStepUp, StepUpScope: "x"})
	run(d, prelude(p))
	got, _ := run(d, steady(p, t0.Add(20*time.Minute), 5*time.Minute, 300, baseTools))
	// Unlike deny, step-up lets requests through: the burst keeps being
	// recorded and is raised again every two windows.
	if n := got["principal/call_rate"]; n < 2 || n > 3 {
		t.Errorf("sustained burst raised %d times", n)
	}
}

func TestRouteWideBurst(t *testing.T) {
	// 20 principals at 3 calls a minute each: the route sees 60.
	var warm, burst []Observation
	for i := range 20 {
		o := Observation{Route: routeA, Principal: principalKey(i), TokenFP: fmt.Sprint("fp", i)}
		warm = append(warm, steady(o, t0.Add(time.Duration(i)*time.Second), 20*time.Minute, 3, baseTools)...)
		// Each goes to 24 a minute: 8x its baseline, but under MinCalls.
		burst = append(burst, steady(o, t0.Add(20*time.Minute+time.Duration(i)*time.Second), time.Minute, 24, baseTools)...)
	}
	d := newDetector(t, Config{RouteAction: ActionDeny, CoolDown: 3 * time.Minute})
	if got, all := run(d, merge(warm)); len(got) != 0 {
		t.Fatalf("warm-up raised %v", all)
	}
	obs := merge(burst)
	var raised Anomaly
	var rest []Observation
	for i, o := range obs {
		if as := d.Observe(o); len(as) > 0 {
			if len(as) != 1 {
				t.Fatalf("raised %v", as)
			}
			raised, rest = as[0], obs[i+1:]
			break
		}
	}
	if raised.Scope != ScopeRoute || raised.Kind != KindCallRate || raised.Action != ActionDeny ||
		raised.Route != routeA || raised.Baseline < 50 || raised.Baseline > 66 {
		t.Fatalf("raised %+v", raised)
	}
	// The route is denied to every principal until the cool-down ends.
	for _, o := range rest {
		if as := d.Observe(o); len(as) != 1 || as[0] != raised {
			t.Fatalf("Observe during route cool-down = %v", as)
		}
	}
	if a, ok := d.CheckRoute(routeA, raised.Until.Add(-time.Second)); !ok || a != raised {
		t.Errorf("CheckRoute = %+v, %v", a, ok)
	}
	if _, ok := d.CheckRoute(routeA, raised.Until); ok {
		t.Error("route cool-down outlived CoolDown")
	}
	if _, ok := d.CheckRoute("/mcp/other", raised.Until.Add(-time.Second)); ok {
		t.Error("other route denied")
	}
	if _, ok := d.Check(principalKey(0), raised.Until.Add(-time.Second)); ok {
		t.Error("a route cool-down is not a principal one")
	}
	o := Observation{Route: "/mcp/b", Principal: principalKey(0), Time: raised.Until.Add(-time.Second)}
	if as := d.Observe(o); as != nil {
		t.Errorf("principal on another route: %v", as)
	}
}

func TestDisabled(t *testing.T) {
	p := Observation{Route: routeA, Principal: principalKey(1), TokenFP: "fp-1"}
	d := newDetector(t, Config{Disabled: []string{KindCallRate}})
	run(d, prelude(p))
	if got, all := run(d, steady(p, t0.Add(20*time.Minute), time.Minute, 300, baseTools)); len(got) != 0 {
		t.Errorf("disabled call_rate raised %v", all)
	}
}

func TestEviction(t *testing.T) {
	d := newDetector(t, Config{MaxPrincipals: 100, Action: ActionDeny})
	if len(d.shards) != 1 {
		t.Fatalf("%d shards for 100 principals", len(d.shards))
	}
	keep := Observation{Principal: principalKey(0), Route: routeA, Tool: "a", TokenFP: "t"}
	at := t0
	for i := range 1000 {
		at = at.Add(100 * time.Millisecond)
		keep.Time = at
		d.Observe(keep) // seen every round: never least recent
		d.Observe(Observation{Time: at, Principal: principalKey(i + 1), Tool: "b", TokenFP: fmt.Sprint(i)})
		if n := d.principals(); n > 100 {
			t.Fatalf("%d principals tracked after %d", n, i)
		}
	}
	if d.lookup(principalKey(0)) == nil {
		t.Error("the most recently seen principal was evicted")
	}
	for i := 1; i <= 901; i++ {
		if d.lookup(principalKey(i)) != nil {
			t.Fatalf("principal %d kept, the least recently seen", i)
		}
	}
	for i := 902; i <= 1000; i++ {
		if d.lookup(principalKey(i)) == nil {
			t.Fatalf("principal %d evicted, among the 99 most recent", i)
		}
	}
	checkInvariants(t, d)
	// Default sizing: 64 shards whose limits add up exactly.
	d = newDetector(t, Config{})
	sum := 0
	for i := range d.shards {
		sum += d.shards[i].max
	}
	if len(d.shards) != 64 || sum != DefaultMaxPrincipals {
		t.Errorf("%d shards, capacity %d", len(d.shards), sum)
	}
}

func TestCoolDownSurvivesEviction(t *testing.T) {
	p := Observation{Principal: principalKey(1), TokenFP: "fp-1"}
	d := newDetector(t, Config{MaxPrincipals: 50, Action: ActionDeny})
	run(d, prelude(p))
	_, all := run(d, steady(p, t0.Add(20*time.Minute), 10*time.Second, 1200, baseTools))
	if len(all) == 0 || all[0].Action != ActionDeny {
		t.Fatalf("no deny: %v", all)
	}
	// Flooding with fresh principals evicts the baseline, not the deny.
	at := t0.Add(21 * time.Minute)
	for i := range 500 {
		d.Observe(Observation{Time: at, Principal: principalKey(100 + i)})
	}
	if d.lookup(p.Principal) != nil {
		t.Fatal("baseline not evicted")
	}
	if _, ok := d.Check(p.Principal, at); !ok {
		t.Error("eviction lifted the deny")
	}
}

func TestCoolDownsBounded(t *testing.T) {
	d := newDetector(t, Config{MaxPrincipals: 3, Action: ActionDeny, WarmUp: time.Nanosecond, MinCalls: 1})
	sh := &d.shards[0]
	for i := range 10 {
		sh.setCool(uint64(i), Anomaly{Action: ActionDeny, Until: t0.Add(time.Duration(i+1) * time.Minute)}, t0)
		if len(sh.cool) > 3 {
			t.Fatalf("%d cool-downs", len(sh.cool))
		}
	}
	// The cool-downs ending last are kept.
	for _, k := range []uint64{7, 8, 9} {
		if _, ok := sh.cool[k]; !ok {
			t.Errorf("cool-down %d dropped, keys %v", k, sh.cool)
		}
	}
	// Expired ones go first.
	sh.cool = map[uint64]Anomaly{1: {Until: t0}, 2: {Until: t0.Add(time.Hour)}, 3: {Until: t0.Add(time.Minute)}}
	sh.setCool(4, Anomaly{Until: t0.Add(time.Hour)}, t0.Add(time.Second))
	if _, ok := sh.cool[1]; ok || len(sh.cool) != 3 {
		t.Errorf("cool-downs %v", sh.cool)
	}
}

func TestUseTool(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var s stats
	known := map[uint32]bool{}
	for i := range 5000 {
		h := uint32(r.IntN(400))
		cur := uint32(i / 10)
		_, isNew := s.useTool(h, cur, 64)
		if !s.toolsFull && isNew == known[h] {
			t.Fatalf("tool %d: new %v, known %v", h, isNew, known[h])
		}
		if s.toolsFull && isNew {
			t.Fatal("new_tool claimed with a full set")
		}
		known[h] = true
		if len(s.tools) > 64 {
			t.Fatalf("%d tools", len(s.tools))
		}
		found := false
		for j, x := range s.tools {
			if j > 0 && s.tools[j-1].h >= x.h {
				t.Fatal("not sorted")
			}
			found = found || x.h == h && x.last == cur
		}
		if !found {
			t.Fatal("tool just used not kept")
		}
	}
}

func TestClockAndEdges(t *testing.T) {
	now := t0
	d := newDetector(t, Config{Now: func() time.Time { return now }})
	// Zero Time uses Config.Now.
	d.Observe(Observation{Principal: "p", Route: routeA})
	if p := d.lookup("p"); p == nil || p.tick != d.tickOf(t0) {
		t.Fatal("zero Time not taken from Config.Now")
	}
	// A clock going backwards is recorded in the newest tick.
	d.Observe(Observation{Principal: "p", Time: t0.Add(-time.Hour)})
	if p := d.lookup("p"); p.tick != d.tickOf(t0) || p.winCalls != 2 {
		t.Errorf("backwards: tick %d, calls %d", p.tick, p.winCalls)
	}
	// Times before 1970 tick down, not towards zero.
	if a, b := d.tickOf(time.Unix(0, -1)), d.tickOf(time.Unix(0, 0)); a != b-1 {
		t.Errorf("ticks around the epoch: %d, %d", a, b)
	}
	// No principal and no route: nothing to do.
	if as := d.Observe(Observation{Tool: "x"}); as != nil || d.principals() != 1 {
		t.Error("empty observation recorded")
	}
	if _, ok := d.Check("", t0); ok {
		t.Error("empty principal checked")
	}
	if _, ok := d.CheckRoute(routeA, time.Time{}); ok {
		t.Error("route cool-down without RouteAction")
	}
}

func TestRouteLimit(t *testing.T) {
	d := newDetector(t, Config{})
	for i := range maxRoutes + 10 {
		d.Observe(Observation{Route: fmt.Sprint("/r/", i), Time: t0})
	}
	if len(d.routes) != maxRoutes {
		t.Errorf("%d routes", len(d.routes))
	}
}

func TestPrincipalNeverExposed(t *testing.T) {
	secret := "https://idp.example/" + "\x00" + strings.Repeat("s3cr", 4) + "\x00client"
	p := Observation{Route: routeA, Principal: secret, TokenFP: "fp-1"}
	d := newDetector(t, Config{Action: ActionStepUp, StepUpScope: "x"})
	run(d, prelude(p))
	_, all := run(d, merge(steady(p, t0.Add(20*time.Minute), time.Minute, 300, names("n", 20))))
	c, _ := d.Check(secret, t0.Add(21*time.Minute))
	text := fmt.Sprintf("%v %+v %#v %s", all, all, c, c)
	if len(all) == 0 || strings.Contains(text, "s3cr") {
		t.Errorf("anomalies expose the principal: %s", text)
	}
	want := `principal new_tool anomaly on route "/mcp/a": 1 vs baseline 3, action step_up, tool "n0" "x" until 2026-03-01T09:25:07Z`
	if all[0].String() != want {
		t.Errorf("String = %s", all[0])
	}
	// Nor is it kept: the maps hold hashes.
	d.routesMu.RLock()
	defer d.routesMu.RUnlock()
	for name := range d.routes {
		if strings.Contains(name, "s3cr") {
			t.Error("principal in the route map")
		}
	}
}

func TestConcurrent(t *testing.T) {
	var mu sync.Mutex
	now := t0
	d := newDetector(t, Config{MaxPrincipals: 2000, Action: ActionDeny, WarmUp: time.Minute, MinCalls: 5,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Millisecond); return now }})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for range 20000 {
				i := r.IntN(3000)
				p := principalKey(i)
				switch r.IntN(10) {
				case 0:
					d.Check(p, time.Time{})
				case 1:
					d.CheckRoute(routeA, time.Time{})
				default:
					d.Observe(Observation{Route: fmt.Sprint("/r", i%4), Principal: p, Tool: fmt.Sprint("t", r.IntN(12)),
						TokenFP: fmt.Sprint(r.IntN(3)), Denied: r.IntN(8) == 0})
				}
			}
		})
	}
	wg.Wait()
	checkInvariants(t, d)
	if n := d.principals(); n > 2000 || n < 1000 {
		t.Errorf("%d principals tracked", n)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    Config
		want []string // substrings of the error; nil: valid
	}{
		{"zero", Config{}, nil},
		{"deny", Config{Action: ActionDeny, RouteAction: ActionNone}, nil},
		{"step up", Config{Action: ActionStepUp, StepUpScope: "mcp:admin write"}, nil},
		{"route step up", Config{RouteAction: ActionStepUp, StepUpScope: "x"}, nil},
		{"short window", Config{Window: 500 * time.Millisecond}, []string{"window 500ms outside"}},
		{"long window", Config{Window: 25 * time.Hour}, []string{"window 25h0m0s outside"}},
		{"half-life", Config{Window: time.Hour, HalfLife: time.Minute}, []string{"half-life 1m0s shorter"}},
		{"negatives", Config{WarmUp: -1, CoolDown: -1, MinCalls: -1, MinDenials: -1, MinTools: -1, MinChurn: -1,
			MaxChurn: -1, MaxPrincipals: -1, Window: -1},
			[]string{"warm-up", "cool-down", "min calls", "min denials", "min tools", "min churn",
				"max churn must", "max principals", "window -1ns"}},
		{"max churn", Config{MaxChurn: 1001}, []string{"max churn 1001 above 1000"}},
		{"factors", Config{RateFactor: 0.5, DenialFactor: -1, ToolsFactor: nan(), ChurnFactor: inf()},
			[]string{"rate factor 0.5", "denial factor -1", "tools factor NaN", "churn factor +Inf"}},
		{"actions", Config{Action: "block", RouteAction: "Deny"}, []string{`action "block"`, `route action "Deny"`}},
		{"step up without scope", Config{Action: ActionStepUp}, []string{"needs a step-up scope"}},
		{"scope without step up", Config{Action: ActionDeny, StepUpScope: "x"}, []string{"no action is step_up"}},
		{"bad scope", Config{Action: ActionStepUp, StepUpScope: "a  b"}, []string{"not a space-separated"}},
		{"quote in scope", Config{Action: ActionStepUp, StepUpScope: `a"b`}, []string{"not a space-separated"}},
		{"unicode scope", Config{Action: ActionStepUp, StepUpScope: "é"}, []string{"not a space-separated"}},
		{"disabled", Config{Disabled: []string{KindNewTool, "rate"}}, []string{`disabled kind "rate"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			_, nerr := New(tt.c)
			if (err == nil) != (nerr == nil) {
				t.Fatalf("Validate %v, New %v", err, nerr)
			}
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("valid")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q missing from %v", w, err)
				}
			}
			if !strings.HasPrefix(err.Error(), "anomaly: invalid config: ") {
				t.Errorf("error %v", err)
			}
		})
	}
}

func nan() float64 { var z float64; return z / z }
func inf() float64 { var z float64; return 1 / z }
