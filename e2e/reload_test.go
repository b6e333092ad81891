package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/testissuer"
)

// TestHotReload runs `mcpgate serve` and changes its configuration file:
// a valid change applies without a restart, a broken file keeps the
// gateway serving on the last good configuration, and SIGHUP reloads too.
func TestHotReload(t *testing.T) {
	bin := buildMCPGate(t)
	dir := t.TempDir()
	iss := testissuer.New(t, testissuer.Options{})
	up := listen(t)
	upSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`)
	})}
	go func() { _ = upSrv.Serve(up) }()
	t.Cleanup(func() { upSrv.Close() })
	addr, adminAddr := freePort(t), freePort(t)
	base := "http://" + addr
	cfgFile := filepath.Join(dir, "mcpgate.yaml")
	// Each write gets a modification time of its own, whatever the file
	// system's timestamp resolution.
	stamp := time.Now().Add(-time.Hour)
	bump := func() {
		stamp = stamp.Add(time.Second)
		if err := os.Chtimes(cfgFile, stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	write := func(tools string) {
		t.Helper()
		cfg := fmt.Sprintf(`server: {listen: %q, public_base_url: %q}
authorization_servers: [{issuer: %q}]
routes:
  - name: jobs
    path: /servers/jobs/mcp
    upstream: {url: "http://%s/mcp"}
    tools: {%s}
limits: {rate_per_ip: {requests_per_second: -1}}
admin: {listen: %q}
audit: {sink: file, file: %q}
log: {level: info}
development: {insecure_allow_http_loopback: true}
`, addr, base, iss.URL(), up.Addr().String(), tools, adminAddr, filepath.Join(dir, "audit.jsonl"))
		// Write then rename, as configuration management does.
		tmp := cfgFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfgFile); err != nil {
			t.Fatal(err)
		}
		bump()
	}
	write("alpha: {}")
	cmd, _, stderr := startServe(t, bin, cfgFile, base+"/servers/jobs/mcp")

	token := iss.Mint(testissuer.Claims{Subject: "alice", ClientID: "agent", Audience: []string{base + "/servers/jobs/mcp"}, Expiry: time.Now().Add(time.Hour)})
	allowed := func(tool string) bool {
		req, _ := http.NewRequest(http.MethodPost, base+"/servers/jobs/mcp",
			strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"`+tool+`","arguments":{}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200 && !strings.Contains(string(b), "denied by gateway policy")
	}
	if !allowed("alpha") || allowed("beta") {
		t.Fatal("the initial configuration is not in force")
	}
	// A valid change applies on its own.
	write("alpha: {}, beta: {}")
	waitFor(t, "the new tool to be allowed", func() bool { return allowed("beta") })
	// A broken file keeps the last good configuration.
	if err := os.WriteFile(cfgFile, []byte("routes: [this is not valid\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bump()
	waitFor(t, "the refused reload to be logged", func() bool { return strings.Contains(stderr.String(), "configuration reload refused") })
	if !allowed("alpha") || !allowed("beta") {
		t.Fatal("a broken configuration file changed what is served")
	}
	// SIGHUP reloads a fixed file.
	write("alpha: {}")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "beta to be refused again", func() bool { return !allowed("beta") })
	if !allowed("alpha") {
		t.Fatal("alpha refused after the reload")
	}
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `mcpgate_config_reloads_total{result="failure"}`) || strings.Contains(string(b), `mcpgate_config_reloads_total{result="success"} 0`) {
		t.Errorf("reload metrics:\n%s", grepLines(string(b), "config_reloads"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// waitFor polls cond for up to 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
