package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Prefix starts the name of every metric mcpgate defines.
const Prefix = "mcpgate_"

// Values of the decision label of mcpgate_requests_total.
const (
	DecisionAllow  = "allow"   // forwarded upstream
	DecisionDeny   = "deny"    // refused by policy (or revocation)
	DecisionStepUp = "step_up" // refused with a step-up (insufficient_scope) challenge
	DecisionReject = "reject"  // refused before policy: no or invalid token, malformed message
	DecisionError  = "error"   // the gateway or a dependency failed (5xx)
)

// Values of the call label of the authorization-server metrics.
const (
	CallDiscovery         = "discovery"
	CallJWKS              = "jwks"
	CallIntrospection     = "introspection"
	CallTokenExchange     = "token_exchange"
	CallClientCredentials = "client_credentials"
)

// Values of the result label of mcpgate_config_reloads_total.
const (
	ReloadSuccess = "success"
	ReloadFailure = "failure"
)

// Values of the where label of mcpgate_redactions_total.
const (
	WhereRequest  = "request"
	WhereResponse = "response"
)

// Values of the kind label of mcpgate_circuit_breaker_state.
const (
	BreakerKindAuthorizationServer = "authorization_server"
	BreakerKindUpstream            = "upstream"
)

// Values of mcpgate_circuit_breaker_state. They equal the numeric values
// of gobreaker's State (StateClosed, StateHalfOpen, StateOpen).
const (
	BreakerClosed   = 0
	BreakerHalfOpen = 1
	BreakerOpen     = 2
)

// Metrics holds every metric mcpgate exports. The gateway increments the
// counters and observes the histograms directly, e.g.
//
//	m.Requests.WithLabelValues(route, metrics.MethodLabel(method), metrics.DecisionAllow).Inc()
//
// and attaches callbacks to the FuncGauge and GaugeFuncVec fields. Every
// label value must be bounded (see the package documentation). All
// fields are safe for concurrent use.
type Metrics struct {
	// Requests counts inbound requests by route, method ([MethodLabel]:
	// the JSON-RPC method of a POST, or the HTTP method of a GET or
	// DELETE) and decision (Decision*). Labels: route, method, decision.
	Requests *prometheus.CounterVec
	// RequestDuration observes the time from receiving a request to
	// finishing its response (for a stream: to sending its headers).
	// Labels: route.
	RequestDuration *prometheus.HistogramVec

	// TokenValidationFailures counts rejected access tokens by an
	// enumerated reason (expired, bad_signature, wrong_audience, ...).
	// Labels: reason.
	TokenValidationFailures *prometheus.CounterVec
	// PolicyDenials counts policy denials by the id of the rule that
	// decided (or "default" for the default deny). Labels: route, rule.
	PolicyDenials *prometheus.CounterVec

	// AuthorizationServerRequestDuration observes every call to an
	// authorization server, failed ones included. Labels: issuer, call
	// (Call*).
	AuthorizationServerRequestDuration *prometheus.HistogramVec
	// AuthorizationServerErrors counts failed calls to an authorization
	// server (transport error, non-2xx, unusable body). Labels: issuer,
	// call.
	AuthorizationServerErrors *prometheus.CounterVec
	// JWKSKeyAge is the time since an issuer's key set was last fetched
	// successfully. Labels: issuer.
	JWKSKeyAge *GaugeFuncVec
	// JWKSRefreshFailures counts failed key set refreshes. Labels: issuer.
	JWKSRefreshFailures *prometheus.CounterVec
	// StaleDenials counts requests refused fail-closed (503) because a
	// bounded-staleness cache (keys, introspection, revocations) outlived
	// its bound while its source was unreachable. Labels: issuer.
	StaleDenials *prometheus.CounterVec

	// CircuitBreakerState is each circuit breaker's state: BreakerClosed,
	// BreakerHalfOpen or BreakerOpen. Labels: kind (BreakerKind*), name.
	CircuitBreakerState *GaugeFuncVec

	// UpstreamRequestDuration observes every request forwarded to an
	// upstream MCP server, failed ones included, until its response
	// headers. Labels: route.
	UpstreamRequestDuration *prometheus.HistogramVec
	// UpstreamErrors counts failed upstream requests by an enumerated kind
	// (connect, timeout, tls, status_5xx, protocol, breaker_open, ...).
	// Labels: route, kind.
	UpstreamErrors *prometheus.CounterVec

	// AuditQueueDepth is the number of audit records waiting to be
	// written.
	AuditQueueDepth *FuncGauge
	// AuditRecords counts audit records written.
	AuditRecords prometheus.Counter
	// AuditFailures counts audit records that could not be written.
	AuditFailures prometheus.Counter
	// AuditRecordsLost counts requests forwarded although their audit
	// record could not be written (audit on_failure: allow).
	AuditRecordsLost prometheus.Counter

	// ActiveSessions is the number of MCP sessions the gateway tracks.
	ActiveSessions *FuncGauge
	// ActiveStreams is the number of open SSE streams.
	ActiveStreams *FuncGauge

	// Redactions counts values redacted or blocked by a detector.
	// Labels: route, detector, action (redact, block, ...), where
	// (WhereRequest, WhereResponse).
	Redactions *prometheus.CounterVec

	// RevocationsActive is the number of revocations in force.
	RevocationsActive *FuncGauge
	// RevokedRequests counts requests refused because their token, subject
	// or client was revoked. Labels: route.
	RevokedRequests *prometheus.CounterVec

	// Anomalies counts detected anomalies by an enumerated kind and the
	// action taken (log, throttle, deny, ...). Labels: kind, action.
	Anomalies *prometheus.CounterVec

	// ConfigReloads counts configuration reloads. Labels: result
	// (ReloadSuccess, ReloadFailure).
	ConfigReloads *prometheus.CounterVec
	// ConfigLastReloadSuccess is the Unix time of the last successful
	// configuration load (initial load included).
	ConfigLastReloadSuccess prometheus.Gauge

	reg     *prometheus.Registry
	handler http.Handler
}

