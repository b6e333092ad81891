package metrics

import (
	"encoding/base64"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// touchAll gives every metric New registers at least one sample, so that
// Gather returns all of them.
func touchAll(m *Metrics) {
	m.Requests.WithLabelValues("files", MethodLabel("tools/call"), DecisionAllow).Inc()
	m.RequestDuration.WithLabelValues("files").Observe(0.003)
	m.TokenValidationFailures.WithLabelValues("expired").Inc()
	m.PolicyDenials.WithLabelValues("files", "deny-write").Inc()
	m.AuthorizationServerRequestDuration.WithLabelValues("https://idp.example.com", CallJWKS).Observe(0.02)
	m.AuthorizationServerErrors.WithLabelValues("https://idp.example.com", CallIntrospection).Inc()
	m.JWKSKeyAge.Add(func() map[string]float64 { return map[string]float64{"https://idp.example.com": 42} })
	m.JWKSRefreshFailures.WithLabelValues("https://idp.example.com").Inc()
	m.StaleDenials.WithLabelValues("https://idp.example.com").Inc()
	m.CircuitBreakerState.Add(func() map[string]float64 {
		return map[string]float64{Key(BreakerKindAuthorizationServer, "https://idp.example.com"): BreakerOpen}
	})
	m.UpstreamRequestDuration.WithLabelValues("files").Observe(0.05)
	m.UpstreamErrors.WithLabelValues("files", "timeout").Inc()
	m.AuditQueueDepth.Set(func() float64 { return 7 })
	m.AuditRecords.Inc()
	m.AuditFailures.Inc()
	m.AuditRecordsLost.Inc()
	m.ActiveSessions.Set(func() float64 { return 3 })
	m.ActiveStreams.Set(func() float64 { return 2 })
	m.Redactions.WithLabelValues("files", "aws_access_key", "redact", WhereResponse).Inc()
	m.RevocationsActive.Set(func() float64 { return 1 })
	m.RevokedRequests.WithLabelValues("files").Inc()
	m.Anomalies.WithLabelValues("tool_burst", "throttle").Inc()
	m.ObserveReload(nil, time.Unix(1700000000, 0))
}

func gather(t testing.TB, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func mcpgateNames(fams map[string]*dto.MetricFamily) []string {
	var names []string
	for n := range fams {
		if strings.HasPrefix(n, Prefix) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// Every name in Names is registered by New itself, before any sample:
// registering another collector under that name fails.
func TestNamesAreRegisteredByNew(t *testing.T) {
	m := New()
	for _, name := range Names() {
		probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "probe"})
		if err := m.Registry().Register(probe); err == nil {
			t.Errorf("%s is in Names() but New did not register it", name)
			m.Registry().Unregister(probe)
		}
	}
	// The probe itself works: an unused name registers.
	if err := m.Registry().Register(prometheus.NewGauge(prometheus.GaugeOpts{Name: "mcpgate_probe_unused", Help: "probe"})); err != nil {
		t.Fatalf("probe of an unused name: %v", err)
	}
}

// Names matches the registry exactly, is sorted, and every metric is
// gatherable with the conventions of the package doc.
func TestNamesMatchRegistry(t *testing.T) {
	m := New()
	touchAll(m)
	fams := gather(t, m)
	if diff := cmp.Diff(Names(), mcpgateNames(fams)); diff != "" {
		t.Fatalf("Names() vs registry (-Names +registry):\n%s", diff)
	}
	if !slices.IsSorted(Names()) {
		t.Error("Names() is not sorted")
	}
	for _, name := range Names() {
		mf := fams[name]
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help", name)
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			if !strings.HasSuffix(name, "_total") {
				t.Errorf("counter %s does not end in _total", name)
			}
		case dto.MetricType_HISTOGRAM:
			if !strings.HasSuffix(name, "_seconds") {
				t.Errorf("histogram %s is not in seconds", name)
			}
			var got []float64
			for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
				got = append(got, b.GetUpperBound())
			}
			if diff := cmp.Diff(Buckets(), got); diff != "" {
				t.Errorf("%s buckets (-want +got):\n%s", name, diff)
			}
		case dto.MetricType_GAUGE:
			if strings.HasSuffix(name, "_total") {
				t.Errorf("gauge %s ends in _total", name)
			}
		default:
			t.Errorf("%s has unexpected type %v", name, mf.GetType())
		}
	}
	for _, want := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if fams[want] == nil {
			t.Errorf("%s missing: Go or process collector not registered", want)
		}
	}
}

