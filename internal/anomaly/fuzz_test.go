package anomaly

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// FuzzObserve drives a small detector with arbitrary sequences of
// observations (principals, tools, tokens, denials, clock jumps forwards
// and backwards) and checks its invariants and every anomaly returned.
func FuzzObserve(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte("\x02aaaabbbbccccddddeeeeffff\xff\xff\xff\xff"))
	burst := []byte{1}
	for i := range 400 {
		burst = append(burst, 1, byte(i%3), 0, 8)
	}
	for i := range 200 {
		burst = append(burst, 1, byte(i), byte(i), 1)
	}
	f.Add(burst)
	f.Fuzz(fuzzBody)
}

func fuzzBody(t *testing.T, data []byte) {
	{
		if len(data) == 0 {
			return
		}
		actions := []string{ActionNone, ActionDeny, ActionStepUp}
		c := Config{MaxPrincipals: 1 + int(data[0]%8), WarmUp: 30 * time.Second, MinCalls: 3, MinDenials: 2,
			MinTools: 2, MinChurn: 2, MaxChurn: 3, CoolDown: time.Minute,
			Action: actions[data[0]%3], RouteAction: actions[data[0]/3%3]}
		if c.Action == ActionStepUp || c.RouteAction == ActionStepUp {
			c.StepUpScope = "mcp:step"
		}
		d := newDetector(t, c)
		at := t0
		for data = data[1:]; len(data) >= 4; data = data[4:] {
			switch b := data[3]; {
			case b == 0xff:
				at = at.Add(-time.Duration(data[2]) * time.Second) // backwards
			case b >= 0xf0:
				at = at.Add(time.Duration(b-0xef) * time.Hour)
			default:
				at = at.Add(time.Duration(b>>1) * 100 * time.Millisecond)
			}
			o := Observation{Time: at, Principal: fmt.Sprint("p", data[0]%16), Route: fmt.Sprint("/r", data[0]/16%3),
				Denied: data[3]&1 == 1}
			if data[1] != 0 {
				o.Tool = fmt.Sprint("t", data[1]%40)
			}
			if data[2]%4 != 0 {
				o.TokenFP = fmt.Sprint("k", data[2]%20)
			}
			if data[0]%5 == 0 {
				o.Route = ""
			}
			for _, a := range d.Observe(o) {
				if kindIndex(a.Kind) < 0 || a.Scope != ScopePrincipal && a.Scope != ScopeRoute ||
					math.IsNaN(a.Value) || math.IsNaN(a.Baseline) || a.Route != "" && a.Route[:2] != "/r" {
					t.Fatalf("anomaly %+v", a)
				}
				want := c.Action
				if a.Scope == ScopeRoute {
					want = c.RouteAction
				}
				if a.Action != want || (a.Action == ActionNone) != a.Until.IsZero() ||
					(a.Action == ActionStepUp) != (a.StepUpScope != "") {
					t.Fatalf("anomaly %+v, config %+v", a, c)
				}
				if a.Kind == KindTokenChurn && a.Scope == ScopeRoute {
					t.Fatalf("route token churn %+v", a)
				}
			}
			if a, ok := d.Check(o.Principal, at); ok && (c.Action == ActionNone || !at.Before(a.Until)) {
				t.Fatalf("Check = %+v at %v", a, at)
			}
		}
		checkInvariants(t, d)
	}
}
