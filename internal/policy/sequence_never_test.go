package policy

import (
	"fmt"
	"testing"
)

// TestNeverAfterForgetsStrictly: what a never_after rule cannot tell or
// cannot remember makes it stricter, never weaker.
func TestNeverAfterForgetsStrictly(t *testing.T) {
	rule := RuleConfig{ID: "no-delete-after-export", Order: &OrderRule{
		Call:          Matcher{Tools: []string{"delete"}},
		NeverAfter:    &Matcher{Tools: []string{"export"}},
		SameArguments: []string{"id"},
	}}
	cfg := SequenceConfig{Rules: []RuleConfig{rule}}
	del := func(id string) Call { return withArgs(alice("files", "delete"), "id", id) }
	exp := func(id string) Call { return withArgs(alice("files", "export"), "id", id) }

	t.Run("export without the argument forbids every value", func(t *testing.T) {
		runScenario(t, cfg, []step{
			{call: del(`"a"`), want: Allow},
			{call: alice("files", "export"), want: Allow}, // upstream default id
			{call: del(`"b"`), want: Deny, rule: "seq:no-delete-after-export"},
		})
	})
	t.Run("more exports than remembered forbid every value", func(t *testing.T) {
		steps := []step{{call: exp(`"victim"`), want: Allow}}
		for i := range maxSeen + 10 {
			steps = append(steps, step{call: exp(fmt.Sprintf(`"other-%d"`, i)), want: Allow})
		}
		steps = append(steps,
			step{call: del(`"victim"`), want: Deny, rule: "seq:no-delete-after-export"},
			step{call: del(`"never-exported"`), want: Deny, rule: "seq:no-delete-after-export"})
		runScenario(t, cfg, steps)
	})
	t.Run("values still told apart below the bound", func(t *testing.T) {
		runScenario(t, cfg, []step{
			{call: exp(`"a"`), want: Allow},
			{call: del(`"b"`), want: Allow},
			{call: del(`"a"`), want: Deny, rule: "seq:no-delete-after-export"},
		})
	})
}

// TestResultLabelsWithTheCall: a call's result labels enter the taint in
// the same update that allows it, do not match the call itself, and a
// refused call adds none.
func TestResultLabelsWithTheCall(t *testing.T) {
	cfg := SequenceConfig{Rules: []RuleConfig{
		trifecta,
		{ID: "no-fetch-when-untrusted", Flow: &FlowRule{Taint: []string{LabelUntrustedInput}, To: Matcher{Tools: []string{"fetch_url"}}}},
	}}
	fetch := alice("web", "fetch_url", LabelEgress)
	fetch.ResultLabels = []string{LabelUntrustedInput}
	runScenario(t, cfg, []step{
		{call: fetch, want: Allow}, // its own result labels do not make it fire
		{call: fetch, want: Deny, rule: "seq:no-fetch-when-untrusted"},
		{call: alice("docs", "read_roadmap", LabelPrivateData), want: Allow},
		{call: alice("mail", "send_email", LabelEgress), want: Deny, rule: "seq:no-exfil"},
	})
	s, st, _ := newSeq(t, cfg)
	blocked := alice("web", "fetch_url")
	blocked.ResultLabels = []string{"bad label!"}
	if d, _ := s.Decide(t.Context(), st, blocked); d.Outcome != Deny {
		t.Fatalf("invalid result label: %v", d)
	}
	if h, _ := snapshot(t, s, st, blocked); len(h.Taint) != 0 {
		t.Errorf("a refused call added taint %v", h.Taint)
	}
}