// The labels of every metric, as the package doc and the brief fix them.
func TestLabels(t *testing.T) {
	m := New()
	touchAll(m)
	fams := gather(t, m)
	want := map[string][]string{
		"mcpgate_requests_total":                                {"decision", "method", "route"},
		"mcpgate_request_duration_seconds":                      {"route"},
		"mcpgate_token_validation_failures_total":               {"reason"},
		"mcpgate_policy_denials_total":                          {"route", "rule"},
		"mcpgate_authorization_server_request_duration_seconds": {"call", "issuer"},
		"mcpgate_authorization_server_errors_total":             {"call", "issuer"},
		"mcpgate_jwks_key_age_seconds":                          {"issuer"},
		"mcpgate_jwks_refresh_failures_total":                   {"issuer"},
		"mcpgate_stale_denials_total":                           {"issuer"},
		"mcpgate_circuit_breaker_state":                         {"kind", "name"},
		"mcpgate_upstream_request_duration_seconds":             {"route"},
		"mcpgate_upstream_errors_total":                         {"kind", "route"},
		"mcpgate_audit_queue_depth":                             nil,
		"mcpgate_audit_records_total":                           nil,
		"mcpgate_audit_failures_total":                          nil,
		"mcpgate_audit_records_lost_total":                      nil,
		"mcpgate_active_sessions":                               nil,
		"mcpgate_active_streams":                                nil,
		"mcpgate_redactions_total":                              {"action", "detector", "route", "where"},
		"mcpgate_revocations_active":                            nil,
		"mcpgate_revoked_requests_total":                        {"route"},
		"mcpgate_anomalies_total":                               {"action", "kind"},
		"mcpgate_config_reloads_total":                          {"result"},
		"mcpgate_config_last_reload_success_timestamp_seconds":  nil,
	}
	if len(want) != len(Names()) {
		t.Fatalf("test covers %d metrics, Names() has %d", len(want), len(Names()))
	}
	for name, labels := range want {
		mf := fams[name]
		if mf == nil {
			t.Errorf("%s not gathered", name)
			continue
		}
		if diff := cmp.Diff(labels, labelNames(mf)); diff != "" {
			t.Errorf("%s labels (-want +got):\n%s", name, diff)
		}
	}
}

func labelNames(mf *dto.MetricFamily) []string {
	var names []string
	for _, lp := range mf.GetMetric()[0].GetLabel() {
		names = append(names, lp.GetName())
	}
	return names
}

// The cardinality rule: no metric may have a label that identifies a caller
// or carries a token, whatever its spelling.
func TestNoIdentifyingLabels(t *testing.T) {
	m := New()
	touchAll(m)
	banned := []string{"subject", "sub", "client_id", "token", "session", "user", "session_id", "user_id", "jti", "email", "ip"}
	for name, mf := range gather(t, m) {
		for _, metric := range mf.GetMetric() {
			for _, lp := range metric.GetLabel() {
				if slices.Contains(banned, strings.ToLower(lp.GetName())) || ForbiddenLabel(lp.GetName()) {
					t.Errorf("%s has identifying label %q", name, lp.GetName())
				}
			}
		}
	}
	// ForbiddenLabel itself catches every banned spelling and lets the
	// bounded ones through.
	for _, l := range append(banned, "Subject", "client", "access_token", "sessionID", "remote_addr", "tool_arguments") {
		if !ForbiddenLabel(l) {
			t.Errorf("ForbiddenLabel(%q) = false", l)
		}
	}
	for _, l := range []string{"route", "method", "decision", "issuer", "call", "rule", "reason", "kind", "name", "detector", "action", "where", "result"} {
		if ForbiddenLabel(l) {
			t.Errorf("ForbiddenLabel(%q) = true, want false", l)
		}
	}
}

// Two instances are independent and nothing reaches the global registry.
func TestNoGlobalRegistry(t *testing.T) {
	a, b := New(), New()
	a.AuditRecords.Add(5)
	if got := gather(t, b)["mcpgate_audit_records_total"].GetMetric()[0].GetCounter().GetValue(); got != 0 {
		t.Errorf("second instance sees %v audit records, want 0", got)
	}
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), Prefix) {
			t.Errorf("%s is on the global default registry", mf.GetName())
		}
	}
}

