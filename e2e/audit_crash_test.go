package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/testissuer"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// buildMCPGate builds the mcpgate binary once per test run.
func buildMCPGate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mcpgate")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/mcpgate")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// writeSigningKey writes an Ed25519 key pair (PKCS#8 private 0600, PKIX
// public) and returns their paths.
func writeSigningKey(t *testing.T, dir string) (priv, pub string) {
	t.Helper()
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(sk)
	pubDER, _ := x509.MarshalPKIXPublicKey(pk)
	priv, pub = filepath.Join(dir, "audit.pem"), filepath.Join(dir, "audit.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestAuditSurvivesKill9 runs `mcpgate serve` as a subprocess with the
// file sink on fsync: always, drives tools/call traffic through it, kills
// it with SIGKILL mid-load, and then checks the audit file: the chain
// verifies up to the last record, and every call the upstream received has
// its decision record on disk.
func TestAuditSurvivesKill9(t *testing.T) {
	bin := buildMCPGate(t)
	dir := t.TempDir()
	iss := testissuer.New(t, testissuer.Options{})

	var mu sync.Mutex
	received := map[string]bool{} // JSON-RPC ids of the tools/call the upstream got
	up := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	mcp.AddTool(up, &mcp.Tool{Name: "work"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	upL := listen(t)
	upSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(b, &m) == nil && m.Method == "tools/call" {
			mu.Lock()
			received[string(m.ID)] = true
			mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})}
	go func() { _ = upSrv.Serve(upL) }()
	t.Cleanup(func() { upSrv.Close() })

	priv, pub := writeSigningKey(t, dir)
	addr, adminAddr := freePort(t), freePort(t)
	base := "http://" + addr
	auditFile := filepath.Join(dir, "audit.jsonl")
	cfg := fmt.Sprintf(`server:
  listen: %q
  public_base_url: %q
authorization_servers:
  - issuer: %q
    algorithms: [RS256, ES256]
routes:
  - name: jobs
    path: /servers/jobs/mcp
    upstream: {url: "http://%s/mcp"}
    tools: {work: {}}
limits:
  rate_per_ip: {requests_per_second: -1}
audit:
  sink: file
  file: %q
  fsync: always
  signing_key_file: %q
  checkpoint_interval: 100ms
log: {level: warn}
admin: {listen: %q}
development: {insecure_allow_http_loopback: true}
`, addr, base, iss.URL(), upL.Addr().String(), auditFile, priv, adminAddr)
	cfgFile := filepath.Join(dir, "mcpgate.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, exited, stderr := startServe(t, bin, cfgFile, base+"/servers/jobs/mcp")
	// The admin listener, as a probe and an operator reach it: ready once
	// the issuer's keys are loaded (in the background, after start).
	waitFor(t, "/readyz to report ready", func() bool {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	for path, want := range map[string]int{"/healthz": 200, "/admin/status": 403, "/servers/jobs/mcp": 404} {
		resp, err := http.Get("http://" + adminAddr + path)
		if err != nil {
			t.Fatalf("admin %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("admin %s: %d, want %d", path, resp.StatusCode, want)
		}
	}

	token := iss.Mint(testissuer.Claims{Subject: "alice", ClientID: "agent", Audience: []string{base + "/servers/jobs/mcp"}})
	var next atomic.Int64
	var ok atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := next.Add(1)
				body := `{"jsonrpc":"2.0","id":` + strconv.FormatInt(id, 10) + `,"method":"tools/call","params":{"name":"work","arguments":{}}}`
				req, _ := http.NewRequest(http.MethodPost, base+"/servers/jobs/mcp", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				if err != nil {
					return // the gateway is gone
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
				}
			}
		}()
	}
	// Kill once the load is well under way.
	deadline := time.Now().Add(20 * time.Second)
	for ok.Load() < 300 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	<-exited
	close(stop)
	wg.Wait()
	if ok.Load() < 300 {
		t.Fatalf("only %d calls succeeded before the kill; stderr:\n%s", ok.Load(), stderr.String())
	}

	files, _ := filepath.Glob(auditFile + "*")
	key, err := audit.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(files, []ed25519.PublicKey{key})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.Write(&out)
	t.Logf("after kill -9 with %d calls answered: %s", ok.Load(), out.String())
	if !rep.OK() {
		t.Fatalf("the chain does not verify after kill -9:\n%s", out.String())
	}
	if rep.Checkpoints == 0 {
		t.Errorf("no checkpoint was written")
	}

	// Every call the upstream received has its decision record on disk.
	decided := map[string]bool{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e audit.Event
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Kind == audit.KindDecision && e.Decision == audit.Allow && e.Tool == "work" {
				decided[e.RPCID] = true
			}
		}
		fh.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(received) < 300 {
		t.Fatalf("the upstream received only %d calls", len(received))
	}
	missing := 0
	for id := range received {
		if !decided[id] {
			missing++
			if missing <= 5 {
				t.Errorf("call %s reached the upstream without a decision record on disk", id)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d forwarded calls have no decision record", missing, len(received))
	}

	// A restart continues the chain (repairing a partial last line, if
	// the kill left one), and a clean stop ends it with a signed shutdown
	// checkpoint: the whole trail then verifies, end included.
	restart, exited2, stderr2 := startServe(t, bin, cfgFile, base+"/servers/jobs/mcp")
	if err := restart.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := <-exited2; err != nil {
		t.Fatalf("mcpgate did not stop cleanly: %v\n%s", err, stderr2.String())
	}
	files, _ = filepath.Glob(auditFile + "*")
	rep, err = audit.Verify(files, []ed25519.PublicKey{key})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	rep.Write(&out)
	if !rep.OK() || rep.EndReason != audit.ReasonShutdown || rep.UnsignedTail != 0 {
		t.Fatalf("after a restart and a clean stop:\n%s", out.String())
	}
}

// startServe runs `mcpgate serve --config cfgFile` and waits until endpoint
// answers. It returns the process, a channel that receives its exit, and
// its captured standard error; the process is killed when the test ends.
func startServe(t *testing.T, bin, cfgFile, endpoint string) (*exec.Cmd, chan error, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfgFile)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitReady(t, endpoint, exited, stderr)
	return cmd, exited, stderr
}

// waitReady waits until the gateway answers (401 without a token).
func waitReady(t *testing.T, endpoint string, exited chan error, stderr *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("mcpgate exited: %v\n%s", err, stderr.String())
		default:
		}
		resp, err := http.Post(endpoint, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("mcpgate did not become ready:\n%s", stderr.String())
}
