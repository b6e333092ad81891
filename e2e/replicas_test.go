package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/internal/redistest"
	"github.com/mcpgate/mcpgate/internal/testissuer"
)

// replica is one `mcpgate serve` process of a multi-replica deployment.
type replica struct {
	name, base, admin string
	stderr            *lockedBuffer
}

// TestReplicasShareState runs two mcpgate processes on one redis-server,
// as replicas behind a load balancer: a sequence begun on A is enforced
// on B, a budget is shared, a revocation made through A is refused on B on
// the very next request, and with Redis killed mid-session both fail
// closed (503) and recover without a restart once it is back.
func TestReplicasShareState(t *testing.T) {
	bin := buildMCPGate(t)
	dir := t.TempDir()
	iss := testissuer.New(t, testissuer.Options{})
	srv := redistest.Start(t)

	var upstreamCalls atomic.Int64
	up := mcp.NewServer(&mcp.Implementation{Name: "docs", Version: "1"}, nil)
	for _, name := range []string{"open_workspace", "search"} {
		mcp.AddTool(up, &mcp.Tool{Name: name}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			upstreamCalls.Add(1)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " done"}}}, nil, nil
		})
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	upL := listen(t)
	upSrv := &http.Server{Handler: h}
	go func() { _ = upSrv.Serve(upL) }()
	t.Cleanup(func() { upSrv.Close() })
	// A second upstream keeps MCP sessions (both replicas forward to it).
	notes := mcp.NewServer(&mcp.Implementation{Name: "notes", Version: "1"}, nil)
	mcp.AddTool(notes, &mcp.Tool{Name: "read_note"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "read_note done"}}}, nil, nil
	})
	notesL := listen(t)
	notesSrv := &http.Server{Handler: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return notes }, &mcp.StreamableHTTPOptions{JSONResponse: true})}
	go func() { _ = notesSrv.Serve(notesL) }()
	t.Cleanup(func() { notesSrv.Close() })

	adminToken := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(adminToken, []byte(strings.Repeat("k", 8)+"-replica-admin-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Both replicas serve one public URL (the load balancer's); the test
	// talks to each directly.
	addrA, addrB := freePort(t), freePort(t)
	public := "http://" + addrA
	resource := public + "/servers/docs/mcp"
	start := func(name, addr string) *replica {
		adminAddr := freePort(t)
		cfg := fmt.Sprintf(`server: {listen: %q, public_base_url: %q}
authorization_servers: [{issuer: %q, algorithms: [RS256, ES256]}]
routes:
  - name: docs
    path: /servers/docs/mcp
    upstream: {url: "http://%s/mcp"}
    tools: {open_workspace: {}, search: {}}
  - name: notes
    path: /servers/notes/mcp
    upstream: {url: "http://%s/mcp"}
    tools: {read_note: {}}
sequence:
  rules:
    - id: search-after-open
      order: {call: {tools: [search]}, after: {tools: [open_workspace]}}
      message: open the workspace first.
    - id: search-budget
      budget: {match: {tools: [search]}, max: 3, window: 1h, per: subject}
store:
  url: %q
  password_file: %q
  key_prefix: "e2e:"
  timeout: 500ms
limits: {rate_per_ip: {requests_per_second: -1}}
admin: {listen: %q, bearer_token_file: %q}
audit: {sink: file, file: %q}
log: {level: info}
development: {insecure_allow_http_loopback: true}
`, addr, public, iss.URL(), upL.Addr().String(), notesL.Addr().String(), srv.URL(), srv.PasswordFile, adminAddr, adminToken, filepath.Join(dir, name+"-audit.jsonl"))
		cfgFile := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, stderr := startServe(t, bin, cfgFile, "http://"+addr+"/servers/docs/mcp")
		return &replica{name: name, base: "http://" + addr, admin: "http://" + adminAddr, stderr: stderr}
	}
	a, b := start("a", addrA), start("b", addrB)

	token := func(sub string) string {
		return iss.Mint(testissuer.Claims{Subject: sub, ClientID: "agent", Audience: []string{resource}, Expiry: time.Now().Add(time.Hour)})
	}
	type answer struct {
		status int
		body   string
	}
	call := func(r *replica, tok, tool string) answer {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, r.base+"/servers/docs/mcp",
			strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"`+tool+`","arguments":{}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, string(body)}
	}
	allowed := func(x answer) bool { return x.status == 200 && strings.Contains(x.body, " done") }

	alice := token("alice")
	// The sequence: search needs an earlier open_workspace, wherever it ran.
	if x := call(b, alice, "search"); allowed(x) || !strings.Contains(x.body, "open the workspace first") {
		t.Fatalf("search before open on B: %d %s", x.status, x.body)
	}
	if x := call(a, alice, "open_workspace"); !allowed(x) {
		t.Fatalf("open on A: %d %s", x.status, x.body)
	}
	if x := call(b, alice, "search"); !allowed(x) {
		t.Fatalf("search on B after open on A refused: %d %s", x.status, x.body)
	}
	// The budget (3 searches per subject) is one budget for both.
	granted := 1
	for i := range 6 {
		if allowed(call([]*replica{a, b}[i%2], alice, "search")) {
			granted++
		}
	}
	if granted != 3 {
		t.Errorf("%d searches allowed across the replicas, want the budget of 3", granted)
	}

	// Sessions: initialized through A, used through B; not by another
	// principal; ended through B, refused by A.
	notesURL := public + "/servers/notes/mcp"
	notesTok := func(sub string) string {
		return iss.Mint(testissuer.Claims{Subject: sub, ClientID: "agent", Audience: []string{notesURL}, Expiry: time.Now().Add(time.Hour)})
	}
	rpc := func(r *replica, method, tok, sid, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, r.base+"/servers/notes/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		req.Header.Set("Authorization", "Bearer "+tok)
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	erin := notesTok("erin")
	resp, body := rpc(a, http.MethodPost, erin, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || sid == "" {
		t.Fatalf("initialize through A: %d %q %s", resp.StatusCode, sid, body)
	}
	rpc(b, http.MethodPost, erin, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	readNote := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_note","arguments":{}}}`
	if resp, body := rpc(b, http.MethodPost, erin, sid, readNote); resp.StatusCode != 200 || !strings.Contains(body, "read_note done") {
		t.Fatalf("the session from A used through B: %d %s", resp.StatusCode, body)
	}
	if resp, body := rpc(b, http.MethodPost, notesTok("mallory"), sid, readNote); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another principal with erin's session id on B: %d %s, want 404", resp.StatusCode, body)
	}
	if resp, body := rpc(b, http.MethodDelete, erin, sid, ""); resp.StatusCode/100 != 2 {
		t.Fatalf("DELETE through B: %d %s", resp.StatusCode, body)
	}
	if resp, body := rpc(a, http.MethodPost, erin, sid, readNote); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the session ended through B, used through A: %d %s, want 404", resp.StatusCode, body)
	}

	// A revocation made through A is refused on B on the very next request.
	bob := token("bob")
	if x := call(b, bob, "open_workspace"); !allowed(x) {
		t.Fatalf("bob on B: %d %s", x.status, x.body)
	}
	revocation := fmt.Sprintf(`{"kind":"subject","issuer":%q,"value":"bob","reason":"e2e"}`, iss.URL())
	req, _ := http.NewRequest(http.MethodPost, a.admin+"/admin/revocations", strings.NewReader(revocation))
	secret, _ := os.ReadFile(adminToken)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(secret)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("revocation through A: %d", resp.StatusCode)
	}
	before := upstreamCalls.Load()
	if x := call(b, bob, "open_workspace"); x.status != http.StatusUnauthorized || !strings.Contains(x.body, "revoked") {
		t.Fatalf("the next request on B with bob's revoked token: %d %s", x.status, x.body)
	}
	if upstreamCalls.Load() != before {
		t.Error("the revoked call reached the upstream")
	}

	// Redis killed mid-session: both replicas refuse (503) with a message
	// an agent can act on, and are not ready; nothing reaches the upstream.
	carol := token("carol")
	if x := call(a, carol, "open_workspace"); !allowed(x) {
		t.Fatalf("carol on A: %d %s", x.status, x.body)
	}
	srv.Stop()
	before = upstreamCalls.Load()
	for _, r := range []*replica{a, b} {
		x := call(r, carol, "search")
		if x.status != http.StatusServiceUnavailable {
			t.Errorf("%s with redis down: %d %s, want 503", r.name, x.status, x.body)
		}
		var msg struct {
			Error struct{ Message string } `json:"error"`
		}
		if json.Unmarshal([]byte(x.body), &msg); !strings.Contains(msg.Error.Message, "try again later") {
			t.Errorf("%s: the refusal says %q", r.name, msg.Error.Message)
		}
		rr, err := http.Get(r.admin + "/readyz")
		if err != nil {
			t.Fatalf("%s /readyz: %v", r.name, err)
		}
		rr.Body.Close()
		if rr.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s /readyz with redis down: %d", r.name, rr.StatusCode)
		}
	}
	if upstreamCalls.Load() != before {
		t.Error("a call reached the upstream while the shared state was unreachable")
	}

	// Back (empty, as after a failover that lost the data): no restart
	// needed; tokens issued before the new epoch are refused, because the
	// revocations that covered them are gone; a fresh token works.
	time.Sleep(1100 * time.Millisecond) // iat has whole seconds: the tokens above are from an earlier second
	srv.Restart()
	for _, r := range []*replica{a, b} {
		waitFor(t, "replica "+r.name+" to answer again", func() bool {
			x := call(r, carol, "open_workspace")
			return x.status != http.StatusServiceUnavailable
		})
	}
	if x := call(b, carol, "open_workspace"); x.status != http.StatusUnauthorized {
		t.Errorf("a token from before the data loss on B: %d %s, want 401", x.status, x.body)
	}
	if x := call(b, bob, "open_workspace"); x.status != http.StatusUnauthorized {
		t.Errorf("bob's revoked token after the data loss: %d %s, want 401", x.status, x.body)
	}
	dave := token("dave")
	if x := call(b, dave, "open_workspace"); !allowed(x) {
		t.Fatalf("a fresh token on B after recovery: %d %s", x.status, x.body)
	}
	if x := call(a, dave, "search"); !allowed(x) {
		t.Errorf("the sequence across replicas after recovery: %d %s", x.status, x.body)
	}
	for _, r := range []*replica{a, b} {
		if strings.Contains(r.stderr.String(), srv.Password) {
			t.Errorf("replica %s logged the redis password", r.name)
		}
	}
}
