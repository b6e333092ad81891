package anomaly_test

import (
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/internal/anomaly"
)

// The gateway's flow: Check before deciding, Observe after.
func Example() {
	d, err := anomaly.New(anomaly.Config{Action: anomaly.ActionStepUp, StepUpScope: "mcp:elevated"})
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	who := "https://idp.example\x00alice\x00agent-1" // issuer, subject, client_id
	call := func(at time.Time) []anomaly.Anomaly {
		if a, ok := d.Check(who, at); ok {
			return []anomaly.Anomaly{a} // refuse (deny) or challenge for a.StepUpScope (step_up)
		}
		// ... policy decision, then:
		return d.Observe(anomaly.Observation{Time: at, Route: "/mcp/github", Principal: who,
			Tool: "search", TokenFP: "a1b2c3"})
	}
	// Thirty minutes at 20 calls a minute: the baseline.
	at := start
	for range 30 * 20 {
		call(at)
		at = at.Add(3 * time.Second)
	}
	// Then ten calls a second.
	for range 200 {
		if as := call(at); len(as) > 0 {
			fmt.Println(as[0].Scope, as[0].Kind, as[0].Action, as[0].StepUpScope)
			break
		}
		at = at.Add(100 * time.Millisecond)
	}
	// Output: principal call_rate step_up mcp:elevated
}
