package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
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
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// CPU is read in clock ticks (10 ms): a measured window of a second
	// keeps a busy process above one tick even on a loaded machine.
	cfg := Config{
		Duration: time.Second, Warmup: 100 * time.Millisecond, Rounds: 1,
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
		"mcpgate-full/metrics", "mcpgate-full/audit-verify", "mcpgate-full/audit-records", "mcpgate-full/audit-principals",
		"mcpgate-redis/policy-denies", "mcpgate-redis/redaction", "mcpgate-redis/audit-records", "mcpgate-redis/audit-principals",
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
	// -principals 0: one principal per worker.
	if c := got["mcpgate-full/audit-principals"]; !strings.Contains(c.Detail, "by 2 subjects (2 principals used)") {
		t.Errorf("audit principals: %s", c.Detail)
	}

	// One run per target, every request answered, CPU seen in every process.
	if len(rep.Runs) != len(targetNames()) {
		t.Fatalf("%d runs, want %d", len(rep.Runs), len(targetNames()))
	}
	for _, r := range rep.Runs {
		if r.Requests <= 0 || r.Throughput <= 0 || r.P50 <= 0 || r.P99 < r.P50 {
			t.Errorf("%s: implausible run %+v", r.Target, r)
		}
		wantP := 0
		if strings.HasPrefix(r.Target, "mcpgate") || r.Target == "sdk-auth" {
			wantP = 2
		}
		if r.Principals != wantP {
			t.Errorf("%s: %d principals, want %d", r.Target, r.Principals, wantP)
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
	for _, s := range []string{"nproc", "go1.", "command: `go test ./bench`", "- principals: one per worker (N = concurrency: 2)"} {
		if !strings.Contains(md, s) {
			t.Errorf("report lacks %q", s)
		}
	}

	// Without -profile: no profiles, and profiling stays off.
	if len(rep.Profiles) != 0 || strings.Contains(md, "### Profiles") {
		t.Errorf("profiles without -profile: %v", rep.Profiles)
	}
	for _, ti := range rep.Targets {
		if ti.Config == "" {
			continue
		}
		b, err := os.ReadFile(ti.Config)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "profiling") || strings.Contains(string(b), "bearer_token_file") {
			t.Errorf("%s: profiling configured without -profile:\n%s", ti.Name, b)
		}
	}

	// No token and no fake key leaked into the report or the logs.
	leak := regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}|AKIA[A-Z2-7]{16}`)
	if m := leak.FindString(md + logs.String()); m != "" {
		t.Errorf("report or logs hold a credential: %.12s…", m)
	}
}

// TestHarnessPrincipalsAndProfile runs the mcpgate targets with
// -principals 3 and -profile: the load reaches mcpgate as three subjects
// in equal shares, each primed exactly once, and each target leaves a
// CPU and a heap profile pprof can read.
func TestHarnessPrincipalsAndProfile(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	profDir := filepath.Join(t.TempDir(), "not", "yet")
	cfg := Config{
		Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond, Rounds: 2,
		Concurrency: []int{4}, Targets: []string{"mcpgate-authn", "mcpgate-full"}, Tools: 50,
		Principals: 3, Profile: profDir, ProfileTime: time.Second,
		WorkDir: work, Self: []string{exe}, CommandLine: "go test ./bench",
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := run(ctx, cfg, log)
	if err != nil {
		if rep != nil {
			t.Log(rep.Markdown)
		}
		t.Fatalf("run: %v\nlogs:\n%s", err, logs.String())
	}
	for _, c := range rep.Checks {
		if !c.OK {
			t.Errorf("check %s %s failed: %s", c.Target, c.Name, c.Detail)
		}
	}
	for _, r := range rep.Runs {
		if r.Principals != 3 {
			t.Errorf("%s round %d: %d principals, want 3", r.Target, r.Round, r.Principals)
		}
	}
	if rep.Settings.Principals != 3 || !strings.Contains(rep.Markdown, "- principals: 3.") {
		t.Errorf("settings: principals %d; report:\n%s", rep.Settings.Principals, rep.Markdown)
	}

	// What mcpgate-full recorded: searches allowed for exactly the three
	// subjects, in equal shares (round-robin: within one request per
	// targeter, and there are three, two rounds' and the profile's),
	// and one open_workspace per subject (primed once, not per round).
	files, err := filepath.Glob(filepath.Join(work, "mcpgate-full", "audit.jsonl*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no audit file: %v", err)
	}
	searches, opens := map[string]int{}, map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			var e struct{ Kind, Decision, Tool, Subject string }
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("audit line %q: %v", line, err)
			}
			if e.Kind != "decision" || e.Decision != "allow" {
				continue
			}
			switch e.Tool {
			case "search":
				searches[e.Subject]++
			case "open_workspace":
				opens[e.Subject]++
			}
		}
	}
	wantSubjects := []string{"bench-user-1", "bench-user-2", "bench-user-3"}
	if got := slices.Sorted(maps.Keys(searches)); !slices.Equal(got, wantSubjects) {
		t.Fatalf("searches allowed for subjects %v, want %v", got, wantSubjects)
	}
	lo, hi := slices.Min(slices.Collect(maps.Values(searches))), slices.Max(slices.Collect(maps.Values(searches)))
	if lo < 10 || hi-lo > cfg.Rounds+1 {
		t.Errorf("searches by subject %v: not equal shares", searches)
	}
	if want := map[string]int{"bench-user-1": 1, "bench-user-2": 1, "bench-user-3": 1}; !maps.Equal(opens, want) {
		t.Errorf("open_workspace by subject %v, want one each", opens)
	}

	// The profiles: two per mcpgate target, non-empty, readable by pprof.
	if len(rep.Profiles) != 4 {
		t.Fatalf("%d profiles, want 4: %+v", len(rep.Profiles), rep.Profiles)
	}
	for _, p := range rep.Profiles {
		want := filepath.Join(profDir, p.Target+"-"+p.Kind+".pprof")
		st, err := os.Stat(want)
		if p.Path != want || err != nil || st.Size() == 0 || st.Size() != int64(p.Bytes) {
			t.Errorf("profile %+v: %s: %v", p, want, err)
		}
		if !strings.Contains(rep.Markdown, "`"+want+"`") {
			t.Errorf("report does not list %s", want)
		}
	}
	for kind, wantType := range map[string]string{"cpu": "Type: cpu", "heap": "Type: inuse_space"} {
		out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", filepath.Join(profDir, "mcpgate-full-"+kind+".pprof")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), wantType) {
			t.Errorf("go tool pprof -top %s: %v\n%s", kind, err, out)
		}
	}

	// Profiling was configured with a 0600 secret of 32 bytes or more,
	// which appears nowhere in the report or the logs.
	for _, name := range cfg.Targets {
		dir := filepath.Join(work, name)
		conf, err := os.ReadFile(filepath.Join(dir, "mcpgate.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		tokFile := filepath.Join(dir, "admin-token")
		if !strings.Contains(string(conf), `bearer_token_file: "`+tokFile+`", profiling: true}`) {
			t.Errorf("%s: admin not configured for profiling:\n%s", name, conf)
		}
		st, err := os.Stat(tokFile)
		if err != nil {
			t.Fatal(err)
		}
		secret, err := os.ReadFile(tokFile)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 || len(secret) < 32 {
			t.Errorf("%s: admin secret mode %v, %d bytes", name, st.Mode().Perm(), len(secret))
		}
		if strings.Contains(rep.Markdown+logs.String(), string(secret)) {
			t.Errorf("%s: the admin secret is in the report or the logs", name)
		}
	}
}

// TestLoadTargeterRoundRobin: the tokens in turn, one per request, under
// concurrent use; the counts by principal are what was generated; no
// token, no Authorization header.
func TestLoadTargeterRoundRobin(t *testing.T) {
	var ids atomic.Int64
	toks := []string{"tok-a", "tok-b", "tok-c"}
	lt := newLoadTargeter("http://h/mcp", toks, &ids)
	for i := range 7 {
		var tgt vegeta.Target
		if err := lt.target(&tgt); err != nil {
			t.Fatal(err)
		}
		if got, want := tgt.Header.Get("Authorization"), "Bearer "+toks[i%3]; got != want {
			t.Errorf("request %d: Authorization %q, want %q", i, got, want)
		}
		if id, ok := fragmentID(tgt.URL); !ok || id != int64(i+1) || !bytes.Contains(tgt.Body, []byte(`"id":`+strconv.Itoa(i+1)+`,`)) {
			t.Errorf("request %d: URL %s body %s", i, tgt.URL, tgt.Body)
		}
	}
	if got := lt.perPrincipal(); !slices.Equal(got, []int64{3, 2, 2}) {
		t.Errorf("perPrincipal after 7 = %v, want [3 2 2]", got)
	}

	// Concurrent use: every token used exactly as often.
	lt = newLoadTargeter("http://h/mcp", toks, &ids)
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 300 {
				var tgt vegeta.Target
				_ = lt.target(&tgt)
				mu.Lock()
				seen[tgt.Header.Get("Authorization")]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if want := map[string]int{"Bearer tok-a": 800, "Bearer tok-b": 800, "Bearer tok-c": 800}; !maps.Equal(seen, want) {
		t.Errorf("concurrent use: %v, want %v", seen, want)
	}
	if got := lt.perPrincipal(); !slices.Equal(got, []int64{800, 800, 800}) {
		t.Errorf("perPrincipal = %v", got)
	}

	lt = newLoadTargeter("http://h/mcp", nil, &ids)
	var tgt vegeta.Target
	_ = lt.target(&tgt)
	if _, ok := tgt.Header["Authorization"]; ok || tgt.Header.Get("Content-Type") != "application/json" {
		t.Errorf("no token: headers %v", tgt.Header)
	}

	// Spreading over principals allocates nothing more per request.
	one := newLoadTargeter("http://h/mcp", toks[:1], &ids)
	many := newLoadTargeter("http://h/mcp", toks, &ids)
	allocs := func(lt *loadTargeter) float64 {
		var tgt vegeta.Target
		return testing.AllocsPerRun(1000, func() { _ = lt.target(&tgt) })
	}
	if a1, a3 := allocs(one), allocs(many); a3 > a1 || a1 > 3 {
		t.Errorf("allocations per request: %v with one token, %v with three", a1, a3)
	}
}

func BenchmarkLoadTargeter(b *testing.B) {
	for _, n := range []int{1, 32} {
		b.Run(strconv.Itoa(n)+"-principals", func(b *testing.B) {
			toks := make([]string, n)
			for i := range toks {
				toks[i] = "tok-" + strconv.Itoa(i)
			}
			var ids atomic.Int64
			lt := newLoadTargeter("http://127.0.0.1:1/servers/bench/mcp", toks, &ids)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var tgt vegeta.Target
				for pb.Next() {
					_ = lt.target(&tgt)
				}
			})
		})
	}
}

// TestPrincipalCheck: the per-subject audit check holds only when every
// principal's allow decisions equal what was sent as it.
func TestPrincipalCheck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sent      []int64
		bySubject map[string]int
		ok        bool
	}{
		{"equal", []int64{5, 4}, map[string]int{"bench-user-1": 5, "bench-user-2": 4}, true},
		{"one short", []int64{5, 4}, map[string]int{"bench-user-1": 5, "bench-user-2": 3}, false},
		{"one principal missing", []int64{5, 4}, map[string]int{"bench-user-1": 5}, false},
		{"an unknown subject", []int64{5}, map[string]int{"bench-user-1": 5, "someone": 1}, false},
		{"all under one subject", []int64{2, 2}, map[string]int{"bench-user-1": 4}, false},
		{"a principal sent nothing", []int64{3, 0}, map[string]int{"bench-user-1": 3}, false},
		{"no principals", nil, map[string]int{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := principalCheck(&target{name: "mcpgate-full", sentBy: tc.sent}, tc.bySubject)
			if c.OK != tc.ok || c.Name != "audit-principals" {
				t.Errorf("check %+v, want ok %v", c, tc.ok)
			}
		})
	}
}

// TestScanAuditBySubject: scanAudit counts the allow decisions for search
// by subject and nothing else.
func TestScanAuditBySubject(t *testing.T) {
	lines := []string{
		`{"kind":"decision","decision":"allow","tool":"search","subject":"bench-user-1","rpc_id":"1"}`,
		`{"kind":"decision","decision":"allow","tool":"search","subject":"bench-user-2","rpc_id":"2"}`,
		`{"kind":"decision","decision":"allow","tool":"search","subject":"bench-user-1","rpc_id":"3"}`,
		`{"kind":"decision","decision":"allow","tool":"open_workspace","subject":"bench-user-3","rpc_id":"4"}`,
		`{"kind":"decision","decision":"deny","tool":"search","subject":"bench-user-3","rpc_id":"5"}`,
		`{"kind":"decision","decision":"deny","tool":"export_results","subject":"bench-user-1","rpc_id":"6","rule":"seq:export-after-approval"}`,
		`{"kind":"checkpoint","tool":"search","decision":"allow","subject":"bench-user-9"}`,
	}
	f := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := scanAudit([]string{f}, "6")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"bench-user-1": 2, "bench-user-2": 1}; got.allowed != 3 || !got.denyFound || !maps.Equal(got.bySubject, want) {
		t.Errorf("scanAudit = %+v, want 3 allowed, deny found, by subject %v", got, want)
	}
	if got, err := scanAudit([]string{f}, "5"); err != nil || got.denyFound {
		t.Errorf("deny of another id found: %+v, %v", got, err)
	}
	if _, err := scanAudit([]string{filepath.Join(t.TempDir(), "missing")}, ""); err == nil {
		t.Error("a missing audit file was read")
	}
}

func TestJSONStringMember(t *testing.T) {
	for _, tc := range []struct{ line, name, want string }{
		{`{"a":1,"subject":"bench-user-7","x":"y"}`, "subject", "bench-user-7"},
		{`{"subject":""}`, "subject", ""},
		{`{"subject":"unterminated`, "subject", ""},
		{`{"token_subject":"no","subject":"yes"}`, "subject", "yes"},
		{`{"subject":1}`, "subject", ""},
		{``, "subject", ""},
	} {
		if got := jsonStringMember([]byte(tc.line), tc.name); got != tc.want {
			t.Errorf("jsonStringMember(%q, %q) = %q, want %q", tc.line, tc.name, got, tc.want)
		}
	}
}

