package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the harness's children: the
// harness re-executes its own binary, which under `go test` is this one.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(childMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestHarnessEndToEnd runs the whole harness with tiny settings: every
// target as its own process, a real mcpgate built from ./cmd/mcpgate.
func TestHarnessEndToEnd(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond, Rounds: 1,
		Concurrency: []int{2}, Targets: targetNames(), Tools: 50, TrackIDs: true,
		WorkDir: t.TempDir(), Self: []string{exe}, CommandLine: "go test ./bench",
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	rep, err := run(ctx, cfg, log)
	t.Logf("harness ran in %s", time.Since(start))
	if err != nil {
		if rep != nil {
			t.Log(rep.Markdown)
		}
		t.Fatalf("run: %v\nlogs:\n%s", err, logs.String())
	}

	// Every check passed, and the ones the harness promises are there.
	got := map[string]Check{}
	for _, c := range rep.Checks {
		got[c.Target+"/"+c.Name] = c
		if !c.OK {
			t.Errorf("check %s %s failed: %s", c.Target, c.Name, c.Detail)
		}
	}
	want := []string{
		"direct/leak-without-gateway",
		"mcpgate-full/policy-denies", "mcpgate-full/policy-evaluates-search", "mcpgate-full/redaction",
		"mcpgate-full/metrics", "mcpgate-full/audit-verify", "mcpgate-full/audit-records",
		"all/ids-unique-across-run",
	}
	for _, name := range targetNames() {
		want = append(want, name+"/ids")
	}
	for _, w := range want {
		if _, ok := got[w]; !ok {
			t.Errorf("check %s missing", w)
		}
	}
	if c := got["mcpgate-full/audit-verify"]; !strings.Contains(c.Detail, "exit 0") || !strings.Contains(c.Detail, "OK") {
		t.Errorf("audit verify: %s", c.Detail)
	}

	// One run per target, every request answered, CPU seen in every process.
	if len(rep.Runs) != len(targetNames()) {
		t.Fatalf("%d runs, want %d", len(rep.Runs), len(targetNames()))
	}
	for _, r := range rep.Runs {
		if r.Requests <= 0 || r.Throughput <= 0 || r.P50 <= 0 || r.P99 < r.P50 {
			t.Errorf("%s: implausible run %+v", r.Target, r)
		}
	}
	for _, s := range rep.Summary {
		if !(s.CPUUpstream > 0) || !(s.CPUTotal > 0) {
			t.Errorf("%s: CPU upstream %v total %v, want > 0", s.Target, s.CPUUpstream, s.CPUTotal)
		}
		hasFront := s.Target != "direct" && s.Target != "sdk-auth"
		if hasFront != (s.CPUFront > 0) {
			t.Errorf("%s: CPU proxy %v (front process: %v)", s.Target, s.CPUFront, hasFront)
		}
	}

	// The table has a row per target.
	md := rep.Markdown
	if !strings.Contains(md, "### Concurrency 2\n") || !strings.Contains(md, tableHeader) {
		t.Fatalf("no table for concurrency 2:\n%s", md)
	}
	table := md[strings.Index(md, tableHeader):]
	for _, name := range targetNames() {
		if !regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(name) + ` \| [0-9]+ \| [0-9]+ \| [0-9]+ \|`).MatchString(table) {
			t.Errorf("no row for %s in\n%s", name, table)
		}
	}
	for _, s := range []string{"nproc", "go1.", "command: `go test ./bench`"} {
		if !strings.Contains(md, s) {
			t.Errorf("report lacks %q", s)
		}
	}

	// No token and no fake key leaked into the report or the logs.
	leak := regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}|AKIA[A-Z2-7]{16}`)
	if m := leak.FindString(md + logs.String()); m != "" {
		t.Errorf("report or logs hold a credential: %.12s…", m)
	}
}
