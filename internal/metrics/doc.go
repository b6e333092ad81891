// Package metrics defines every Prometheus metric mcpgate exports and the
// handler that serves them on the admin listener's /metrics.
//
// [New] builds a [Metrics] on its own registry (never the client library's
// global default registry) with the Go runtime and process collectors. The
// gateway increments the exported fields directly; values that live in
// other components (audit queue depth, active sessions and streams, the
// state of each circuit breaker, the age of each issuer's JWKS, active
// revocations) are read at scrape time from callbacks attached to the
// [FuncGauge] and [GaugeFuncVec] fields, or registered ad hoc with
// [Metrics.GaugeFunc] and [Metrics.GaugeVecFunc]. [Names] lists every
// metric New registers; deploy/grafana and deploy/prometheus may only use
// those names (a test checks it).
//
// # Naming
//
// Every name starts with "mcpgate_", uses base units (seconds, bytes) and
// ends in "_total" for counters. Latency histograms share [Buckets]
// (0.5 ms to 10 s).
//
// # Label values must be bounded
//
// Each distinct label value creates a time series that the gateway keeps in
// memory forever and Prometheus stores for weeks, so a label value must
// come from a small set fixed by configuration or by code:
//
//   - route names, issuer URLs, policy rule ids, redaction detector names
//     and circuit breaker names (configuration);
//   - enumerated reasons, decisions, calls, kinds, actions and results
//     (code; see the constants in this package);
//   - JSON-RPC method names only through [MethodLabel], which folds any
//     method MCP does not define into "other" (a client chooses the method
//     string, so it is attacker-controlled).
//
// A label value must NEVER be a subject, a token or its hash, a client id,
// a session id, a user, an IP address, a tool argument or any other value a
// caller chooses or that grows with traffic: besides exhausting memory,
// that would copy identities and secrets into the metrics pipeline, which
// is neither access-controlled nor audited like the audit log. Per-caller
// detail belongs in the audit log. Label names that suggest such a value
// (see [ForbiddenLabel]) are rejected by [Metrics.GaugeVecFunc], and a test
// checks that no metric New registers uses one.
//
// # Counters that alerts watch
//
// Unlabelled counters start at zero, and New pre-creates the series of
// small enumerations an alert watches (mcpgate_config_reloads_total for
// both results), so increase() sees the first event. A labelled counter's
// series appears on its first increment, which increase() does not count;
// the alerts on those (deploy/prometheus/alerts.yaml) also match a series
// that is new within their window.
package metrics
