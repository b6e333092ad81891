package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ms(xs ...int) []time.Duration {
	out := make([]time.Duration, len(xs))
	for i, x := range xs {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.5, 7 * time.Millisecond},
		{"one p99", ms(7), 0.99, 7 * time.Millisecond},
		{"odd median", ms(1, 2, 3), 0.5, 2 * time.Millisecond},
		{"even p50 is the lower middle (nearest rank)", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 100", hundred, 0.99, 99 * time.Millisecond},
		{"p50 of 100", hundred, 0.50, 50 * time.Millisecond},
		{"p100", hundred, 1, 100 * time.Millisecond},
		{"q tiny gives the minimum", hundred, 0.0001, time.Millisecond},
		{"q 0 clamps to the minimum", hundred, 0, time.Millisecond},
		{"q above 1 clamps to the maximum", hundred, 2, 100 * time.Millisecond},
		{"p99 of 3 is the max", ms(1, 2, 50), 0.99, 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.q); got != tc.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tc.sorted, tc.q, got, tc.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name string
		in   []float64
		want float64 // NaN: want NaN
	}{
		{"empty", nil, nan},
		{"all NaN", []float64{nan, nan}, nan},
		{"one", []float64{3}, 3},
		{"odd unsorted", []float64{5, 1, 3}, 3},
		{"even is the mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"NaN ignored", []float64{nan, 10, 20, 30}, 20},
		{"outlier does not move it", []float64{100, 101, 99, 1e9, 100}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			got := median(tc.in)
			if math.IsNaN(tc.want) != math.IsNaN(got) || !math.IsNaN(got) && got != tc.want {
				t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
			}
			for i := range in {
				if in[i] != tc.in[i] && !math.IsNaN(in[i]) {
					t.Fatalf("median modified its input: %v → %v", in, tc.in)
				}
			}
		})
	}
}

func TestRotate(t *testing.T) {
	xs := []string{"a", "b", "c"}
	for _, tc := range []struct {
		r    int
		want []string
	}{
		{0, []string{"a", "b", "c"}},
		{1, []string{"b", "c", "a"}},
		{2, []string{"c", "a", "b"}},
		{3, []string{"a", "b", "c"}},
		{7, []string{"b", "c", "a"}},
	} {
		if got := rotate(xs, tc.r); !cmp.Equal(got, tc.want) {
			t.Errorf("rotate(%v, %d) = %v, want %v", xs, tc.r, got, tc.want)
		}
	}
	if got := rotate([]string(nil), 3); got != nil {
		t.Errorf("rotate(nil) = %v", got)
	}
	// Over len(xs) rounds every target holds every position once.
	pos := map[string]map[int]bool{}
	for r := range len(xs) {
		for i, x := range rotate(xs, r) {
			if pos[x] == nil {
				pos[x] = map[int]bool{}
			}
			pos[x][i] = true
		}
	}
	for x, p := range pos {
		if len(p) != len(xs) {
			t.Errorf("%s held positions %v", x, p)
		}
	}
}

