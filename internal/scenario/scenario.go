// Package scenario runs policy scenario files: an identity, a sequence of
// tool calls with arguments, the decision expected for each, and time
// steps on a controlled clock, decided by mcpgate's own request path
// against a configuration, with no network and no upstream. Users keep
// such files beside their mcpgate.yaml and run them in CI
// (`mcpgate policy test scenarios/*.yaml`) to test their agents' paths
// under the policy before deploying it.
package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/gateway"
)

// File is one scenario file.
type File struct {
	// Config is the mcpgate configuration, relative to the scenario file
	// (or absolute).
	Config string `yaml:"config"`
	// Identity is who makes the calls, unless a step says otherwise.
	Identity Identity `yaml:"identity"`
	// Annotations are tool annotations as the upstreams would list them:
	// route → tool → {readOnlyHint, destructiveHint, openWorldHint}.
	Annotations map[string]map[string]map[string]any `yaml:"annotations"`
	// Steps run in order.
	Steps []Step `yaml:"steps"`
}

// Identity is the principal and scopes of a call.
type Identity struct {
	Issuer   string   `yaml:"issuer"` // "" → the configuration's first issuer
	Subject  string   `yaml:"subject"`
	ClientID string   `yaml:"client_id"`
	Scopes   []string `yaml:"scopes"`
}

// Step is a call with its expected decision, or a time step.
type Step struct {
	Name string `yaml:"name"`
	// Advance moves the clock forward (e.g. "5m"); a step has either
	// Advance or Call.
	Advance config.Duration `yaml:"advance"`
	Call    *Call           `yaml:"call"`
	// As overrides identity fields for this call.
	As *Identity `yaml:"as"`
	// Expect is allow, deny or step_up.
	Expect string `yaml:"expect"`
	// Rule, when set, must be the rule that decided ("seq:<id>",
	// "tool:<name>", …).
	Rule string `yaml:"rule"`
	// ReasonContains, when set, must appear in what the agent is told.
	ReasonContains string `yaml:"reason_contains"`
}

// Call is one tools/call.
type Call struct {
	Route     string            `yaml:"route"`
	Tool      string            `yaml:"tool"`
	Arguments map[string]any    `yaml:"arguments"`
	Session   string            `yaml:"session"` // Mcp-Session-Id
	RunID     string            `yaml:"run_id"`
	Headers   map[string]string `yaml:"headers"`
}

// Result is the outcome of one file.
type Result struct {
	File   string
	Steps  int
	Failed []string // one message per failed step
}

// Run runs the scenario file at path, writing a line per step to out.
func Run(ctx context.Context, path string, out io.Writer) (*Result, error) {
	f, err := load(path)
	if err != nil {
		return nil, err
	}
	cfgPath := f.Config
	if !filepath.IsAbs(cfgPath) {
		cfgPath = filepath.Join(filepath.Dir(path), cfgPath)
	}
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", path, err)
	}
	cfg, err := config.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: config %s: %w", path, f.Config, err)
	}
	cfg.ApplyDefaults()
	if err := gateway.Check(cfg); err != nil {
		return nil, fmt.Errorf("%s: config %s is invalid: %w", path, f.Config, err)
	}
	offline(cfg)
	clk := &clock{t: time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC)}
	g, err := gateway.New(cfg, gateway.Deps{Now: clk.now, Audit: discard{}})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer g.Close()
	for route, tools := range f.Annotations {
		for tool, ann := range tools {
			raw, err := json.Marshal(ann)
			if err != nil {
				return nil, fmt.Errorf("%s: annotations of %s/%s: %w", path, route, tool, err)
			}
			if err := g.LearnToolAnnotations(route, tool, raw); err != nil {
				return nil, fmt.Errorf("%s: annotations: %w", path, err)
			}
		}
	}
	for i, s := range f.Steps {
		if s.Call != nil && s.Call.RunID != "" && cfg.Sequence.History.RunIDHeader == "" {
			return nil, fmt.Errorf("%s: step %d: run_id given, but the configuration has no sequence.history.run_id_header", path, i+1)
		}
	}
	if f.Identity.Issuer == "" && len(cfg.AuthorizationServers) > 0 {
		f.Identity.Issuer = cfg.AuthorizationServers[0].Issuer
	}

	res := &Result{File: path}
	fmt.Fprintf(out, "%s\n", path)
	for i, s := range f.Steps {
		label := fmt.Sprintf("  %2d. %s", i+1, stepName(s))
		if s.Call == nil {
			clk.advance(s.Advance.D())
			fmt.Fprintf(out, "%s\n", label)
			continue
		}
		res.Steps++
		id := f.Identity
		if s.As != nil {
			id = merge(id, *s.As)
		}
		args, err := json.Marshal(orEmpty(s.Call.Arguments))
		if err != nil {
			return nil, fmt.Errorf("%s: step %d: arguments: %w", path, i+1, err)
		}
		d, err := g.DryRun(ctx, gateway.DryCall{
			Route: s.Call.Route, Tool: s.Call.Tool, Arguments: args,
			Issuer: id.Issuer, Subject: id.Subject, ClientID: id.ClientID, Scopes: id.Scopes,
			SessionID: s.Call.Session, RunID: s.Call.RunID, ClientIP: "192.0.2.1", Headers: s.Call.Headers,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: step %d: %w", path, i+1, err)
		}
		if why := check(s, d); why != "" {
			res.Failed = append(res.Failed, fmt.Sprintf("step %d (%s): %s", i+1, stepName(s), why))
			fmt.Fprintf(out, "%s\n      FAIL: %s\n", label, why)
			continue
		}
		fmt.Fprintf(out, "%s → %s%s\n", label, d.Decision, ruleNote(d))
	}
	return res, nil
}