// The handler serves the text exposition format with every metric.
func TestHandlerServesText(t *testing.T) {
	m := New()
	touchAll(m)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	text := string(body)
	for _, name := range Names() {
		if !strings.Contains(text, "# TYPE "+name+" ") {
			t.Errorf("exposition lacks # TYPE %s", name)
		}
	}
	for _, line := range []string{
		`mcpgate_requests_total{decision="allow",method="tools/call",route="files"} 1`,
		`mcpgate_circuit_breaker_state{kind="authorization_server",name="https://idp.example.com"} 2`,
		`mcpgate_audit_queue_depth 7`,
		`mcpgate_config_reloads_total{result="failure"} 0`,
		`mcpgate_config_last_reload_success_timestamp_seconds 1.7e+09`,
		`mcpgate_request_duration_seconds_bucket{route="files",le="0.005"} 1`,
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("exposition lacks %q", line)
		}
	}
}

func TestObserveReload(t *testing.T) {
	m := New()
	m.ObserveReload(nil, time.Unix(100, 500_000_000))
	m.ObserveReload(errors.New("bad config"), time.Unix(200, 0))
	m.ObserveReload(errors.New("bad config"), time.Unix(300, 0))
	fams := gather(t, m)
	got := map[string]float64{}
	for _, metric := range fams["mcpgate_config_reloads_total"].GetMetric() {
		got[metric.GetLabel()[0].GetValue()] = metric.GetCounter().GetValue()
	}
	if diff := cmp.Diff(map[string]float64{ReloadSuccess: 1, ReloadFailure: 2}, got); diff != "" {
		t.Errorf("reloads (-want +got):\n%s", diff)
	}
	// A failure leaves the last success time alone.
	if ts := fams["mcpgate_config_last_reload_success_timestamp_seconds"].GetMetric()[0].GetGauge().GetValue(); ts != 100.5 {
		t.Errorf("last success = %v, want 100.5", ts)
	}
}

func TestFuncGauge(t *testing.T) {
	m := New()
	if fams := gather(t, m); fams["mcpgate_active_sessions"] != nil {
		t.Fatal("an unset FuncGauge exported a sample")
	}
	n := 4.0
	m.ActiveSessions.Set(func() float64 { return n })
	if got := gather(t, m)["mcpgate_active_sessions"].GetMetric()[0].GetGauge().GetValue(); got != 4 {
		t.Errorf("value %v, want 4", got)
	}
	n = 9 // read at scrape time
	if got := gather(t, m)["mcpgate_active_sessions"].GetMetric()[0].GetGauge().GetValue(); got != 9 {
		t.Errorf("value %v, want 9", got)
	}
	m.ActiveSessions.Set(nil)
	if fams := gather(t, m); fams["mcpgate_active_sessions"] != nil {
		t.Error("Set(nil) left a sample")
	}
}

func vecValues(t *testing.T, m *Metrics, name string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	mf := gather(t, m)[name]
	for _, metric := range mf.GetMetric() {
		var vals []string
		for _, lp := range metric.GetLabel() {
			vals = append(vals, lp.GetValue())
		}
		out[strings.Join(vals, ",")] = metric.GetGauge().GetValue()
	}
	return out
}

func TestGaugeFuncVecSources(t *testing.T) {
	m := New()
	removeAS := m.CircuitBreakerState.Add(func() map[string]float64 {
		return map[string]float64{Key(BreakerKindAuthorizationServer, "https://idp.example.com"): BreakerHalfOpen}
	})
	m.CircuitBreakerState.Add(func() map[string]float64 {
		return map[string]float64{
			Key(BreakerKindUpstream, "files"):  BreakerClosed,
			Key(BreakerKindUpstream, "search"): BreakerOpen,
		}
	})
	m.CircuitBreakerState.Add(nil) // ignored
	want := map[string]float64{
		"authorization_server,https://idp.example.com": 1,
		"upstream,files":  0,
		"upstream,search": 2,
	}
	if diff := cmp.Diff(want, vecValues(t, m, "mcpgate_circuit_breaker_state")); diff != "" {
		t.Errorf("breaker states (-want +got):\n%s", diff)
	}
	removeAS()
	removeAS() // idempotent
	delete(want, "authorization_server,https://idp.example.com")
	if diff := cmp.Diff(want, vecValues(t, m, "mcpgate_circuit_breaker_state")); diff != "" {
		t.Errorf("after remove (-want +got):\n%s", diff)
	}
}