// Names returns the name of every metric [New] registers, sorted, without
// the Go and process collectors' metrics.
func Names() []string {
	return []string{
		"mcpgate_active_sessions",
		"mcpgate_active_streams",
		"mcpgate_anomalies_total",
		"mcpgate_audit_failures_total",
		"mcpgate_audit_queue_depth",
		"mcpgate_audit_records_lost_total",
		"mcpgate_audit_records_total",
		"mcpgate_authorization_server_errors_total",
		"mcpgate_authorization_server_request_duration_seconds",
		"mcpgate_circuit_breaker_state",
		"mcpgate_config_last_reload_success_timestamp_seconds",
		"mcpgate_config_reloads_total",
		"mcpgate_jwks_key_age_seconds",
		"mcpgate_jwks_refresh_failures_total",
		"mcpgate_policy_denials_total",
		"mcpgate_redactions_total",
		"mcpgate_request_duration_seconds",
		"mcpgate_requests_total",
		"mcpgate_revocations_active",
		"mcpgate_revoked_requests_total",
		"mcpgate_stale_denials_total",
		"mcpgate_token_validation_failures_total",
		"mcpgate_upstream_errors_total",
		"mcpgate_upstream_request_duration_seconds",
	}
}

// Buckets returns the latency histogram buckets, in seconds: 0.5 ms to
// 10 s, dense where a gateway's own overhead and a token introspection
// call fall.
func Buckets() []float64 {
	return []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
}