func FuzzJSONStringMember(f *testing.F) {
	f.Add([]byte(`{"subject":"bench-user-1"}`))
	f.Add([]byte(`"subject":"`))
	f.Fuzz(func(t *testing.T, line []byte) {
		got := jsonStringMember(line, "subject")
		if strings.Contains(got, `"`) {
			t.Fatalf("value %q holds a quote", got)
		}
		if got != "" && !bytes.Contains(line, []byte(`"subject":"`+got+`"`)) {
			t.Fatalf("value %q is not in %q", got, line)
		}
	})
}

func TestProfileTime(t *testing.T) {
	for _, tc := range []struct {
		duration, profile, want time.Duration
	}{
		{3 * time.Second, 0, 5 * time.Second},
		{7200 * time.Millisecond, 0, 8 * time.Second},
		{10 * time.Second, 0, 10 * time.Second},
		{3 * time.Second, time.Second, time.Second},
		{3 * time.Second, 1500 * time.Millisecond, 2 * time.Second},
		{3 * time.Second, time.Millisecond, time.Second},
	} {
		c := Config{Duration: tc.duration, ProfileTime: tc.profile}
		if got := c.profileTime(); got != tc.want {
			t.Errorf("profileTime(duration %v, profile %v) = %v, want %v", tc.duration, tc.profile, got, tc.want)
		}
	}
}

