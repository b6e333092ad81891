package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"embed"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

//go:embed configs/*.yaml.tmpl
var configTemplates embed.FS

// Template names (under bench/configs/).
const (
	authnTemplate = "mcpgate-authn.yaml.tmpl"
	fullTemplate  = "mcpgate-full.yaml.tmpl"
)

// routePath is the one route's path; its resource URI (the tokens'
// audience) is the public base URL plus this.
const routePath = "/servers/bench/mcp"

// detectors are all of mcpgate's built-in credential detectors
// (docs/config.md, redaction.detectors).
func detectors() []string {
	return []string{"jwt", "bearer", "basic", "private_key", "aws_access_key", "aws_secret_key",
		"gcp_service_account", "azure", "github", "gitlab", "slack", "stripe", "openai", "anthropic", "connection_string"}
}

// gateConfig fills a configuration template.
type gateConfig struct {
	Listen, Base, Issuer, Upstream, AdminListen string
	RoutePath, AuditFile, SigningKey            string
	Detectors, Fillers                          []string
	// Profiling turns on the admin listener's /debug/pprof/ (-profile),
	// behind the bearer secret in AdminTokenFile.
	Profiling      bool
	AdminTokenFile string
	// RedisURL and RedisPasswordFile put the shared state in Redis
	// (mcpgate-redis).
	RedisURL, RedisPasswordFile string
}

// renderConfig renders template name with c.
func renderConfig(name string, c gateConfig) ([]byte, error) {
	t, err := template.ParseFS(configTemplates, "configs/"+name)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, c); err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// moduleRoot returns the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the mcpgate module (go env GOMOD = %q); run from the repository or pass -mcpgate", gomod)
	}
	return filepath.Dir(gomod), nil
}

// buildMCPGate builds ./cmd/mcpgate into dir and returns the binary.
func buildMCPGate(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "mcpgate")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/mcpgate")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/mcpgate: %w\n%s", err, stderr.String())
	}
	return bin, nil
}

