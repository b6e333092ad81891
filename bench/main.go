// Command bench is mcpgate's load harness (issue #9): it drives MCP
// tools/call traffic through several targets in one run and prints a
// markdown table of throughput, latency and CPU per request.
//
//	go run ./bench [-duration 5s] [-warmup 1s] [-rounds 5] [-concurrency 1,8,32]
//	               [-targets direct,proxy,mcpgate-authn,mcpgate-full,mcpgate-redis,sdk-auth]
//	               [-principals N] [-profile DIR]
//	               [-mcpgate BIN] [-out FILE] [-track-ids] [-keep]
//
// Targets (each its own process; see targetSpecs):
//
//   - direct: the go-sdk MCP server (StreamableHTTPHandler, stateless,
//     JSON responses) with 50 tools; the measured tool search returns a
//     small text.
//   - proxy: httputil.ReverseProxy (Rewrite + SetURL) in front of it.
//   - mcpgate-authn: `mcpgate serve`, authentication only
//     (configs/mcpgate-authn.yaml.tmpl).
//   - mcpgate-full: `mcpgate serve` with scope rules and 25 sequence rules
//     (23 of them evaluated on every search), every redaction detector, a
//     signed file audit trail, anomaly detection and metrics
//     (configs/mcpgate-full.yaml.tmpl).
//   - mcpgate-redis: mcpgate-full with its shared state (histories,
//     budgets, revocations) in a redis-server on loopback that the harness
//     starts (redis-server must be installed; scripts/test installs it).
//     Its mcpgate CPU column includes redis-server's.
//   - sdk-auth: the upstream behind the go-sdk's auth.RequireBearerToken,
//     verifying each request's JWT with golang-jwt against the JWKS.
//
// The harness re-executes itself for the go-sdk servers and the proxy
// (hidden subcommands upstream, proxy and sdk-auth), builds mcpgate with
// `go build ./cmd/mcpgate` (or takes -mcpgate), and runs its own
// authorization server (ES256, RFC 8414 metadata, JWKS), which mints the
// access tokens: one per target and principal.
//
// Principals (-principals N; default 0, one per worker, i.e. N = the
// level's concurrency): the load of a target that takes a token is spread
// over N principals, subjects bench-user-1 … bench-user-N with the same
// client id (bench-agent) and scopes, each with its own token; every
// request takes the next token round-robin. mcpgate serialises the calls
// of one principal (its sequence history is updated atomically per
// call), so one token driven by 32 workers measures a single agent
// issuing 32 concurrent calls; N principals measure N agents, the usual
// case for a gateway in front of many people. Each principal is primed
// once before its first load where the target needs it (mcpgate-full:
// open_workspace, which its order rule search-after-open requires);
// tokens and priming are kept for the rest of the run.
//
// Method: for each concurrency level c and each of R rounds, every target
// runs in turn, the order rotated by one each round; a run is a warm-up
// (not measured) then D seconds of closed-loop load from vegeta with c
// workers on c keep-alive connections, every request a tools/call with a
// new JSON-RPC id. Every latency is kept (p50 and p99 are exact), every
// status is checked, every body is checked to be a result with its own id
// and every 100th body is decoded in full; any failure ends the run with
// an error. CPU per request is read from /proc/<pid>/stat of each process
// before and after the measured window. The table shows, per target and
// concurrency, the median over rounds of each figure.
//
// Profiles (-profile DIR): after the measurements, every mcpgate target
// gets one extra unmeasured run at the highest concurrency for
// max(-duration, 5s), during which the harness fetches a CPU profile from
// mcpgate's admin listener (GET /debug/pprof/profile, behind a random
// bearer secret written 0600 into the target's work directory), then a
// heap profile; they are saved as DIR/<target>-cpu.pprof and
// DIR/<target>-heap.pprof and listed in the report. The configurations
// turn admin.profiling on only with -profile.
//
// After the load the harness checks mcpgate-full: a call its rules refuse
// is refused, a credential in a tool result is redacted, metrics were
// exported, and, once it has stopped, `mcpgate audit verify` proves its
// audit trail whole, holding a decision for every search, and for each
// principal as many as the harness sent as that principal.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && isRole(os.Args[1]) {
		os.Exit(childMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(cliMain(os.Args[1:], os.Stdout, os.Stderr))
}

