package gateway

import (
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/authn"
	"github.com/mcpgate/mcpgate/internal/metrics"
)

// auditStats is implemented by the sinks that count what they do.
type auditStats interface{ Stats() audit.Stats }

// registerGauges connects the metrics read from components.
// It returns the removers of the sources only this gateway reports.
func (g *Gateway) registerGauges(kit *credentialKit) []func() {
	m := g.metrics
	m.ActiveSessions.Set(func() float64 { return float64(g.sessionCount()) })
	m.ActiveStreams.Set(func() float64 { return float64(g.streams.Open()) })
	m.RevocationsActive.Set(func() float64 { return float64(g.revoked.Len()) })
	if s, ok := g.audit.(auditStats); ok {
		m.AuditQueueDepth.Set(func() float64 { return float64(s.Stats().QueueDepth) })
	}
	var undo []func()
	a := g.authn
	undo = append(undo, m.JWKSKeyAge.Add(func() map[string]float64 {
		out := map[string]float64{}
		for iss, age := range a.KeyAges() {
			out[metrics.Key(iss)] = age.Seconds()
		}
		return out
	}))
	undo = append(undo, m.CircuitBreakerState.Add(func() map[string]float64 {
		out := map[string]float64{}
		for iss, st := range a.BreakerStates() {
			out[metrics.Key(metrics.BreakerKindAuthorizationServer, iss)] = breakerValue(st)
		}
		return out
	}))
	if len(kit.endpoints) > 0 {
		undo = append(undo, m.CircuitBreakerState.Add(func() map[string]float64 {
			out := make(map[string]float64, len(kit.endpoints))
			for _, rt := range g.routes {
				if ep := kit.routeEndpoint[rt.name]; ep != nil {
					out[metrics.Key(metrics.BreakerKindAuthorizationServer, "token_endpoint:"+rt.credIssuer)] = breakerValue(ep.State())
				}
			}
			return out
		}))
	}
	return undo
}

func breakerValue(state string) float64 {
	switch state {
	case "open":
		return metrics.BreakerOpen
	case "half-open":
		return metrics.BreakerHalfOpen
	}
	return metrics.BreakerClosed
}

// authnDeps connects the authenticator's calls to the metrics.
func (g *Gateway) authnDeps(skipAudience bool) authn.Deps {
	m := g.metrics
	return authn.Deps{
		Logger: g.log, Now: g.now, InsecureSkipAudienceCheck: skipAudience,
		OnCall: func(issuer, call string, d time.Duration, err error) {
			m.AuthorizationServerRequestDuration.WithLabelValues(issuer, call).Observe(d.Seconds())
			if err != nil {
				m.AuthorizationServerErrors.WithLabelValues(issuer, call).Inc()
			}
		},
		OnStaleDenial:    func(issuer string) { m.StaleDenials.WithLabelValues(issuer).Inc() },
		OnRefreshFailure: func(issuer string) { m.JWKSRefreshFailures.WithLabelValues(issuer).Inc() },
	}
}

// countRequest records one answered request: its decision and duration.
func (x *exchange) countRequest(decision string) {
	m := x.rt.g.metrics
	method := x.r.Method
	if x.call != nil {
		method = x.call.Msg.Method
	}
	m.Requests.WithLabelValues(x.rt.name, metrics.MethodLabel(method), decision).Inc()
	m.RequestDuration.WithLabelValues(x.rt.name).Observe(x.rt.g.now().Sub(x.start).Seconds())
}

// metricsWhere maps where a finding was made to the metric's direction.
func metricsWhere(where string) string {
	if where == whereArguments || where == whereRequestHeaders {
		return metrics.WhereRequest
	}
	return metrics.WhereResponse
}
