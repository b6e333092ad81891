package gateway

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/mcpgate/mcpgate/internal/anomaly"
	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/authn"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/policy"
)

// anomalyConfig maps the configuration onto the detector's.
func anomalyConfig(c config.Anomaly, now func() time.Time) anomaly.Config {
	return anomaly.Config{
		Window: c.Window.D(), HalfLife: c.HalfLife.D(), WarmUp: c.WarmUp.D(), MinCalls: c.MinCalls,
		MinDenials: c.MinDenials, MinTools: c.MinTools, MinChurn: c.MinChurn, MaxChurn: c.MaxChurn, MaxPrincipals: c.MaxPrincipals,
		RateFactor: c.RateFactor, DenialFactor: c.DenialFactor, ToolsFactor: c.ToolsFactor, ChurnFactor: c.ChurnFactor,
		Action: c.Action, RouteAction: c.RouteAction, StepUpScope: c.StepUpScope, CoolDown: c.CoolDown.D(),
		Disabled: c.Disabled, Now: now,
	}
}

// principalKey identifies a principal to the detector (which hashes it).
func principalKey(id *authn.Identity) string {
	return id.Issuer + "\x00" + id.Subject + "\x00" + id.ClientID
}

// principalKey is principalKey(x.ident), computed once.
func (x *exchange) principalKey() string {
	if x.pkey == "" {
		x.pkey = principalKey(x.ident)
	}
	return x.pkey
}

// checkAnomaly applies an active anomaly action to this request: a deny
// cool-down refuses it, a step-up requires the configured scope.
func (x *exchange) checkAnomaly() *rejection {
	d := x.rt.g.anomaly
	if d == nil {
		return nil
	}
	now := x.rt.g.now()
	a, ok := d.Check(x.principalKey(), now)
	if !ok {
		if a, ok = d.CheckRoute(x.rt.name, now); !ok {
			return nil
		}
	}
	switch a.Action {
	case anomaly.ActionDeny:
		wait := a.Until.Sub(now).Round(time.Second)
		return &rejection{status: deniedStatus(x), code: codeDenied, decision: audit.Deny, reason: "anomaly", rule: "anomaly:" + a.Kind,
			message: fmt.Sprintf("denied: unusual activity (%s) was detected for this %s; retry in %s or ask an operator", a.Kind, a.Scope, wait)}
	case anomaly.ActionStepUp:
		// A fresh authorization: the scope, in a token issued after the
		// anomaly (the token that raised it does not count).
		coolDown := x.rt.g.cfg.Anomaly.CoolDown.D()
		if coolDown == 0 {
			coolDown = anomaly.DefaultCoolDown
		}
		if x.grant.Has(a.StepUpScope) && x.ident.IssuedAt.After(a.Until.Add(-coolDown)) {
			return nil
		}
		return x.rejectionFor(policy.Decision{Outcome: policy.InsufficientScope, Required: []string{a.StepUpScope},
			RuleID: "anomaly:" + a.Kind, Reason: "unusual activity (" + a.Kind + ") needs a fresh authorization"})
	}
	return nil
}

// observe feeds a decided, authenticated request to the detector and
// reports what it raises: an alert record, a metric, a log line.
func (x *exchange) observe(denied bool) {
	g := x.rt.g
	if g.anomaly == nil || x.ident == nil {
		return
	}
	o := anomaly.Observation{Time: g.now(), Route: x.rt.name, Principal: x.principalKey(), TokenFP: x.ident.Fingerprint, Denied: denied}
	if x.call != nil && x.call.Msg.Method == "tools/call" {
		o.Tool = x.call.Name
	}
	for _, a := range g.anomaly.Observe(o) {
		g.metrics.Anomalies.WithLabelValues(a.Kind, a.Action).Inc()
		ev := x.event(audit.KindAlert)
		ev.Decision, ev.Reason, ev.Rule = audit.Alert, "anomaly", "anomaly:"+a.Kind
		ev.Anomalies = []string{a.Scope + ":" + a.Kind + ":" + a.Action}
		if err := g.writeAudit(x.r.Context(), ev); err != nil {
			g.log.Error("audit write failed for an anomaly alert", slog.String("request_id", x.id), slog.String("error", err.Error()))
		}
		g.log.Warn("anomaly detected", slog.String("kind", a.Kind), slog.String("scope", a.Scope), slog.String("action", a.Action),
			slog.String("route", x.rt.name), slog.Float64("value", a.Value), slog.Float64("baseline", a.Baseline),
			slog.String("token", x.ident.Fingerprint))
	}
}
