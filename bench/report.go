package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is a harness run: the machine, the settings, every round's raw
// numbers, their medians and the checks.
type Report struct {
	Machine  Machine      `json:"machine"`
	Settings Settings     `json:"settings"`
	Targets  []TargetInfo `json:"targets"`
	Runs     []Run        `json:"runs"`
	Summary  []Summary    `json:"summary"`
	Checks   []Check      `json:"checks"`
	// Profiles are the files -profile wrote; MCPGateBinary is the binary
	// they profiled.
	Profiles      []ProfileFile `json:"profiles,omitempty"`
	MCPGateBinary string        `json:"mcpgate_binary,omitempty"`
	Markdown      string        `json:"-"`
}

// Machine describes where the run happened.
type Machine struct {
	CPU        string `json:"cpu"`
	NumCPU     int    `json:"nproc"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	Kernel     string `json:"kernel"`
	Date       string `json:"date"`
	Commit     string `json:"commit"`
	ClockTicks int64  `json:"clk_tck"`
	Command    string `json:"command"`
}

// Settings are the run's parameters.
type Settings struct {
	Duration    string   `json:"duration"`
	Warmup      string   `json:"warmup"`
	Rounds      int      `json:"rounds"`
	Concurrency []int    `json:"concurrency"`
	Targets     []string `json:"targets"`
	Tools       int      `json:"tools"`
	TrackIDs    bool     `json:"track_ids"`
	// Principals is -principals: 0 is one per worker (N = concurrency).
	Principals int    `json:"principals"`
	Profile    string `json:"profile_dir,omitempty"`
}

func settingsOf(c Config) Settings {
	return Settings{Duration: c.Duration.String(), Warmup: c.Warmup.String(), Rounds: c.Rounds,
		Concurrency: c.Concurrency, Targets: c.Targets, Tools: c.Tools, TrackIDs: c.TrackIDs,
		Principals: c.Principals, Profile: c.Profile}
}

// principalsText describes the principals setting.
func principalsText(s Settings) string {
	if s.Principals == 0 {
		levels := make([]string, len(s.Concurrency))
		for i, c := range s.Concurrency {
			levels[i] = strconv.Itoa(c)
		}
		return "one per worker (N = concurrency: " + strings.Join(levels, ", ") + ")"
	}
	return strconv.Itoa(s.Principals)
}

// TargetInfo names a target and its mcpgate configuration, if any.
type TargetInfo struct {
	Name   string `json:"name"`
	About  string `json:"about"`
	Config string `json:"config,omitempty"`
}

// Check is one verified property of the run.
type Check struct {
	Target string `json:"target"`
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// num is a float64 that encodes NaN (not applicable) as JSON null.
type num float64

func (n num) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(n), 'f', 2, 64), nil
}

// Run is one measurement: a target at a concurrency in a round. Times
// are µs; CPU figures are µs of CPU per request (proxy: the front
// process, NaN when there is none; upstream: the MCP server process;
// client: the harness itself, generating the load).
type Run struct {
	Target      string `json:"target"`
	Concurrency int    `json:"concurrency"`
	Round       int    `json:"round"`
	Position    int    `json:"position"` // place in the round's order
	Requests    int    `json:"requests"`
	Warmup      int    `json:"warmup_requests"`
	Sampled     int    `json:"bodies_decoded"`
	Principals  int    `json:"principals"` // the load's principals; 0: the target takes no token
	Elapsed     num    `json:"elapsed_s"`
	Throughput  num    `json:"req_per_s"`
	P50         num    `json:"p50_us"`
	P99         num    `json:"p99_us"`
	Max         num    `json:"max_us"`
	CPUFront    num    `json:"cpu_proxy_us_per_req"`
	CPUUpstream num    `json:"cpu_upstream_us_per_req"`
	CPUTotal    num    `json:"cpu_total_us_per_req"`
	CPUClient   num    `json:"cpu_client_us_per_req"`
}

func us(d time.Duration) num { return num(float64(d) / float64(time.Microsecond)) }

// newRun turns a measurement into a Run.
func newRun(target string, c, round, pos int, r *loadResult) Run {
	n := float64(r.requests)
	per := func(d time.Duration) num { return num(float64(d) / float64(time.Microsecond) / n) }
	front := num(math.NaN())
	if r.hasFront {
		front = per(r.cpuFront)
	}
	return Run{
		Target: target, Concurrency: c, Round: round + 1, Position: pos + 1,
		Requests: r.requests, Warmup: r.warmupReqs, Sampled: r.sampled, Principals: r.principals,
		Elapsed:     num(r.elapsed.Seconds()),
		Throughput:  num(n / r.elapsed.Seconds()),
		P50:         us(percentile(r.latencies, 0.50)),
		P99:         us(percentile(r.latencies, 0.99)),
		Max:         us(r.latencies[len(r.latencies)-1]),
		CPUFront:    front,
		CPUUpstream: per(r.cpuUpstream),
		CPUTotal:    per(r.cpuFront + r.cpuUpstream),
		CPUClient:   per(r.cpuClient),
	}
}

// Summary holds the medians over rounds of one target at one
// concurrency, and its ratios to the direct and proxy baselines (NaN when
// a baseline did not run).
type Summary struct {
	Target            string `json:"target"`
	Concurrency       int    `json:"concurrency"`
	Rounds            int    `json:"rounds"`
	Throughput        num    `json:"req_per_s"`
	P50               num    `json:"p50_us"`
	P99               num    `json:"p99_us"`
	CPUFront          num    `json:"cpu_proxy_us_per_req"`
	CPUUpstream       num    `json:"cpu_upstream_us_per_req"`
	CPUTotal          num    `json:"cpu_total_us_per_req"`
	VsDirect          num    `json:"req_per_s_vs_direct"`
	VsProxy           num    `json:"req_per_s_vs_proxy"`
	P50AddedOverProxy num    `json:"p50_added_over_proxy_us"`
}

// summarize computes the medians per target and concurrency, in the
// order of the levels and targets given.
func summarize(runs []Run, levels []int, targets []string) []Summary {
	var out []Summary
	for _, c := range levels {
		byTarget := map[string]*Summary{}
		var level []Summary
		for _, name := range targets {
			var tp, p50, p99, cf, cu, ct []float64
			for _, r := range runs {
				if r.Target != name || r.Concurrency != c {
					continue
				}
				tp, p50, p99 = append(tp, float64(r.Throughput)), append(p50, float64(r.P50)), append(p99, float64(r.P99))
				cf, cu, ct = append(cf, float64(r.CPUFront)), append(cu, float64(r.CPUUpstream)), append(ct, float64(r.CPUTotal))
			}
			if len(tp) == 0 {
				continue
			}
			level = append(level, Summary{Target: name, Concurrency: c, Rounds: len(tp),
				Throughput: num(median(tp)), P50: num(median(p50)), P99: num(median(p99)),
				CPUFront: num(median(cf)), CPUUpstream: num(median(cu)), CPUTotal: num(median(ct))})
		}
		for i := range level {
			byTarget[level[i].Target] = &level[i]
		}
		for i := range level {
			s := &level[i]
			s.VsDirect, s.VsProxy, s.P50AddedOverProxy = num(math.NaN()), num(math.NaN()), num(math.NaN())
			if d := byTarget["direct"]; d != nil {
				s.VsDirect = num(ratio(float64(s.Throughput), float64(d.Throughput)))
			}
			if p := byTarget["proxy"]; p != nil {
				s.VsProxy = num(ratio(float64(s.Throughput), float64(p.Throughput)))
				s.P50AddedOverProxy = s.P50 - p.P50
			}
		}
		out = append(out, level...)
	}
	return out
}

// format renders n with the given decimals, "—" for NaN.
func format(n num, decimals int) string {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return "—"
	}
	return strconv.FormatFloat(float64(n), 'f', decimals, 64)
}

func formatRatio(n num) string {
	if s := format(n, 2); s != "—" {
		return s + "×"
	}
	return "—"
}

func formatSigned(n num) string {
	s := format(n, 0)
	if s != "—" && float64(n) >= 0 {
		return "+" + s
	}
	return s
}

// tableHeader is the header of each concurrency level's table.
const tableHeader = "| target | req/s | p50 µs | p99 µs | CPU µs/req proxy | CPU µs/req upstream | CPU µs/req total | req/s vs direct | req/s vs proxy | p50 added over proxy µs |\n" +
	"|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"

// renderTables renders one markdown table per concurrency level.
func renderTables(sum []Summary, levels []int) string {
	var b strings.Builder
	for _, c := range levels {
		fmt.Fprintf(&b, "\n### Concurrency %d\n\n%s", c, tableHeader)
		for _, s := range sum {
			if s.Concurrency != c {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Target,
				format(s.Throughput, 0), format(s.P50, 0), format(s.P99, 0),
				format(s.CPUFront, 1), format(s.CPUUpstream, 1), format(s.CPUTotal, 1),
				formatRatio(s.VsDirect), formatRatio(s.VsProxy), formatSigned(s.P50AddedOverProxy))
		}
	}
	return b.String()
}

// renderMarkdown renders the whole report.
func renderMarkdown(r *Report) string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "## mcpgate load benchmark\n\n")
	fmt.Fprintf(&b, "- date: %s\n- machine: %s, nproc %d (GOMAXPROCS %d), Linux %s, %s\n- mcpgate: %s\n- command: `%s`\n",
		m.Date, m.CPU, m.NumCPU, m.GOMAXPROCS, m.Kernel, m.GoVersion, m.Commit, m.Command)
	s := r.Settings
	fmt.Fprintf(&b, "- method: tools/call `search` (unique JSON-RPC id per request), closed loop at fixed concurrency (vegeta: c workers, c keep-alive HTTP/1.1 connections, no pacing); "+
		"per level %d round(s), target order rotated each round; each run %s warm-up (not measured) + %s measured; "+
		"figures are medians over rounds; p50/p99 exact from every latency; CPU = utime+stime from /proc/<pid>/stat (CLK_TCK %d) of each process over the measured window, divided by its requests. "+
		"The load generator shares the machine.\n", s.Rounds, s.Warmup, s.Duration, m.ClockTicks)
	fmt.Fprintf(&b, "- principals: %s. The load of each target that takes a token is spread over N principals (subjects bench-user-1 … bench-user-N, "+
		"client bench-agent, same scopes, a token each), round-robin per request, each primed before its first load. "+
		"mcpgate serialises one principal's calls (its history is updated atomically per call): one token driven by c workers measures one agent "+
		"issuing c concurrent calls, N principals measure N agents.\n", principalsText(s))
	b.WriteString("\n| target | what |\n|---|---|\n")
	for _, t := range r.Targets {
		about := t.About
		if t.Config != "" {
			about += "; rendered to `" + t.Config + "`"
		}
		fmt.Fprintf(&b, "| %s | %s |\n", t.Name, about)
	}
	b.WriteString(renderTables(r.Summary, s.Concurrency))
	if len(r.Profiles) > 0 {
		fmt.Fprintf(&b, "\n### Profiles\n\nAfter the measurements, one unmeasured run per mcpgate target at concurrency %d; "+
			"read with `go tool pprof -top -cum FILE` (mcpgate binary: `%s`).\n\n", slices.Max(s.Concurrency), r.MCPGateBinary)
		for _, p := range r.Profiles {
			fmt.Fprintf(&b, "- %s %s: `%s` (%d bytes) — %s\n", p.Target, p.Kind, p.Path, p.Bytes, p.Detail)
		}
	}
	if len(r.Checks) > 0 {
		b.WriteString("\n### Checks\n\n")
		for _, c := range r.Checks {
			mark := "ok"
			if !c.OK {
				mark = "FAILED"
			}
			fmt.Fprintf(&b, "- %s: %s %s — %s\n", mark, c.Target, c.Name, c.Detail)
		}
	}
	return b.String()
}

// machineInfo describes the machine and the checkout.
func machineInfo(ctx context.Context, hz int64, command string) Machine {
	m := Machine{
		CPU: "unknown", NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		Kernel: "unknown", Date: time.Now().UTC().Format(time.RFC3339), Commit: "unknown", ClockTicks: hz, Command: command,
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty", "--abbrev=12").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

// fakeAWSKeyID returns a credential-shaped string the aws_access_key
// detector recognises: the AKIA prefix and 16 random base32 characters,
// built at run time so that no key-like literal is in the repository.
func fakeAWSKeyID() (string, error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "AK" + "IA" + string(b), nil
}