// Config is one harness run.
type Config struct {
	// Duration is the measured time of each run (target × concurrency ×
	// round); Warmup precedes it, unmeasured.
	Duration, Warmup time.Duration
	// Rounds per concurrency level.
	Rounds int
	// Concurrency levels (closed-loop workers = connections).
	Concurrency []int
	// Targets to run, by name (targetSpecs).
	Targets []string
	// MCPGate is a prebuilt mcpgate binary; "" builds ./cmd/mcpgate.
	MCPGate string
	// Out, when set, receives the report and its raw numbers as JSON.
	Out string
	// TrackIDs makes every upstream record the JSON-RPC ids it receives,
	// which the harness then checks (unique, one per request sent). It
	// costs the upstream a second decode of each body.
	TrackIDs bool
	// WorkDir holds configurations, keys and audit files; "" → a
	// temporary directory, removed at the end unless Keep.
	WorkDir string
	Keep    bool
	// Principals is the number of principals the load of a target that
	// takes a token is spread over (subjects bench-user-1 …
	// bench-user-N, one token each, round-robin per request); 0: one per
	// worker, i.e. the run's concurrency.
	Principals int
	// Profile, when set, is a directory that receives a CPU and a heap
	// profile of every mcpgate target, taken during one extra unmeasured
	// run at the highest concurrency after the measurements.
	Profile string
	// ProfileTime is the length of that run (whole seconds); 0 →
	// max(Duration, 5s).
	ProfileTime time.Duration
	// Tools is the number of tools of the upstream and the full route.
	Tools int
	// Self is the argv prefix that re-executes the harness; nil →
	// os.Executable().
	Self []string
	// CommandLine is shown in the report.
	CommandLine string
}

// maxPrincipals bounds -principals: each is minted a token and primed.
const maxPrincipals = 10000

// Validate reports every problem of c at once. With Profile set it
// creates that directory (and checks a file can be written there).
func (c *Config) Validate() error {
	var errs []error
	if c.Duration <= 0 {
		errs = append(errs, errors.New("-duration must be positive"))
	}
	if c.Warmup < 0 {
		errs = append(errs, errors.New("-warmup must not be negative"))
	}
	if c.Rounds < 1 {
		errs = append(errs, errors.New("-rounds must be at least 1"))
	}
	if len(c.Concurrency) == 0 {
		errs = append(errs, errors.New("-concurrency needs at least one level"))
	}
	for i, n := range c.Concurrency {
		if n < 1 || n > 4096 {
			errs = append(errs, fmt.Errorf("-concurrency: %d is not between 1 and 4096", n))
		}
		if slices.Contains(c.Concurrency[:i], n) {
			errs = append(errs, fmt.Errorf("-concurrency: %d given twice", n))
		}
	}
	if len(c.Targets) == 0 {
		errs = append(errs, errors.New("-targets needs at least one target"))
	}
	known := targetNames()
	for i, t := range c.Targets {
		if !slices.Contains(known, t) {
			errs = append(errs, fmt.Errorf("-targets: unknown target %q (known: %s)", t, strings.Join(known, ", ")))
		}
		if slices.Contains(c.Targets[:i], t) {
			errs = append(errs, fmt.Errorf("-targets: %q given twice", t))
		}
	}
	if c.Tools < len(namedTools()) || c.Tools > 1000 {
		errs = append(errs, fmt.Errorf("tools must be between %d and 1000", len(namedTools())))
	}
	if c.MCPGate != "" {
		if st, err := os.Stat(c.MCPGate); err != nil || st.IsDir() {
			errs = append(errs, fmt.Errorf("-mcpgate %s: not a file", c.MCPGate))
		}
	}
	if c.Principals < 0 || c.Principals > maxPrincipals {
		errs = append(errs, fmt.Errorf("-principals: %d is not between 0 (one per worker) and %d", c.Principals, maxPrincipals))
	}
	if c.ProfileTime < 0 {
		errs = append(errs, errors.New("profile time must not be negative"))
	}
	if c.Profile != "" {
		if !slices.ContainsFunc(c.Targets, isGateTarget) {
			errs = append(errs, errors.New("-profile needs an mcpgate target"))
		}
		// Created now: a directory that cannot be is known before the run.
		if err := checkWritableDir(c.Profile); err != nil {
			errs = append(errs, fmt.Errorf("-profile: %w", err))
		}
	}
	return errors.Join(errs...)
}