func TestRatio(t *testing.T) {
	for _, tc := range []struct {
		a, b, want float64
	}{
		{1, 2, 0.5}, {3, 0, math.NaN()}, {math.NaN(), 1, math.NaN()}, {1, math.NaN(), math.NaN()},
	} {
		got := ratio(tc.a, tc.b)
		if math.IsNaN(tc.want) != math.IsNaN(got) || !math.IsNaN(got) && got != tc.want {
			t.Errorf("ratio(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func run3(target string, c int, tput, p50, front, up float64) []Run {
	var out []Run
	for i, k := range []float64{0.9, 1, 1.1} { // the middle round is the median
		out = append(out, Run{Target: target, Concurrency: c, Round: i + 1,
			Throughput: num(tput * k), P50: num(p50 * k), P99: num(p50 * 2 * k),
			CPUFront: num(front * k), CPUUpstream: num(up * k), CPUTotal: num((front + up) * k)})
	}
	return out
}

func TestSummarize(t *testing.T) {
	nan := num(math.NaN())
	var runs []Run
	runs = append(runs, run3("direct", 8, 1000, 100, math.NaN(), 50)...)
	runs = append(runs, run3("proxy", 8, 800, 150, 30, 50)...)
	runs = append(runs, run3("mcpgate-full", 8, 400, 400, 120, 50)...)
	runs = append(runs, run3("sdk-auth", 1, 500, 200, math.NaN(), 80)...) // another level, no baselines

	got := summarize(runs, []int{8, 1}, []string{"direct", "proxy", "mcpgate-full", "sdk-auth"})
	want := []Summary{
		{Target: "direct", Concurrency: 8, Rounds: 3, Throughput: 1000, P50: 100, P99: 200, CPUFront: nan, CPUUpstream: 50, CPUTotal: nan,
			VsDirect: 1, VsProxy: 1.25, P50AddedOverProxy: -50},
		{Target: "proxy", Concurrency: 8, Rounds: 3, Throughput: 800, P50: 150, P99: 300, CPUFront: 30, CPUUpstream: 50, CPUTotal: 80,
			VsDirect: 0.8, VsProxy: 1, P50AddedOverProxy: 0},
		{Target: "mcpgate-full", Concurrency: 8, Rounds: 3, Throughput: 400, P50: 400, P99: 800, CPUFront: 120, CPUUpstream: 50, CPUTotal: 170,
			VsDirect: 0.4, VsProxy: 0.5, P50AddedOverProxy: 250},
		{Target: "sdk-auth", Concurrency: 1, Rounds: 3, Throughput: 500, P50: 200, P99: 400, CPUFront: nan, CPUUpstream: 80, CPUTotal: nan,
			VsDirect: nan, VsProxy: nan, P50AddedOverProxy: nan},
	}
	approx := cmp.Comparer(func(a, b num) bool {
		if math.IsNaN(float64(a)) || math.IsNaN(float64(b)) {
			return math.IsNaN(float64(a)) && math.IsNaN(float64(b))
		}
		return math.Abs(float64(a-b)) < 1e-9*math.Max(1, math.Abs(float64(b)))
	})
	// CPUTotal of the fixtures without a front is NaN+up = NaN.
	if d := cmp.Diff(want, got, approx); d != "" {
		t.Errorf("summarize (-want +got):\n%s", d)
	}
}

func TestRenderTables(t *testing.T) {
	nan := num(math.NaN())
	sum := []Summary{
		{Target: "direct", Concurrency: 1, Throughput: 1234.4, P50: 99.5, P99: 300, CPUFront: nan, CPUUpstream: 45.25, CPUTotal: 45.25, VsDirect: 1, VsProxy: 1.5, P50AddedOverProxy: -20},
		{Target: "proxy", Concurrency: 1, Throughput: 822, P50: 120, P99: 400, CPUFront: 30, CPUUpstream: 45, CPUTotal: 75, VsDirect: 0.666, VsProxy: 1, P50AddedOverProxy: 0},
		{Target: "direct", Concurrency: 8, Throughput: 5000, P50: 1000, P99: 3000, CPUFront: nan, CPUUpstream: 40, CPUTotal: 40, VsDirect: 1, VsProxy: nan, P50AddedOverProxy: nan},
	}
	got := renderTables(sum, []int{1, 8})
	want := "\n### Concurrency 1\n\n" + tableHeader +
		"| direct | 1234 | 100 | 300 | — | 45.2 | 45.2 | 1.00× | 1.50× | -20 |\n" +
		"| proxy | 822 | 120 | 400 | 30.0 | 45.0 | 75.0 | 0.67× | 1.00× | +0 |\n" +
		"\n### Concurrency 8\n\n" + tableHeader +
		"| direct | 5000 | 1000 | 3000 | — | 40.0 | 40.0 | 1.00× | — | — |\n"
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("renderTables (-want +got):\n%s", d)
	}
}

func TestNumJSON(t *testing.T) {
	b, err := json.Marshal(struct {
		A, B, C num
	}{1.234, num(math.NaN()), num(math.Inf(1))})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"A":1.23,"B":null,"C":null}` {
		t.Errorf("got %s", b)
	}
}

func TestWriteOut(t *testing.T) {
	rep := &Report{Markdown: "## table\n", Runs: []Run{{Target: "direct", Requests: 10, CPUFront: num(math.NaN())}}}
	p := filepath.Join(t.TempDir(), "out.md")
	if err := writeOut(p, rep); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.HasPrefix(s, "## table\n") {
		t.Errorf("the markdown does not come first:\n%s", s)
	}
	i, j := strings.Index(s, "```json\n"), strings.LastIndex(s, "\n```")
	if i < 0 || j < i {
		t.Fatalf("no JSON block:\n%s", s)
	}
	var back struct {
		Runs []struct {
			Target   string   `json:"target"`
			Requests int      `json:"requests"`
			CPUFront *float64 `json:"cpu_proxy_us_per_req"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(s[i+len("```json\n"):j]), &back); err != nil {
		t.Fatalf("the JSON block does not parse: %v", err)
	}
	if len(back.Runs) != 1 || back.Runs[0].Target != "direct" || back.Runs[0].Requests != 10 || back.Runs[0].CPUFront != nil {
		t.Errorf("raw runs: %+v", back.Runs)
	}
	if !strings.Contains(s, `"cpu_proxy_us_per_req": null`) || !strings.Contains(s, `"requests": 10`) {
		t.Errorf("raw numbers missing:\n%s", s)
	}
}
