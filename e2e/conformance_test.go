// Package e2e holds mcpgate's end-to-end tests: the gateway in process, with
// real go-sdk MCP servers and clients, a test authorization server over
// HTTP, and the MCP conformance suite from npm run against the gateway.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/testissuer"
	"github.com/mcpgate/mcpgate/internal/upstream"
)

// TestConformanceThroughGateway runs the MCP conformance server suite
// (@modelcontextprotocol/conformance, pinned in interop/package.json)
// against go-sdk's everything-server directly and through mcpgate, with
// authentication on: a real JWT from an issuer served over HTTP, scopes
// enforced per route and per tool, prompt and resource. Every check that
// passes directly must pass through the gateway. The conformance CLI cannot
// send a bearer token, so a token-injecting hop built on mcpgate's own
// proxy code sits in front of the gateway (a plain reverse proxy there
// would bring back the hang TestConformanceNoHang guards against).
func TestConformanceThroughGateway(t *testing.T) {
	env := newConformanceEnv(t)
	direct := env.runSuite(t, env.everythingURL, "direct")
	through := env.runSuite(t, env.hopURL, "gateway")

	passedDirect, passedThrough := 0, 0
	var missing []string
	for key, st := range direct {
		if st != "SUCCESS" {
			continue
		}
		passedDirect++
		if through[key] == "SUCCESS" {
			passedThrough++
		} else {
			missing = append(missing, fmt.Sprintf("%s (through mcpgate: %s)", key, orNone(through[key])))
		}
	}
	sort.Strings(missing)
	t.Logf("conformance checks passing: %d direct, %d of them through mcpgate", passedDirect, passedThrough)
	if passedDirect < 30 {
		t.Fatalf("only %d checks passed against the everything-server directly; the suite did not run properly", passedDirect)
	}
	if len(missing) > 0 {
		t.Errorf("checks that pass directly but fail through mcpgate:\n  %s", strings.Join(missing, "\n  "))
	}
	env.assertEnforced(t)
}

// TestConformanceNoHang repeats the scenario where plain reverse proxies
// hang or cut the SSE response short (tools-call-with-logging: a tool
// streams log notifications before its result) 30 times through mcpgate,
// three at a time, each bounded by a deadline.
func TestConformanceNoHang(t *testing.T) {
	env := newConformanceEnv(t)
	const runs, workers = 30, 3
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
	)
	jobs := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				res, out, err := env.run(t, env.hopURL, fmt.Sprintf("hang-%02d", i), "--scenario", "tools-call-with-logging")
				ok := err == nil && len(res) > 0
				for _, st := range res {
					ok = ok && st == "SUCCESS"
				}
				if !ok {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("run %d: err=%v results=%v\n%s", i, err, res, tail(out, 800)))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range runs {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d runs failed or hung:\n%s", len(failures), runs, strings.Join(failures, "\n"))
	}
}

// conformanceEnv is everything-server ← mcpgate ← token hop, all on
// loopback.
type conformanceEnv struct {
	everythingURL string // the upstream, directly
	gatewayURL    string // mcpgate's route
	hopURL        string // the token-injecting hop in front of mcpgate
	token         string
	tmp           string
}

func newConformanceEnv(t *testing.T) *conformanceEnv {
	t.Helper()
	cli := conformanceCLI(t)
	_ = cli
	env := &conformanceEnv{tmp: t.TempDir()}
	env.everythingURL = startEverythingServer(t, env.tmp) + "/mcp"

	iss := testissuer.New(t, testissuer.Options{Lifetime: time.Hour})
	hopL := listen(t)
	hopOrigin := "http://" + hopL.Addr().String()
	gw := startGateway(t, func(base string) *config.Config {
		return &config.Config{
			Server: config.Server{PublicBaseURL: base, AllowedOrigins: []string{hopOrigin}},
			AuthorizationServers: []config.AuthorizationServer{{
				Issuer: iss.URL(), Algorithms: []string{"RS256"},
			}},
			Routes: []config.Route{{
				Name: "everything", Path: "/mcp",
				Upstream:        config.Upstream{URL: env.everythingURL},
				RequiredScopes:  []string{"mcp:connect"},
				DefaultTool:     config.DefaultRule{Allow: true, Scopes: []string{"mcp:tools"}},
				DefaultPrompt:   config.DefaultRule{Allow: true, Scopes: []string{"mcp:prompts"}},
				DefaultResource: config.DefaultRule{Allow: true, Scopes: []string{"mcp:resources"}},
			}},
			Limits:      config.Limits{RatePerIP: config.Rate{RequestsPerSecond: -1}},
			Development: config.Development{InsecureAllowHTTPLoopback: true},
		}
	})
	env.gatewayURL = gw + "/mcp"
	env.token = iss.Mint(testissuer.Claims{
		Subject: "conformance", ClientID: "conformance-cli", Audience: []string{env.gatewayURL},
		Scope: "mcp:connect mcp:tools mcp:prompts mcp:resources",
	})
	env.hopURL = startTokenHop(t, hopL, env.gatewayURL, env.token) + "/mcp"
	return env
}

