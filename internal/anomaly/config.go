package anomaly

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Kinds of anomaly.
const (
	KindCallRate      = "call_rate"
	KindDenialRate    = "denial_rate"
	KindDistinctTools = "distinct_tools"
	KindNewTool       = "new_tool"
	KindTokenChurn    = "token_churn"
)

// Scopes of a baseline.
const (
	ScopePrincipal = "principal"
	ScopeRoute     = "route"
)

// Actions attached to an anomaly.
const (
	ActionNone   = "none"
	ActionStepUp = "step_up"
	ActionDeny   = "deny"
)

// Defaults applied to zero fields of [Config].
const (
	DefaultWindow        = time.Minute
	DefaultHalfLife      = 30 * time.Minute
	DefaultWarmUp        = 10 * time.Minute
	DefaultMinCalls      = 30
	DefaultRateFactor    = 5
	DefaultDenialFactor  = 3
	DefaultToolsFactor   = 3
	DefaultChurnFactor   = 3
	DefaultMinDenials    = 10
	DefaultMinTools      = 8
	DefaultMinChurn      = 4
	DefaultMaxChurn      = 10
	DefaultCoolDown      = 5 * time.Minute
	DefaultMaxPrincipals = 100000
)

// Limits checked by [Config.Validate].
const (
	MinWindow   = time.Second
	MaxWindow   = 24 * time.Hour
	MaxMaxChurn = 1000
)

const (
	kCallRate = iota
	kDenialRate
	kDistinctTools
	kNewTool
	kTokenChurn
	numKinds
)

// Config configures a [Detector]. Zero fields take the defaults above;
// negative ones are errors.
type Config struct {
	// Window is the span of the current window, made of six ticks. 1m.
	Window time.Duration
	// HalfLife of the baselines, in active time. At least Window. 30m.
	HalfLife time.Duration
	// WarmUp is the active time a baseline needs before it can flag. 10m.
	WarmUp time.Duration

	// MinCalls is the floor of calls in the window for call_rate. 30.
	MinCalls int
	// MinDenials is the floor of denied calls in the window for
	// denial_rate. 10.
	MinDenials int
	// MinTools is the floor of distinct tools in the window for
	// distinct_tools. 8.
	MinTools int
	// MinChurn is the floor of distinct tokens in the window for the
	// ChurnFactor rule of token_churn. 4.
	MinChurn int
	// MaxChurn: more distinct tokens than this in one window flags
	// token_churn whatever the baseline (once warm). 10, at most 1000.
	MaxChurn int

	// Factors over the baseline, each at least 1. 5, 3, 3, 3.
	RateFactor, DenialFactor, ToolsFactor, ChurnFactor float64

	// Action of principal-scope anomalies: none, step_up or deny. none.
	Action string
	// RouteAction of route-scope anomalies, none unless set: a route-wide
	// deny lets one principal deny service to all.
	RouteAction string
	// StepUpScope is the OAuth scope (space-separated scope tokens) to
	// require; needed with, and only with, a step_up action.
	StepUpScope string
	// CoolDown is how long a deny or step-up lasts. 5m.
	CoolDown time.Duration

	// Disabled kinds are never raised (their baselines are still kept).
	Disabled []string

	// MaxPrincipals bounds the principals tracked; the least recently seen
	// are evicted. 100000.
	MaxPrincipals int

	// Now is the clock, used when an Observation has no Time. time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	def := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	defInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defF := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.Window, DefaultWindow)
	def(&c.HalfLife, DefaultHalfLife)
	def(&c.WarmUp, DefaultWarmUp)
	def(&c.CoolDown, DefaultCoolDown)
	defInt(&c.MinCalls, DefaultMinCalls)
	defInt(&c.MinDenials, DefaultMinDenials)
	defInt(&c.MinTools, DefaultMinTools)
	defInt(&c.MinChurn, DefaultMinChurn)
	defInt(&c.MaxChurn, DefaultMaxChurn)
	defInt(&c.MaxPrincipals, DefaultMaxPrincipals)
	defF(&c.RateFactor, DefaultRateFactor)
	defF(&c.DenialFactor, DefaultDenialFactor)
	defF(&c.ToolsFactor, DefaultToolsFactor)
	defF(&c.ChurnFactor, DefaultChurnFactor)
	if c.Action == "" {
		c.Action = ActionNone
	}
	if c.RouteAction == "" {
		c.RouteAction = ActionNone
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every problem of c (after defaults), joined.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Window < MinWindow || c.Window > MaxWindow {
		bad("window %v outside [%v, %v]", c.Window, MinWindow, MaxWindow)
	}
	if c.HalfLife < c.Window {
		bad("half-life %v shorter than the window %v", c.HalfLife, c.Window)
	}
	if c.WarmUp < 0 {
		bad("warm-up must not be negative")
	}
	if c.CoolDown < 0 {
		bad("cool-down must not be negative")
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"min calls", c.MinCalls}, {"min denials", c.MinDenials}, {"min tools", c.MinTools},
		{"min churn", c.MinChurn}, {"max churn", c.MaxChurn}, {"max principals", c.MaxPrincipals}} {
		if f.v < 0 {
			bad("%s must not be negative", f.name)
		}
	}
	if c.MaxChurn > MaxMaxChurn {
		bad("max churn %d above %d", c.MaxChurn, MaxMaxChurn)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"rate factor", c.RateFactor}, {"denial factor", c.DenialFactor},
		{"tools factor", c.ToolsFactor}, {"churn factor", c.ChurnFactor}} {
		if !(f.v >= 1) || math.IsInf(f.v, 0) { // also catches NaN
			bad("%s %v must be a finite number of at least 1", f.name, f.v)
		}
	}
	stepUp := false
	for _, a := range []struct{ name, v string }{{"action", c.Action}, {"route action", c.RouteAction}} {
		switch a.v {
		case ActionNone, ActionDeny:
		case ActionStepUp:
			stepUp = true
		default:
			bad("%s %q is not none, step_up or deny", a.name, a.v)
		}
	}
	switch {
	case stepUp && c.StepUpScope == "":
		bad("step_up needs a step-up scope")
	case !stepUp && c.StepUpScope != "":
		bad("step-up scope set but no action is step_up")
	case stepUp && !validScope(c.StepUpScope):
		bad("step-up scope %q is not a space-separated list of OAuth scope tokens", c.StepUpScope)
	}
	for _, k := range c.Disabled {
		if kindIndex(k) < 0 {
			bad("disabled kind %q unknown", k)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("anomaly: invalid config: %w", err)
	}
	return nil
}

// kindName is the Kind of index k.
func kindName(k int) string {
	return [numKinds]string{KindCallRate, KindDenialRate, KindDistinctTools, KindNewTool, KindTokenChurn}[k]
}

func kindIndex(k string) int {
	for i := range numKinds {
		if kindName(i) == k {
			return i
		}
	}
	return -1
}

// validScope reports whether s is scope-tokens separated by single spaces
// (RFC 6749 section 3.3).
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for tok := range strings.SplitSeq(s, " ") {
		if tok == "" {
			return false
		}
		for i := 0; i < len(tok); i++ {
			b := tok[i]
			if b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
				return false
			}
		}
	}
	return true
}