func TestCheckProfile(t *testing.T) {
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return buf.Bytes()
	}
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"gzip", gz([]byte("\x0a\x02\x08\x01")), true},
		{"empty", nil, false},
		{"not gzip", []byte(`{"error":"unauthorized"}`), false},
		{"gzip of nothing", gz(nil), false},
		{"truncated gzip", gz(bytes.Repeat([]byte("x"), 100))[:15], false},
	} {
		if err := checkProfile(tc.in); (err == nil) != tc.ok {
			t.Errorf("%s: checkProfile = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// TestFetchAdmin: the admin secret goes as a bearer token; a refusal is
// an error that does not repeat the secret.
func TestFetchAdmin(t *testing.T) {
	secret := "s3cr3t-" + strings.Repeat("x", 40)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+secret {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("profile"))
	}))
	defer srv.Close()
	tg := &target{adminURL: srv.URL, adminSecret: secret}
	if b, err := tg.fetchAdmin(context.Background(), "/debug/pprof/heap", 5*time.Second); err != nil || string(b) != "profile" {
		t.Errorf("fetchAdmin = %q, %v", b, err)
	}
	tg.adminSecret = "wrong-" + secret
	_, err := tg.fetchAdmin(context.Background(), "/debug/pprof/heap", 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a refused fetch: %v", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the error holds the secret: %v", err)
	}
}

// TestRenderPrincipalsAndProfiles: the report states the principals
// setting and lists the profiles.
func TestRenderPrincipalsAndProfiles(t *testing.T) {
	rep := &Report{Settings: Settings{Rounds: 1, Concurrency: []int{1, 8, 32}, Principals: 0}}
	if md := renderMarkdown(rep); !strings.Contains(md, "- principals: one per worker (N = concurrency: 1, 8, 32).") {
		t.Errorf("principals 0:\n%s", md)
	}
	rep.Settings.Principals = 5
	rep.Profiles = []ProfileFile{{Target: "mcpgate-full", Kind: "cpu", Path: "/p/mcpgate-full-cpu.pprof", Bytes: 1234, Detail: "CPU"}}
	rep.MCPGateBinary = "/w/mcpgate"
	md := renderMarkdown(rep)
	for _, want := range []string{"- principals: 5.", "### Profiles", "concurrency 32", "`/w/mcpgate`", "- mcpgate-full cpu: `/p/mcpgate-full-cpu.pprof` (1234 bytes)"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