// A bad key or a key reported twice loses only its own sample: Gather
// reports the error, and the handler still serves everything else and
// counts the error.
func TestGaugeFuncVecBadKeys(t *testing.T) {
	tests := []struct {
		name    string
		sources []map[string]float64
		errPart string
	}{
		{"too few values", []map[string]float64{{"files": 1}}, "has 1 label values, want 2"},
		{"too many values", []map[string]float64{{Key("upstream", "files", "x"): 1}}, "has 3 label values, want 2"},
		{"same key from two sources", []map[string]float64{{Key("upstream", "files"): 0}, {Key("upstream", "files"): 2}}, "reported by two sources"},
		{"invalid UTF-8", []map[string]float64{{Key("upstream", "\xff"): 0}}, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			m.CircuitBreakerState.Add(func() map[string]float64 { return map[string]float64{Key("upstream", "good"): 1} })
			for _, s := range tt.sources {
				m.CircuitBreakerState.Add(func() map[string]float64 { return s })
			}
			_, err := m.Registry().Gather()
			if err == nil || !strings.Contains(err.Error(), tt.errPart) {
				t.Fatalf("Gather error %v, want one containing %q", err, tt.errPart)
			}
			// The second scrape shows the error the first one counted.
			var body string
			for range 2 {
				rec := httptest.NewRecorder()
				m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
				if rec.Code != http.StatusOK {
					t.Fatalf("status %d", rec.Code)
				}
				body = rec.Body.String()
				if !strings.Contains(body, `mcpgate_circuit_breaker_state{kind="upstream",name="good"} 1`) {
					t.Error("the good sample was lost with the bad one")
				}
			}
			if !strings.Contains(body, `promhttp_metric_handler_errors_total{cause="gathering"} 1`) {
				t.Error("the gathering error was not counted")
			}
		})
	}
}

