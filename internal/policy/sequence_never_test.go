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
