package metrics

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"
)

const (
	dashboardPath  = "../../deploy/grafana/mcpgate-dashboard.json"
	alertsPath     = "../../deploy/prometheus/alerts.yaml"
	alertsTestPath = "../../deploy/prometheus/alerts_test.yaml"
)

var metricRef = regexp.MustCompile(`mcpgate_[a-z0-9_]+`)

// registeredTypes returns every mcpgate metric New registers, with its type.
func registeredTypes(t *testing.T) map[string]dto.MetricType {
	t.Helper()
	m := New()
	touchAll(m)
	out := map[string]dto.MetricType{}
	for name, mf := range gather(t, m) {
		if strings.HasPrefix(name, Prefix) {
			out[name] = mf.GetType()
		}
	}
	return out
}

// unknownMetrics returns the mcpgate metric names text references that are
// not registered. A _bucket, _sum or _count suffix is accepted only on a
// histogram.
func unknownMetrics(text string, known map[string]dto.MetricType) (refs, unknown []string) {
	for _, ref := range metricRef.FindAllString(text, -1) {
		name := ref
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(ref, suffix); ok && known[base] == dto.MetricType_HISTOGRAM {
				name = base
			}
		}
		refs = append(refs, name)
		if _, ok := known[name]; !ok {
			unknown = append(unknown, ref)
		}
	}
	slices.Sort(unknown)
	return refs, slices.Compact(unknown)
}

func TestUnknownMetricsDetects(t *testing.T) {
	known := registeredTypes(t)
	tests := []struct {
		expr string
		want []string
	}{
		{`rate(mcpgate_requests_total[5m])`, nil},
		{`histogram_quantile(0.99, rate(mcpgate_request_duration_seconds_bucket[5m]))`, nil},
		{`rate(mcpgate_request_duration_seconds_count[5m])`, nil},
		{`rate(mcpgate_request_total[5m])`, []string{"mcpgate_request_total"}},
		{`rate(mcpgate_requests_total_count[5m])`, []string{"mcpgate_requests_total_count"}},
		{`mcpgate_audit_queue_depth_bucket`, []string{"mcpgate_audit_queue_depth_bucket"}},
	}
	for _, tt := range tests {
		if _, got := unknownMetrics(tt.expr, known); !slices.Equal(got, tt.want) {
			t.Errorf("unknownMetrics(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

// Every metric the dashboard, the alerts and their tests reference exists,
// and together they use a good share of what mcpgate exports.
func TestDeployReferencesRegisteredMetrics(t *testing.T) {
	known := registeredTypes(t)
	used := map[string]bool{}
	for _, path := range []string{dashboardPath, alertsPath, alertsTestPath} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		refs, unknown := unknownMetrics(string(b), known)
		if len(unknown) > 0 {
			t.Errorf("%s references metrics New does not register: %q", path, unknown)
		}
		if len(refs) == 0 {
			t.Errorf("%s references no mcpgate metric", path)
		}
		for _, r := range refs {
			used[r] = true
		}
	}
	for _, name := range Names() {
		if !used[name] {
			t.Errorf("%s is neither on the dashboard nor in an alert", name)
		}
	}
}

func TestDashboard(t *testing.T) {
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		SchemaVersion int    `json:"schemaVersion"`
		UID           string `json:"uid"`
		Title         string `json:"title"`
		Templating    struct {
			List []struct {
				Name       string          `json:"name"`
				Type       string          `json:"type"`
				Query      json.RawMessage `json:"query"`
				Datasource json.RawMessage `json:"datasource"`
			} `json:"list"`
		} `json:"templating"`
		Panels []dashPanel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard does not parse: %v", err)
	}
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d, want 39 or later", d.SchemaVersion)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard lacks uid or title")
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type + " " + string(v.Query)
		if v.Name == "route" && !strings.Contains(string(v.Datasource), "${datasource}") {
			t.Errorf("route variable does not use ${datasource}: %s", v.Datasource)
		}
	}
	if vars["datasource"] != `datasource "prometheus"` {
		t.Errorf("datasource variable = %q, want a Prometheus datasource variable", vars["datasource"])
	}
	if !strings.HasPrefix(vars["route"], "query ") || !strings.Contains(vars["route"], "label_values(mcpgate_requests_total, route)") {
		t.Errorf("route variable = %q, want label_values(mcpgate_requests_total, route)", vars["route"])
	}

	panels := flattenPanels(d.Panels)
	if len(panels) < 15 {
		t.Errorf("%d panels, want at least 15", len(panels))
	}
	ids := map[int]bool{}
	usesRoute := false
	for _, p := range panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q datasource = %+v, want prometheus ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no targets", p.Title)
		}
		refIDs := map[string]bool{}
		for _, tg := range p.Targets {
			if !strings.Contains(tg.Expr, "mcpgate_") {
				t.Errorf("panel %q target %q queries no mcpgate metric", p.Title, tg.RefID)
			}
			if tg.RefID == "" || refIDs[tg.RefID] {
				t.Errorf("panel %q: missing or repeated refId %q", p.Title, tg.RefID)
			}
			refIDs[tg.RefID] = true
			if tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q target %q datasource %q", p.Title, tg.RefID, tg.Datasource.UID)
			}
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") || strings.Count(tg.Expr, "{") != strings.Count(tg.Expr, "}") {
				t.Errorf("panel %q target %q has unbalanced brackets: %s", p.Title, tg.RefID, tg.Expr)
			}
			usesRoute = usesRoute || strings.Contains(tg.Expr, `route=~"$route"`)
		}
	}
	if !usesRoute {
		t.Error("no panel filters on the route variable")
	}
}

type dashPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"`
}

// flattenPanels returns the panels, those inside rows included, without
// the rows themselves.
func flattenPanels(ps []dashPanel) []dashPanel {
	var out []dashPanel
	for _, p := range ps {
		if p.Type == "row" {
			out = append(out, flattenPanels(p.Panels)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

// The alert rules are well formed for people too: every rule has a
// severity and a summary, and the alerts the runbook promises exist.
func TestAlertRulesShape(t *testing.T) {
	b, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	var names []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Alert)
			if !strings.HasPrefix(r.Alert, "Mcpgate") || r.Expr == "" {
				t.Errorf("rule %q: want a Mcpgate* alert with an expression", r.Alert)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("rule %q severity %q", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("rule %q lacks summary or description", r.Alert)
			}
		}
	}
	for _, want := range []string{"McpgateAuditFailures", "McpgateAuditRecordsLost", "McpgateAuthorizationServerDown",
		"McpgateHighDenialRate", "McpgateTokenValidationFailuresSpike", "McpgateUpstreamErrors", "McpgateJWKSStale",
		"McpgateConfigReloadFailed", "McpgateAnomalies", "McpgateStaleDenials"} {
		if !slices.Contains(names, want) {
			t.Errorf("alert %s missing", want)
		}
	}
}

// promtool checks the rules and runs their unit tests. Without promtool
// the test fails: it is provisioned by ./scripts/test.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: run ./scripts/test (it installs Debian's prometheus package), or apt-get install prometheus")
	}
	rules, err := filepath.Abs(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	tests, err := filepath.Abs(alertsTestPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "rules", rules}, {"test", "rules", tests}} {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, promtool, args...).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		} else if !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s did not report SUCCESS:\n%s", strings.Join(args, " "), out)
		}
	}
}