// New returns the metrics on a fresh registry that also holds the Go
// runtime and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	histogram := func(name, help string, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: Buckets()}, labels)
		reg.MustRegister(h)
		return h
	}
	single := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	funcGauge := func(name, help string) *FuncGauge {
		g := newFuncGauge(name, help)
		reg.MustRegister(g)
		return g
	}
	funcGaugeVec := func(name, help string, labels ...string) *GaugeFuncVec {
		g := newGaugeFuncVec(name, help, labels)
		reg.MustRegister(g)
		return g
	}

	m.Requests = counter("mcpgate_requests_total",
		"Inbound requests by route, method (JSON-RPC or HTTP) and decision (allow, deny, step_up, reject, error).",
		"route", "method", "decision")
	m.RequestDuration = histogram("mcpgate_request_duration_seconds",
		"Time from receiving an inbound request to finishing its response.", "route")
	m.TokenValidationFailures = counter("mcpgate_token_validation_failures_total",
		"Access tokens rejected, by reason.", "reason")
	m.PolicyDenials = counter("mcpgate_policy_denials_total",
		"Requests denied by policy, by route and deciding rule.", "route", "rule")
	m.AuthorizationServerRequestDuration = histogram("mcpgate_authorization_server_request_duration_seconds",
		"Duration of calls to authorization servers, by issuer and call.", "issuer", "call")
	m.AuthorizationServerErrors = counter("mcpgate_authorization_server_errors_total",
		"Failed calls to authorization servers, by issuer and call.", "issuer", "call")
	m.JWKSKeyAge = funcGaugeVec("mcpgate_jwks_key_age_seconds",
		"Seconds since the issuer's key set was last fetched successfully.", "issuer")
	m.JWKSRefreshFailures = counter("mcpgate_jwks_refresh_failures_total",
		"Failed key set refreshes, by issuer.", "issuer")
	m.StaleDenials = counter("mcpgate_stale_denials_total",
		"Requests refused fail-closed (503) because a bounded-staleness cache exceeded its bound, by issuer.", "issuer")
	m.CircuitBreakerState = funcGaugeVec("mcpgate_circuit_breaker_state",
		"Circuit breaker state: 0 closed, 1 half-open, 2 open.", "kind", "name")
	m.UpstreamRequestDuration = histogram("mcpgate_upstream_request_duration_seconds",
		"Duration of requests forwarded to upstream MCP servers, until response headers, by route.", "route")
	m.UpstreamErrors = counter("mcpgate_upstream_errors_total",
		"Failed upstream requests, by route and kind.", "route", "kind")
	m.AuditQueueDepth = funcGauge("mcpgate_audit_queue_depth",
		"Audit records waiting to be written.")
	m.AuditRecords = single("mcpgate_audit_records_total",
		"Audit records written.")
	m.AuditFailures = single("mcpgate_audit_failures_total",
		"Audit records that could not be written.")
	m.AuditRecordsLost = single("mcpgate_audit_records_lost_total",
		"Requests forwarded although their audit record could not be written (on_failure: allow).")
	m.ActiveSessions = funcGauge("mcpgate_active_sessions",
		"MCP sessions tracked by the gateway.")
	m.ActiveStreams = funcGauge("mcpgate_active_streams",
		"Open SSE streams.")
	m.Redactions = counter("mcpgate_redactions_total",
		"Values redacted or blocked, by route, detector, action and direction.", "route", "detector", "action", "where")
	m.RevocationsActive = funcGauge("mcpgate_revocations_active",
		"Revocations in force.")
	m.RevokedRequests = counter("mcpgate_revoked_requests_total",
		"Requests refused because of a revocation, by route.", "route")
	m.Anomalies = counter("mcpgate_anomalies_total",
		"Anomalies detected, by kind and action taken.", "kind", "action")
	m.ConfigReloads = counter("mcpgate_config_reloads_total",
		"Configuration reloads, by result (success, failure).", "result")
	m.ConfigLastReloadSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mcpgate_config_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last successful configuration load.",
	})
	reg.MustRegister(m.ConfigLastReloadSuccess)

	// Series an alert watches with increase() exist from the start.
	m.ConfigReloads.WithLabelValues(ReloadSuccess)
	m.ConfigReloads.WithLabelValues(ReloadFailure)

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// A failing callback loses its own series, not the whole scrape;
		// promhttp_metric_handler_errors_total counts it.
		ErrorHandling:       promhttp.ContinueOnError,
		ErrorLog:            slog.NewLogLogger(slog.Default().Handler(), slog.LevelError),
		Registry:            reg,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
	return m
}