// assertEnforced checks that the gateway in this environment really
// enforces authentication and scopes.
func (env *conformanceEnv) assertEnforced(t *testing.T) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	req, _ := http.NewRequest("POST", env.gatewayURL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata=") {
		t.Errorf("without a token: %d %q, want 401 with a resource_metadata challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// runSuite runs the active server suite against url and returns the status
// of every check by "scenario/check".
func (env *conformanceEnv) runSuite(t *testing.T, url, label string) map[string]string {
	t.Helper()
	res, out, err := env.run(t, url, label, "--suite", "active")
	if len(res) == 0 {
		t.Fatalf("conformance suite (%s) produced no results: %v\n%s", label, err, tail(out, 4000))
	}
	return res
}

// run runs the conformance CLI once and collects the checks it wrote.
func (env *conformanceEnv) run(t *testing.T, url, label string, args ...string) (map[string]string, string, error) {
	outDir := filepath.Join(env.tmp, "results-"+label)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{conformanceCLI(t), "server", "--url", url, "-o", outDir}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out (a hang): %w", ctx.Err())
	}
	res := map[string]string{}
	dirs, _ := filepath.Glob(filepath.Join(outDir, "*", "checks.json"))
	for _, f := range dirs {
		scenario := scenarioName(filepath.Base(filepath.Dir(f)))
		b, rerr := os.ReadFile(f)
		if rerr != nil {
			continue
		}
		var checks []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		if json.Unmarshal(b, &checks) != nil {
			continue
		}
		for _, c := range checks {
			res[scenario+"/"+c.ID] = c.Status
		}
	}
	return res, string(out), err
}

// scenarioName strips the "server-" prefix and timestamp suffix from a
// result directory name.
func scenarioName(dir string) string {
	dir = strings.TrimPrefix(dir, "server-")
	if i := strings.Index(dir, "-20"); i > 0 {
		return dir[:i]
	}
	return dir
}

// conformanceCLI returns the path of the pinned conformance CLI, failing
// with the fix when Node.js or the npm peers are missing.
func conformanceCLI(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: install Node.js 20 or later, then run ./scripts/test (it installs the npm peers)")
	}
	p, err := filepath.Abs(filepath.Join("..", "interop", "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the MCP conformance suite is not installed (%v): run ./scripts/test, or 'npm ci' in interop/", err)
	}
	return p
}

// startEverythingServer builds and starts go-sdk's conformance
// everything-server (stateful) and returns its base URL.
func startEverythingServer(t *testing.T, tmp string) string {
	t.Helper()
	bin := filepath.Join(tmp, "everything-server")
	build := exec.Command("go", "build", "-o", bin, "github.com/modelcontextprotocol/go-sdk/conformance/everything-server")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build everything-server: %v\n%s", err, out)
	}
	l := listen(t)
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "-http", addr, "-stateless=false")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start everything-server: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitListening(t, addr)
	return "http://" + addr
}

// startTokenHop serves a proxy that adds the bearer token and forwards to
// target with mcpgate's upstream proxy (body read first, forwarded as
// bytes). Origin is forwarded so the gateway's DNS-rebinding check sees
// what the suite sent.
func startTokenHop(t *testing.T, l net.Listener, target, token string) string {
	t.Helper()
	u, _ := url.Parse(target)
	p, err := upstream.New(upstream.Config{URL: u, ForwardHeaders: []string{"Authorization", "Origin"}}, upstream.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Method == http.MethodPost {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, "read body", http.StatusBadRequest)
				return
			}
			body = b
		}
		r.Header.Set("Authorization", "Bearer "+token)
		p.Forward(w, r, body, &upstream.Hooks{})
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing is listening on %s", addr)
}

func orNone(s string) string {
	if s == "" {
		return "not run"
	}
	return s
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