// freePort returns a loopback address that was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// writeSigningKey writes a fresh Ed25519 audit signing key (PKCS#8, 0600)
// and its public key (PKIX) into dir.
func writeSigningKey(dir string) (priv, pub string, err error) {
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(sk)
	if err != nil {
		return "", "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pk)
	if err != nil {
		return "", "", err
	}
	priv, pub = filepath.Join(dir, "audit-signing.pem"), filepath.Join(dir, "audit-signing.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return "", "", err
	}
	return priv, pub, nil
}

// gateOptions describes one mcpgate target.
type gateOptions struct {
	template string
	// audited: the file sink with a signing key; the harness verifies the
	// trail after the run.
	audited bool
	// prime runs once per principal, with its token, before its first
	// load (requests the rules need).
	prime func(ctx context.Context, t *target, token string) error
	// probes run after the load, before the processes stop.
	probes func(ctx context.Context, env *runEnv, t *target) []Check
	// redis starts a redis-server for the target's shared state; its CPU
	// is counted with mcpgate's.
	redis bool
}

// mcpgateTarget returns the start function of an mcpgate target: an
// upstream process and `mcpgate serve` in front of it.
func mcpgateTarget(o gateOptions) startFunc {
	return func(ctx context.Context, env *runEnv, name string) (*target, error) {
		up, upURL, err := env.startUpstream(ctx, name)
		if err != nil {
			return nil, err
		}
		t := &target{name: name, env: env, upstream: up, upstreamURL: upURL}
		fail := func(err error) (*target, error) {
			t.stop()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		dir := filepath.Join(env.workDir, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fail(err)
		}
		listen, err := freePort()
		if err != nil {
			return fail(err)
		}
		admin, err := freePort()
		if err != nil {
			return fail(err)
		}
		gc := gateConfig{
			Listen: listen, Base: "http://" + listen, Issuer: env.issuer.url, Upstream: upURL + mcpPath,
			AdminListen: admin, RoutePath: routePath, Detectors: detectors(), Fillers: toolNames(env.cfg.Tools)[len(namedTools()):],
		}
		if o.audited {
			gc.AuditFile = filepath.Join(dir, "audit.jsonl")
			if gc.SigningKey, t.auditPub, err = writeSigningKey(dir); err != nil {
				return fail(err)
			}
			t.auditFile = gc.AuditFile
		}
		if o.redis {
			rp, url, pwFile, err := startRedis(ctx, name, dir)
			if err != nil {
				return fail(err)
			}
			t.extra = append(t.extra, rp)
			gc.RedisURL, gc.RedisPasswordFile = url, pwFile
		}
		if env.cfg.Profile != "" {
			gc.Profiling = true
			gc.AdminTokenFile = filepath.Join(dir, "admin-token")
			if t.adminSecret, err = writeAdminSecret(gc.AdminTokenFile); err != nil {
				return fail(err)
			}
		}
		yaml, err := renderConfig(o.template, gc)
		if err != nil {
			return fail(err)
		}
		t.configFile = filepath.Join(dir, "mcpgate.yaml")
		if err := os.WriteFile(t.configFile, yaml, 0o600); err != nil {
			return fail(err)
		}
		front, _, err := startProcess(ctx, name, []string{env.mcpgateBin, "serve", "--config", t.configFile}, nil, false)
		if err != nil {
			return fail(err)
		}
		t.front = front
		t.endpoint = gc.Base + routePath
		t.adminURL = "http://" + admin
		t.audience = t.endpoint
		if err := waitGateReady(ctx, t); err != nil {
			return fail(err)
		}
		t.prime, t.probes = o.prime, o.probes
		return t, nil
	}
}

// waitGateReady waits until mcpgate's admin /readyz answers 200 (the
// issuer's keys are loaded) and the route answers 401 without a token.
func waitGateReady(ctx context.Context, t *target) error {
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		if err := t.front.alive(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ready := false
		if resp, err := client.Get(t.adminURL + "/readyz"); err == nil {
			resp.Body.Close()
			ready = resp.StatusCode == http.StatusOK
		}
		if ready {
			resp, err := client.Post(t.endpoint, "application/json", strings.NewReader("{}"))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusUnauthorized {
					return nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("mcpgate not ready after 30s:\n%s", t.front.stderr.String())
}

// writeAdminSecret writes a fresh random admin bearer secret (32 random
// bytes, hex: 64 characters, no newline) to path, 0600, and returns it.
func writeAdminSecret(path string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("admin secret: %w", err)
	}
	secret := hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
		return "", fmt.Errorf("admin secret: %w", err)
	}
	return secret, nil
}

// primeWorkspace opens the bench workspace once as the principal of tok:
// the full configuration's order rule search-after-open needs it before
// that principal's first search (mcpgate keeps a history per principal).
func primeWorkspace(ctx context.Context, t *target, tok string) error {
	body, status, err := t.callAs(ctx, tok, "open_workspace", map[string]any{"workspace": benchWorkspace})
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("open_workspace: HTTP %d: %s", status, body)
	}
	if _, err := rpcResultText(body, t.lastID); err != nil {
		return fmt.Errorf("open_workspace: %w", err)
	}
	t.forwarded.Add(1)
	return nil
}

// fullProbes are the checks made on mcpgate-full after the load: a rule
// bites, a credential in a result is redacted, metrics are exported.
func fullProbes(ctx context.Context, env *runEnv, t *target) []Check {
	var out []Check
	add := func(name string, ok bool, detail string) {
		out = append(out, Check{Target: t.name, Name: name, OK: ok, Detail: detail})
	}

	// A call the policy refuses: an export without an approval.
	body, status, err := t.call(ctx, "export_results", map[string]any{"workspace": benchWorkspace})
	if err != nil {
		add("policy-denies", false, err.Error())
	} else {
		code, msg, rerr := rpcError(body, t.lastID)
		ok := status == http.StatusOK && rerr == nil && code == -32031 && strings.Contains(msg, "approve_export")
		add("policy-denies", ok, fmt.Sprintf("export_results without approval: HTTP %d, JSON-RPC error %d %q", status, code, msg))
		t.denyProbeID = strconv.FormatInt(t.lastID, 10)
	}

	// The rules are evaluated on search itself: one a long query trips.
	body, status, err = t.call(ctx, "search", map[string]any{"query": strings.Repeat("q", 600), "workspace": benchWorkspace})
	if err != nil {
		add("policy-evaluates-search", false, err.Error())
	} else {
		code, msg, rerr := rpcError(body, t.lastID)
		ok := status == http.StatusOK && rerr == nil && code == -32031 && strings.Contains(msg, "512 characters")
		add("policy-evaluates-search", ok, fmt.Sprintf("search with a 600-character query: HTTP %d, JSON-RPC error %d %q", status, code, msg))
	}

	// A tool result holding a (fake, run-time built) AWS access key id.
	body, status, err = t.call(ctx, "leak_key", map[string]any{})
	if err != nil {
		add("redaction", false, err.Error())
	} else {
		t.forwarded.Add(1)
		text, rerr := rpcResultText(body, t.lastID)
		ok := status == http.StatusOK && rerr == nil && strings.Contains(text, "[REDACTED:aws_access_key]") && !bytes.Contains(body, []byte(env.fakeKey))
		add("redaction", ok, fmt.Sprintf("leak_key through mcpgate: HTTP %d, result %q", status, text))
	}

	// Metrics are on: the requests and the redaction were counted.
	m, err := scrapeMetrics(ctx, t.adminURL+"/metrics")
	if err != nil {
		add("metrics", false, err.Error())
	} else {
		req, red := m["mcpgate_requests_total"], m["mcpgate_redactions_total"]
		add("metrics", req > 0 && red > 0, fmt.Sprintf("mcpgate_requests_total=%.0f mcpgate_redactions_total=%.0f", req, red))
	}
	return out
}

// scrapeMetrics sums every sample of each metric family in a Prometheus
// text exposition (labels ignored).
func scrapeMetrics(ctx context.Context, u string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics sums the samples of each metric name in a Prometheus text
// exposition; comments and unparsable values are skipped.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			rest = rest[strings.LastIndexByte(rest, '}')+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out, sc.Err()
}

// verifyAudit runs `mcpgate audit verify` on the target's audit files
// and checks that the trail holds the run: a decision record for every
// search that reached the upstream, as many for each principal as the
// harness sent as that principal, and the deny probe's refusal.
func verifyAudit(ctx context.Context, env *runEnv, t *target, searches int64) []Check {
	var out []Check
	files, err := filepath.Glob(t.auditFile + "*")
	if err != nil || len(files) == 0 {
		return []Check{{Target: t.name, Name: "audit-verify", OK: false, Detail: fmt.Sprintf("no audit file %s*: %v", t.auditFile, err)}}
	}
	args := append([]string{"audit", "verify"}, files...)
	args = append(args, "--key", t.auditPub)
	cmd := exec.CommandContext(ctx, env.mcpgateBin, args...)
	outb, err := cmd.CombinedOutput()
	detail := strings.TrimSpace(string(outb))
	out = append(out, Check{Target: t.name, Name: "audit-verify", OK: err == nil,
		Detail: fmt.Sprintf("mcpgate audit verify %s --key %s: exit %v; %s", strings.Join(files, " "), t.auditPub, exitCode(err), oneLine(detail))})

	sc, err := scanAudit(files, t.denyProbeID)
	if err != nil {
		out = append(out, Check{Target: t.name, Name: "audit-records", OK: false, Detail: err.Error()})
		return out
	}
	out = append(out, Check{Target: t.name, Name: "audit-records", OK: int64(sc.allowed) == searches && sc.denyFound,
		Detail: fmt.Sprintf("%d allow decisions for search (%d searches sent); deny probe recorded as seq:export-after-approval: %v", sc.allowed, searches, sc.denyFound)})
	out = append(out, principalCheck(t, sc.bySubject))
	return out
}

// principalCheck compares the allow decisions for search per subject with
// what the harness sent as each principal: the same subjects, the same
// counts.
func principalCheck(t *target, bySubject map[string]int) Check {
	ok := len(t.sentBy) > 0 && len(bySubject) == len(t.sentBy)
	counts := make([]int, len(t.sentBy))
	for i, sent := range t.sentBy {
		counts[i] = bySubject[principalSubject(i)]
		if int64(counts[i]) != sent || sent == 0 {
			ok = false
		}
	}
	lo, hi := 0, 0
	if len(counts) > 0 {
		lo, hi = slices.Min(counts), slices.Max(counts)
	}
	return Check{Target: t.name, Name: "audit-principals", OK: ok,
		Detail: fmt.Sprintf("allow decisions for search by %d subjects (%d principals used), %d to %d each; each equal to what the harness sent as that principal: %v",
			len(bySubject), len(t.sentBy), lo, hi, ok)}
}

// auditScan is what scanAudit found.
type auditScan struct {
	allowed   int            // allow decisions for search
	bySubject map[string]int // the same, by subject
	denyFound bool           // the deny probe's refusal
}

// scanAudit counts the allow decisions for search, in all and by
// subject, and finds the deny decision of the probe with JSON-RPC id
// denyID.
func scanAudit(files []string, denyID string) (auditScan, error) {
	res := auditScan{bySubject: map[string]int{}}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return auditScan{}, err
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if !bytes.Contains(line, []byte(`"kind":"decision"`)) {
				continue
			}
			if bytes.Contains(line, []byte(`"tool":"search"`)) && bytes.Contains(line, []byte(`"decision":"allow"`)) {
				res.allowed++
				res.bySubject[jsonStringMember(line, "subject")]++
				continue
			}
			if denyID != "" && bytes.Contains(line, []byte(`"decision":"deny"`)) {
				var e struct {
					RPCID string `json:"rpc_id"`
					Rule  string `json:"rule"`
				}
				if json.Unmarshal(line, &e) == nil && e.RPCID == denyID && e.Rule == "seq:export-after-approval" {
					res.denyFound = true
				}
			}
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return auditScan{}, fmt.Errorf("read %s: %w", f, err)
		}
	}
	return res, nil
}

