package policy_test

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/state"
)

// The "lethal trifecta": after a run has read private data and untrusted
// input, its calls to egress tools are refused; the other order is fine.
func ExampleCompileSequence() {
	seq, err := policy.CompileSequence(policy.SequenceConfig{Rules: []policy.RuleConfig{{
		ID: "no-exfil",
		Flow: &policy.FlowRule{
			Taint: []string{policy.LabelUntrustedInput, policy.LabelPrivateData},
			To:    policy.Matcher{Labels: []string{policy.LabelEgress}},
		},
	}}}, nil)
	if err != nil {
		panic(err)
	}
	store := state.NewMemory(state.MemoryConfig{IdleTimeout: time.Hour})
	call := func(route, tool string, labels ...string) {
		d, err := seq.Decide(context.Background(), store, policy.Call{
			Issuer: "https://idp.example", Subject: "alice", ClientID: "agent",
			Route: route, Tool: tool, Labels: labels,
		})
		if err != nil {
			panic(err)
		}
		if d.Outcome == policy.Allow {
			fmt.Printf("%s: allow\n", tool)
			return
		}
		fmt.Printf("%s: %s by %s: %s\n", tool, d.Outcome, d.RuleID, d.Reason)
	}
	call("docs", "read_roadmap", policy.LabelPrivateData)
	call("web", "fetch_page", policy.LabelUntrustedInput)
	call("mail", "send_email", policy.LabelEgress)
	call("docs", "write_summary")
	// Output:
	// read_roadmap: allow
	// fetch_page: allow
	// send_email: deny by seq:no-exfil: tool "send_email" is not allowed by rule no-exfil: this run has handled data labelled untrusted_input and private_data, after which a tool labelled egress may not be called
	// write_summary: allow
}