// load decodes a scenario file strictly and checks its shape.
func load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var errs []error
	if f.Config == "" {
		errs = append(errs, errors.New("config: required (the mcpgate configuration to test)"))
	}
	if len(f.Steps) == 0 {
		errs = append(errs, errors.New("steps: at least one step is required"))
	}
	for i, s := range f.Steps {
		switch {
		case s.Call == nil && s.Advance <= 0:
			errs = append(errs, fmt.Errorf("steps[%d]: needs a call or an advance", i))
		case s.Call != nil && s.Advance != 0:
			errs = append(errs, fmt.Errorf("steps[%d]: a step has a call or an advance, not both", i))
		case s.Call != nil && (s.Call.Route == "" || s.Call.Tool == ""):
			errs = append(errs, fmt.Errorf("steps[%d].call: route and tool are required", i))
		case s.Call != nil && s.Expect != "allow" && s.Expect != "deny" && s.Expect != "step_up":
			errs = append(errs, fmt.Errorf("steps[%d].expect: must be allow, deny or step_up, not %q", i, s.Expect))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// offline removes what a dry run needs no file or network for: upstream
// TLS material and introspection secrets.
func offline(cfg *config.Config) {
	for i := range cfg.Routes {
		cfg.Routes[i].Upstream.TLS = nil
	}
	for i := range cfg.AuthorizationServers {
		cfg.AuthorizationServers[i].Introspection = nil
		cfg.AuthorizationServers[i].CAFile = ""
	}
	cfg.ToolPinsFile = ""
	cfg.Server.TLS = nil
}

func check(s Step, d gateway.DryDecision) string {
	var why []string
	if d.Decision != s.Expect {
		why = append(why, fmt.Sprintf("decision %s%s, want %s", d.Decision, ruleNote(d), s.Expect))
	}
	if s.Rule != "" && d.Rule != s.Rule {
		why = append(why, fmt.Sprintf("decided by %q, want %q", d.Rule, s.Rule))
	}
	if s.ReasonContains != "" && !strings.Contains(d.Reason, s.ReasonContains) {
		why = append(why, fmt.Sprintf("the agent is told %q, which does not mention %q", d.Reason, s.ReasonContains))
	}
	return strings.Join(why, "; ")
}

func ruleNote(d gateway.DryDecision) string {
	if d.Decision == audit.Allow || d.Rule == "" {
		return ""
	}
	return " (" + d.Rule + ")"
}

func stepName(s Step) string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Call == nil:
		return "advance " + s.Advance.D().String()
	default:
		return s.Call.Route + "/" + s.Call.Tool
	}
}

func merge(base, over Identity) Identity {
	if over.Issuer != "" {
		base.Issuer = over.Issuer
	}
	if over.Subject != "" {
		base.Subject = over.Subject
	}
	if over.ClientID != "" {
		base.ClientID = over.ClientID
	}
	if over.Scopes != nil {
		base.Scopes = over.Scopes
	}
	return base
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// clock is the controlled clock of a run.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// discard is an audit sink that keeps nothing.
type discard struct{}

func (discard) Write(context.Context, *audit.Event) error { return nil }
func (discard) Close() error                              { return nil }
