package scenario

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExamples runs every shipped scenario file: each must pass.
func TestExamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "scenarios", "*.yaml"))
	if len(files) < 3 {
		t.Fatalf("found %d scenario files, want one per example policy", len(files))
	}
	for _, f := range files {
		var out bytes.Buffer
		res, err := Run(context.Background(), f, &out)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(res.Failed) > 0 || res.Steps == 0 {
			t.Errorf("%s: %d steps, failures %v\n%s", f, res.Steps, res.Failed, out.String())
		}
	}
}

// TestWrongExpectationFails: a scenario whose expectation is wrong fails,
// with a message naming the step, the decision and the rule.
func TestWrongExpectationFails(t *testing.T) {
	dir := t.TempDir()
	abs, _ := filepath.Abs(filepath.Join("..", "..", "examples", "policies", "refund-after-lookup.yaml"))
	write(t, dir, "s.yaml", `config: `+abs+`
identity: {subject: s, client_id: c, scopes: [billing:support]}
steps:
  - call: {route: billing, tool: refund_order, arguments: {order_id: 1}}
    expect: allow
  - call: {route: billing, tool: lookup_order, arguments: {order_id: 1}}
    expect: deny
`)
	var out bytes.Buffer
	res, err := Run(context.Background(), filepath.Join(dir, "s.yaml"), &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failed) != 2 || !strings.Contains(res.Failed[0], "decision deny (seq:refund-after-lookup), want allow") {
		t.Errorf("failures = %v", res.Failed)
	}
}

func TestBadScenarioFiles(t *testing.T) {
	dir := t.TempDir()
	abs, _ := filepath.Abs(filepath.Join("..", "..", "examples", "policies", "refund-after-lookup.yaml"))
	for name, body := range map[string]string{
		"unknown key":      "config: " + abs + "\nsteps: [{advance: 1m}]\nbogus: 1\n",
		"no config":        "steps: [{advance: 1m}]\n",
		"no steps":         "config: " + abs + "\n",
		"bad expect":       "config: " + abs + "\nsteps: [{call: {route: billing, tool: x}, expect: maybe}]\n",
		"call and advance": "config: " + abs + "\nsteps: [{call: {route: billing, tool: x}, advance: 1m, expect: allow}]\n",
		"unknown route":    "config: " + abs + "\nsteps: [{call: {route: nope, tool: x}, expect: allow}]\n",
		"missing config":   "config: absent.yaml\nsteps: [{advance: 1m}]\n",
	} {
		t.Run(name, func(t *testing.T) {
			write(t, dir, "bad.yaml", body)
			if _, err := Run(context.Background(), filepath.Join(dir, "bad.yaml"), &bytes.Buffer{}); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