func TestGaugeFuncRegistration(t *testing.T) {
	one := func() float64 { return 1 }
	tests := []struct {
		name    string
		metric  string
		help    string
		fn      func() float64
		wantErr string
	}{
		{"ok", "mcpgate_extra_depth", "extra", one, ""},
		{"no prefix", "extra_depth", "extra", one, "must start with"},
		{"prefix only", "mcpgate_", "extra", one, "must start with"},
		{"counter suffix", "mcpgate_extra_total", "extra", one, "_total"},
		{"no help", "mcpgate_extra_depth", "", one, "help is required"},
		{"nil fn", "mcpgate_extra_depth", "extra", nil, "nil callback"},
		{"taken", "mcpgate_active_sessions", "extra", one, "register mcpgate_active_sessions"},
		{"invalid name", "mcpgate_bad-name", "extra", one, "must match"},
		{"upper case", "mcpgate_Depth", "extra", one, "must match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			err := m.GaugeFunc(tt.metric, tt.help, tt.fn)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("GaugeFunc: %v", err)
				}
				if got := gather(t, m)[tt.metric].GetMetric()[0].GetGauge().GetValue(); got != 1 {
					t.Errorf("value %v, want 1", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("GaugeFunc error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	// Every problem is reported at once.
	err := New().GaugeFunc("bad_total", "", nil)
	for _, part := range []string{"must start with", "_total", "help is required", "nil callback"} {
		if err == nil || !strings.Contains(err.Error(), part) {
			t.Errorf("error %v lacks %q", err, part)
		}
	}
}

func TestGaugeVecFuncRegistration(t *testing.T) {
	fn := func() map[string]float64 { return map[string]float64{Key("files", "a"): 3} }
	tests := []struct {
		name    string
		labels  []string
		fn      func() map[string]float64
		wantErr string
	}{
		{"ok", []string{"route", "shard"}, fn, ""},
		{"invalid label", []string{"route", "shard-id"}, fn, `label "shard-id" must match`},
		{"subject label", []string{"route", "subject"}, fn, `label "subject"`},
		{"client_id label", []string{"client_id", "route"}, fn, `label "client_id"`},
		{"session label", []string{"route", "session"}, fn, `label "session"`},
		{"duplicate label", []string{"route", "route"}, fn, "duplicate label"},
		{"nil fn", []string{"route", "shard"}, nil, "nil callback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			v, err := m.GaugeVecFunc("mcpgate_extra_pool_size", "extra", tt.labels, tt.fn)
			if tt.wantErr == "" {
				if err != nil || v == nil {
					t.Fatalf("GaugeVecFunc: %v, %v", v, err)
				}
				v.Add(func() map[string]float64 { return map[string]float64{Key("search", "b"): 4} })
				if diff := cmp.Diff(map[string]float64{"files,a": 3, "search,b": 4}, vecValues(t, m, "mcpgate_extra_pool_size")); diff != "" {
					t.Errorf("values (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("GaugeVecFunc error %v, want one containing %q", err, tt.wantErr)
			}
			if _, err := m.Registry().Gather(); err != nil {
				t.Errorf("a rejected gauge broke the registry: %v", err)
			}
		})
	}
}

func TestMethodLabel(t *testing.T) {
	// A JWT-shaped string, built at runtime: a client can put anything in
	// the method, and it must never become a label value.
	seg := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rand.IntN(256))
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	jwtish := seg(20) + "." + seg(40) + "." + seg(32)
	tests := []struct{ in, want string }{
		{"tools/call", "tools/call"},
		{"initialize", "initialize"},
		{"notifications/initialized", "notifications/initialized"},
		{"tasks/result", "tasks/result"},
		{"GET", "GET"},
		{"DELETE", "DELETE"},
		{"POST", "other"},
		{"", "other"},
		{"Tools/Call", "other"},
		{"tools/call ", "other"},
		{"tools/call\x00", "other"},
		{"tools/" + strings.Repeat("x", 1000), "other"},
		{jwtish, "other"},
	}
	for _, tt := range tests {
		if got := MethodLabel(tt.in); got != tt.want {
			t.Errorf("MethodLabel(%.40q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	m := New()
	m.Requests.WithLabelValues("files", MethodLabel(jwtish), DecisionReject).Inc()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if strings.Contains(rec.Body.String(), jwtish[:20]) {
		t.Error("a client-chosen method reached the exposition")
	}
}

func FuzzMethodLabel(f *testing.F) {
	for _, s := range []string{"tools/call", "GET", "", "other", "tools/call\n", "notifications/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, method string) {
		got := MethodLabel(method)
		if got != "other" && got != method {
			t.Fatalf("MethodLabel(%q) = %q: neither the method nor other", method, got)
		}
		// The label set is bounded: a method maps to itself only if it is
		// one of a fixed, short, printable set.
		if got == method && (len(method) > 40 || strings.ContainsFunc(method, func(r rune) bool { return r <= ' ' || r > '~' })) {
			t.Fatalf("MethodLabel passed %q through", method)
		}
	})
}

// Any key a source returns yields either a sample whose label values are
// exactly the key's parts, or a collection error; never a panic, never a
// sample with other values.
func FuzzGaugeFuncVecKey(f *testing.F) {
	for _, s := range []string{"a" + KeySep + "b", "a", "", KeySep, "a" + KeySep + "b" + KeySep + "c", "\xff" + KeySep + "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		v := newGaugeFuncVec("mcpgate_fuzz", "fuzz", []string{"a", "b"})
		v.Add(func() map[string]float64 { return map[string]float64{key: 1} })
		reg := prometheus.NewRegistry()
		reg.MustRegister(v)
		mfs, err := reg.Gather()
		if err != nil {
			if len(mfs) != 0 {
				t.Fatalf("error %v and %d families", err, len(mfs))
			}
			return
		}
		labels := mfs[0].GetMetric()[0].GetLabel()
		if got := Key(labels[0].GetValue(), labels[1].GetValue()); got != key {
			t.Fatalf("key %q exported as %q", key, got)
		}
	})
}

// Callbacks, sources and increments race with scrapes safely.
func TestConcurrentUse(t *testing.T) {
	m := New()
	touchAll(m)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				remove := m.JWKSKeyAge.Add(func() map[string]float64 {
					return map[string]float64{"https://idp" + string(rune('a'+i)) + ".example.com": float64(j)}
				})
				m.ActiveStreams.Set(func() float64 { return float64(j) })
				m.Requests.WithLabelValues("files", "tools/call", DecisionAllow).Inc()
				remove()
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for range 50 {
				rec := httptest.NewRecorder()
				m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
				if rec.Code != http.StatusOK {
					t.Errorf("status %d", rec.Code)
				}
			}
		})
	}
	wg.Wait()
	if got := gather(t, m)["mcpgate_requests_total"].GetMetric()[0].GetCounter().GetValue(); got != 1+8*200 {
		t.Errorf("requests = %v, want %d", got, 1+8*200)
	}
}

func BenchmarkRequestsInc(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.Requests.WithLabelValues("files", MethodLabel("tools/call"), DecisionAllow).Inc()
	}
}

func BenchmarkRequestDurationObserve(b *testing.B) {
	m := New()
	h := m.RequestDuration.WithLabelValues("files")
	b.ReportAllocs()
	for b.Loop() {
		h.Observe(0.0042)
	}
}

func BenchmarkScrape(b *testing.B) {
	m := New()
	touchAll(m)
	for i := range 20 {
		route := "route" + string(rune('a'+i))
		m.Requests.WithLabelValues(route, "tools/call", DecisionAllow).Inc()
		m.RequestDuration.WithLabelValues(route).Observe(0.01)
	}
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, req)
	}
}