// parseInts parses a comma-separated list of integers.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseList parses a comma-separated list of names.
func parseList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// cliMain parses the command line, runs the harness and prints the
// report; it returns the exit code.
func cliMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := Config{Tools: 50}
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "measured `time` of each run")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured warm-up `time` before each run")
	fs.IntVar(&cfg.Rounds, "rounds", 5, "rounds per concurrency level (the table shows medians)")
	conc := fs.String("concurrency", "1,8,32", "concurrency `levels`, comma-separated")
	targets := fs.String("targets", strings.Join(targetNames(), ","), "`targets`, comma-separated")
	fs.StringVar(&cfg.MCPGate, "mcpgate", "", "prebuilt mcpgate `binary` (default: go build ./cmd/mcpgate)")
	fs.StringVar(&cfg.Out, "out", "", "also write the report and the raw per-round numbers (JSON) to `file`")
	fs.BoolVar(&cfg.TrackIDs, "track-ids", false, "upstreams record every JSON-RPC id; checks they are unique (costs upstream CPU)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the work directory (configurations, audit files)")
	fs.IntVar(&cfg.Principals, "principals", 0, "spread the load of targets that take a token over `N` principals (0: one per worker)")
	fs.StringVar(&cfg.Profile, "profile", "", "after the measurements, profile every mcpgate target (CPU and heap, pprof) into `dir`")
	verbose := fs.Bool("v", false, "progress of every run on standard error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var err error
	if cfg.Concurrency, err = parseInts(*conc); err != nil {
		fmt.Fprintf(stderr, "bench: -concurrency: %v\n", err)
		return 2
	}
	cfg.Targets = parseList(*targets)
	cfg.CommandLine = commandLine(args)
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	level := slog.LevelInfo
	if !*verbose {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep, err := run(ctx, cfg, log)
	if rep != nil && rep.Markdown != "" {
		fmt.Fprint(stdout, rep.Markdown)
		if cfg.Out != "" {
			if werr := writeOut(cfg.Out, rep); werr != nil {
				fmt.Fprintf(stderr, "bench: -out: %v\n", werr)
				return 1
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "\nbench: FAILED: %v\n", err)
		return 1
	}
	return 0
}

// commandLine renders how the harness was invoked.
func commandLine(args []string) string {
	prog := "bench"
	if exe, err := os.Executable(); err == nil && strings.Contains(exe, "go-build") {
		prog = "go run ./bench"
	}
	q := []string{prog}
	for _, a := range args {
		if strings.ContainsAny(a, " \t'\"") {
			a = strconv.Quote(a)
		}
		q = append(q, a)
	}
	return strings.Join(q, " ")
}

// writeOut writes the markdown report followed by the raw report as JSON.
func writeOut(path string, rep *Report) error {
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	out := rep.Markdown + "\n## Raw data\n\n```json\n" + string(raw) + "\n```\n"
	return os.WriteFile(path, []byte(out), 0o644)
}

// run runs the harness: it starts the targets, measures them, checks
// them, stops them and returns the report. A failed request or check is
// an error; the report is returned with it as far as it got.
func run(ctx context.Context, cfg Config, log *slog.Logger) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rep := &Report{Settings: settingsOf(cfg)}
	env := &runEnv{cfg: cfg, self: cfg.Self, log: log}
	env.ids = new(atomic.Int64)
	env.hz = clockTicks(ctx)
	rep.Machine = machineInfo(ctx, env.hz, cfg.CommandLine)

	if env.self == nil {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the harness binary: %w", err)
		}
		env.self = []string{exe}
	}
	env.workDir = cfg.WorkDir
	if env.workDir == "" {
		d, err := os.MkdirTemp("", "mcpgate-bench-")
		if err != nil {
			return nil, err
		}
		env.workDir = d
		if !cfg.Keep {
			defer os.RemoveAll(d)
		}
	}
	var err error
	if env.fakeKey, err = fakeAWSKeyID(); err != nil {
		return nil, err
	}

	specs := map[string]targetSpec{}
	for _, s := range targetSpecs() {
		specs[s.name] = s
	}
	needGate := slices.ContainsFunc(cfg.Targets, isGateTarget)
	if needGate {
		env.mcpgateBin = cfg.MCPGate
		if env.mcpgateBin == "" {
			log.Info("building mcpgate")
			if env.mcpgateBin, err = buildMCPGate(ctx, env.workDir); err != nil {
				return nil, err
			}
		}
		if abs, err := filepath.Abs(env.mcpgateBin); err == nil {
			env.mcpgateBin = abs
		}
	}
	iss, err := startIssuer()
	if err != nil {
		return nil, err
	}
	defer iss.close()
	env.issuer = iss

	// Start every target; stop whatever is still running on the way out.
	var targets []*target
	stopped := map[*target]error{}
	stopAll := func() {
		for _, t := range targets {
			if _, done := stopped[t]; !done {
				stopped[t] = t.stop()
			}
		}
	}
	defer stopAll()
	for _, name := range cfg.Targets {
		log.Info("starting", slog.String("target", name))
		t, err := specs[name].start(ctx, env, name)
		if err != nil {
			return rep, fmt.Errorf("start %s: %w", name, err)
		}
		targets = append(targets, t)
		info := TargetInfo{Name: name, About: specs[name].about}
		if cfg.Keep || cfg.WorkDir != "" {
			info.Config = t.configFile // still there after the run
		}
		rep.Targets = append(rep.Targets, info)
		if t.audience != "" {
			tok, err := t.token()
			if err != nil {
				return rep, err
			}
			log.Info("token minted", slog.String("target", name), slog.String("token_sha256", tokenID(tok)))
		}
	}

	// The measurements.
	for _, c := range cfg.Concurrency {
		for r := range cfg.Rounds {
			for pos, t := range rotate(targets, r) {
				res, err := measure(ctx, env, t, c, cfg.Warmup, cfg.Duration)
				if err != nil {
					return rep, err
				}
				run := newRun(t.name, c, r, pos, res)
				rep.Runs = append(rep.Runs, run)
				log.Info("run", slog.String("target", t.name), slog.Int("concurrency", c), slog.Int("round", r+1),
					slog.Float64("req_per_s", float64(run.Throughput)), slog.Float64("p50_us", float64(run.P50)), slog.Float64("p99_us", float64(run.P99)),
					slog.Float64("cpu_us_per_req", float64(run.CPUTotal)))
			}
		}
	}

	// The profiles: one unmeasured run per mcpgate target.
	if cfg.Profile != "" {
		top := slices.Max(cfg.Concurrency)
		for _, t := range targets {
			if !isGateTarget(t.name) {
				continue
			}
			log.Info("profiling", slog.String("target", t.name), slog.Int("concurrency", top), slog.Duration("time", cfg.profileTime()))
			files, err := profileTarget(ctx, env, t, top, cfg.profileTime(), cfg.Profile)
			if err != nil {
				return rep, fmt.Errorf("profile: %w", err)
			}
			rep.Profiles = append(rep.Profiles, files...)
		}
		rep.MCPGateBinary = env.mcpgateBin
		if cfg.MCPGate == "" && cfg.WorkDir == "" && !cfg.Keep {
			rep.MCPGateBinary += " (removed with the work directory; -keep keeps it)"
		}
	}

	// The checks: probes, ids, clean stop, audit.
	for _, t := range targets {
		if t.probes != nil {
			rep.Checks = append(rep.Checks, t.probes(ctx, env, t)...)
		}
	}
	if cfg.TrackIDs {
		rep.Checks = append(rep.Checks, checkIDs(ctx, targets)...)
	}
	stopAll()
	for _, t := range targets {
		if err := stopped[t]; err != nil {
			rep.Checks = append(rep.Checks, Check{Target: t.name, Name: "clean-stop", Detail: err.Error()})
		}
		if t.auditFile != "" {
			rep.Checks = append(rep.Checks, verifyAudit(ctx, env, t, t.searches.Load())...)
		}
	}
	rep.Summary = summarize(rep.Runs, cfg.Concurrency, cfg.Targets)
	rep.Markdown = renderMarkdown(rep)

	var failed []string
	for _, c := range rep.Checks {
		if !c.OK {
			failed = append(failed, c.Target+" "+c.Name+": "+c.Detail)
		}
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("%d check(s) failed:\n  %s", len(failed), strings.Join(failed, "\n  "))
	}
	return rep, nil
}

// checkIDs checks what the upstreams saw: every tools/call the harness
// sent them arrived once, and no id was used twice in the whole run.
func checkIDs(ctx context.Context, targets []*target) []Check {
	var out []Check
	all := map[string]string{}
	dups := 0
	for _, t := range targets {
		r, err := t.fetchIDs(ctx)
		if err != nil {
			out = append(out, Check{Target: t.name, Name: "ids", Detail: err.Error()})
			continue
		}
		want := t.forwarded.Load()
		ok := r.Duplicates == 0 && r.Distinct == r.Calls && int64(r.Calls) == want
		out = append(out, Check{Target: t.name, Name: "ids", OK: ok,
			Detail: fmt.Sprintf("upstream saw %d tools/call, %d distinct ids, %d duplicates; the harness sent %d", r.Calls, r.Distinct, r.Duplicates, want)})
		for _, id := range r.IDs {
			if _, seen := all[string(id)]; seen {
				dups++
			}
			all[string(id)] = t.name
		}
	}
	out = append(out, Check{Target: "all", Name: "ids-unique-across-run", OK: dups == 0 && len(all) > 0,
		Detail: fmt.Sprintf("%d ids seen by all upstreams, %d used twice", len(all), dups)})
	return out
}