// jsonStringMember returns the raw value of the first member "name":"…"
// of a compact JSON line, "" when absent. It does not unescape: the
// harness's subjects hold nothing JSON escapes.
func jsonStringMember(line []byte, name string) string {
	key := `"` + name + `":"`
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return ""
	}
	v := line[i+len(key):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return ""
	}
	return string(v[:j])
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// oneLine joins the lines of s with "; ".
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ; ")), " ")
}

// startRedis starts a redis-server on a free loopback port with a random
// password (in a 0600 config file and a 0600 password file for mcpgate,
// never on a command line) and waits until it accepts connections.
func startRedis(ctx context.Context, name, dir string) (p *process, url, passwordFile string, err error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, "", "", fmt.Errorf("redis-server is not installed: run scripts/test once (it installs it) or 'apt-get install redis-server': %w", err)
	}
	addr, err := freePort()
	if err != nil {
		return nil, "", "", err
	}
	host, port, _ := net.SplitHostPort(addr)
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return nil, "", "", err
	}
	password := hex.EncodeToString(b)
	passwordFile = filepath.Join(dir, "redis-password")
	conf := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(passwordFile, []byte(password), 0o600); err != nil {
		return nil, "", "", err
	}
	lines := fmt.Sprintf("bind %s\nport %s\nrequirepass %s\nsave \"\"\nappendonly no\ndir %s\nloglevel warning\n", host, port, password, dir)
	if err := os.WriteFile(conf, []byte(lines), 0o600); err != nil {
		return nil, "", "", err
	}
	p, _, err = startProcess(ctx, name+"-redis", []string{"redis-server", conf}, nil, false)
	if err != nil {
		return nil, "", "", err
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := p.alive(); err != nil {
			return nil, "", "", fmt.Errorf("redis-server: %w", err)
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return p, "redis://" + addr + "/0", passwordFile, nil
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, "", "", fmt.Errorf("redis-server did not listen on %s: %s", addr, p.stderr.String())
		}
	}
}
