package metrics

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// KeySep separates label values in the keys of a [GaugeFuncVec] source's
// map (ASCII unit separator). A label value must not contain it.
const KeySep = "\x1f"

// Key joins label values into a [GaugeFuncVec] key, in the order of the
// gauge's labels.
func Key(values ...string) string { return strings.Join(values, KeySep) }

// FuncGauge is an unlabelled gauge read at scrape time from a callback set
// by the component that owns the value. Until a callback is set (or after
// Set(nil)) it exports no sample. It is safe for concurrent use.
type FuncGauge struct {
	desc *prometheus.Desc
	mu   sync.RWMutex
	fn   func() float64
}

func newFuncGauge(name, help string) *FuncGauge {
	return &FuncGauge{desc: prometheus.NewDesc(name, help, nil, nil)}
}

// Set makes fn the source of the gauge's value, replacing any previous
// one; nil removes it. fn is called at every scrape: it must be fast and
// safe for concurrent use.
func (g *FuncGauge) Set(fn func() float64) {
	g.mu.Lock()
	g.fn = fn
	g.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (g *FuncGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

// Collect implements prometheus.Collector.
func (g *FuncGauge) Collect(ch chan<- prometheus.Metric) {
	g.mu.RLock()
	fn := g.fn
	g.mu.RUnlock()
	if fn == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, fn())
}

// GaugeFuncVec is a labelled gauge read at scrape time from any number of
// sources, for example one per circuit breaker or per issuer's key cache.
// A source returns a map from [Key] of the label values (for one label,
// the value itself) to the value. A key with the wrong number of values,
// or the same key from two sources, is a collection error: that sample is
// dropped and promhttp_metric_handler_errors_total counts it. It is safe
// for concurrent use.
type GaugeFuncVec struct {
	desc    *prometheus.Desc
	labels  int
	mu      sync.Mutex
	next    uint64
	sources map[uint64]func() map[string]float64
}

func newGaugeFuncVec(name, help string, labels []string) *GaugeFuncVec {
	return &GaugeFuncVec{
		desc:    prometheus.NewDesc(name, help, labels, nil),
		labels:  len(labels),
		sources: map[uint64]func() map[string]float64{},
	}
}

// Add adds fn as a source of values and returns a function that removes it
// (for a component replaced on reload). fn is called at every scrape: it
// must be fast and safe for concurrent use. Add(nil) does nothing.
func (v *GaugeFuncVec) Add(fn func() map[string]float64) (remove func()) {
	if fn == nil {
		return func() {}
	}
	v.mu.Lock()
	id := v.next
	v.next++
	v.sources[id] = fn
	v.mu.Unlock()
	return func() {
		v.mu.Lock()
		delete(v.sources, id)
		v.mu.Unlock()
	}
}

// Describe implements prometheus.Collector.
func (v *GaugeFuncVec) Describe(ch chan<- *prometheus.Desc) { ch <- v.desc }

// Collect implements prometheus.Collector.
func (v *GaugeFuncVec) Collect(ch chan<- prometheus.Metric) {
	v.mu.Lock()
	ids := make([]uint64, 0, len(v.sources))
	for id := range v.sources {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	fns := make([]func() map[string]float64, len(ids))
	for i, id := range ids {
		fns[i] = v.sources[id]
	}
	v.mu.Unlock()

	seen := map[string]bool{}
	for _, fn := range fns {
		for key, value := range fn() {
			ch <- v.metric(key, value, seen)
		}
	}
}

func (v *GaugeFuncVec) metric(key string, value float64, seen map[string]bool) prometheus.Metric {
	if seen[key] {
		return prometheus.NewInvalidMetric(v.desc, fmt.Errorf("label values %q reported by two sources", key))
	}
	seen[key] = true
	values := []string{key}
	if v.labels != 1 {
		values = strings.Split(key, KeySep)
	}
	if len(values) != v.labels {
		return prometheus.NewInvalidMetric(v.desc, fmt.Errorf("key %q has %d label values, want %d", key, len(values), v.labels))
	}
	m, err := prometheus.NewConstMetric(v.desc, prometheus.GaugeValue, value, values...)
	if err != nil {
		return prometheus.NewInvalidMetric(v.desc, fmt.Errorf("key %q: %w", key, err))
	}
	return m
}

// MethodLabel returns the method label value for an inbound request: a
// JSON-RPC method MCP defines (2025-06-18 to 2026-07-28), an HTTP method
// the transport uses without a JSON-RPC body (GET, DELETE), or "other".
// A client chooses the method string, so using it unmapped as a label
// value would let any client create unbounded series.
func MethodLabel(method string) string {
	switch method {
	case "initialize", "ping",
		"tools/list", "tools/call",
		"resources/list", "resources/templates/list", "resources/read",
		"resources/subscribe", "resources/unsubscribe",
		"prompts/list", "prompts/get",
		"completion/complete", "logging/setLevel",
		"sampling/createMessage", "elicitation/create", "roots/list",
		"tasks/get", "tasks/list", "tasks/result", "tasks/cancel",
		"server/discover", "subscriptions/listen",
		"notifications/initialized", "notifications/cancelled",
		"notifications/progress", "notifications/message",
		"notifications/roots/list_changed", "notifications/elicitation/complete",
		"notifications/tasks/status",
		"GET", "DELETE":
		return method
	}
	return "other"
}