// Handler serves the registry for /metrics, in the Prometheus text
// exposition format (protobuf if the scraper asks for it).
func (m *Metrics) Handler() http.Handler { return m.handler }

// Registry returns the registry holding every metric, for tests and for
// registering further collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveReload records the result of a configuration load at now: a
// successful one also sets mcpgate_config_last_reload_success_timestamp_seconds.
func (m *Metrics) ObserveReload(err error, now time.Time) {
	if err != nil {
		m.ConfigReloads.WithLabelValues(ReloadFailure).Inc()
		return
	}
	m.ConfigReloads.WithLabelValues(ReloadSuccess).Inc()
	m.ConfigLastReloadSuccess.Set(float64(now.UnixNano()) / 1e9)
}

// GaugeFunc registers an unlabelled gauge whose value fn returns at each
// scrape. fn must be fast and safe for concurrent use. The name must start
// with [Prefix] and be new.
func (m *Metrics) GaugeFunc(name, help string, fn func() float64) error {
	if err := checkNew(name, help, nil, fn == nil); err != nil {
		return err
	}
	g := newFuncGauge(name, help)
	g.Set(fn)
	if err := m.reg.Register(g); err != nil {
		return fmt.Errorf("metrics: register %s: %w", name, err)
	}
	return nil
}

// GaugeVecFunc registers a labelled gauge whose values fn returns at each
// scrape, keyed by [Key] of the label values (for one label, the value
// itself). fn must be fast and safe for concurrent use. The name must start
// with [Prefix] and be new, and no label may be a [ForbiddenLabel]. It
// returns the gauge so that more sources can be added.
func (m *Metrics) GaugeVecFunc(name, help string, labels []string, fn func() map[string]float64) (*GaugeFuncVec, error) {
	if err := checkNew(name, help, labels, fn == nil); err != nil {
		return nil, err
	}
	g := newGaugeFuncVec(name, help, labels)
	g.Add(fn)
	if err := m.reg.Register(g); err != nil {
		return nil, fmt.Errorf("metrics: register %s: %w", name, err)
	}
	return g, nil
}

func checkNew(name, help string, labels []string, nilFn bool) error {
	var errs []error
	if !strings.HasPrefix(name, Prefix) || len(name) == len(Prefix) {
		errs = append(errs, fmt.Errorf("metrics: name %q must start with %q", name, Prefix))
	} else if !isSnakeCase(name) {
		errs = append(errs, fmt.Errorf("metrics: name %q must match [a-z_][a-z0-9_]*", name))
	}
	if strings.HasSuffix(name, "_total") {
		errs = append(errs, fmt.Errorf("metrics: gauge %q must not end in _total", name))
	}
	if help == "" {
		errs = append(errs, fmt.Errorf("metrics: %s: help is required", name))
	}
	if nilFn {
		errs = append(errs, fmt.Errorf("metrics: %s: nil callback", name))
	}
	seen := map[string]bool{}
	for _, l := range labels {
		if !isSnakeCase(l) || strings.HasPrefix(l, "__") {
			errs = append(errs, fmt.Errorf("metrics: %s: label %q must match [a-z_][a-z0-9_]* (no leading __)", name, l))
		}
		if ForbiddenLabel(l) {
			errs = append(errs, fmt.Errorf("metrics: %s: label %q would carry an unbounded or identifying value", name, l))
		}
		if seen[l] {
			errs = append(errs, fmt.Errorf("metrics: %s: duplicate label %q", name, l))
		}
		seen[l] = true
	}
	return errors.Join(errs...)
}

func isSnakeCase(s string) bool {
	for i, c := range s {
		if c != '_' && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// ForbiddenLabel reports whether a label name suggests a value that is
// unbounded or identifies a caller: a subject, user, client, session,
// token, argument or address. Such labels are never allowed.
func ForbiddenLabel(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "sub", "jti", "sid", "ip", "email":
		return true
	}
	for _, s := range []string{"subject", "user", "client", "session", "token", "argument", "args", "addr", "principal", "jti"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}
