package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestInteropTypeScriptClientOIDCProvider: the MCP TypeScript SDK's client
// (interop/ts-client.mjs), knowing only mcpgate's endpoint, gets a 401,
// discovers the protected resource metadata and the metadata of a real
// third-party authorization server (oidc-provider, interop/op.mjs),
// registers dynamically, runs authorization code + PKCE with the resource
// parameter, and calls a go-sdk server's tool through mcpgate with the
// RFC 9068 JWT access token oidc-provider issued for that resource.
func TestInteropTypeScriptClientOIDCProvider(t *testing.T) {
	interop := interopDir(t, "oidc-provider", "@modelcontextprotocol/sdk")
	issuer := startOIDCProvider(t, interop)

	up := mcp.NewServer(&mcp.Implementation{Name: "echo", Version: "1"}, nil)
	type echoIn struct {
		Text string `json:"text"`
	}
	mcp.AddTool(up, &mcp.Tool{Name: "echo", Description: "echoes text"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "echo: " + in.Text}}}, nil, nil
	})
	upL := listen(t)
	upSrv := &http.Server{Handler: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil)}
	go func() { _ = upSrv.Serve(upL) }()
	t.Cleanup(func() { upSrv.Close() })

	gwL := listen(t)
	endpoint := "http://" + gwL.Addr().String() + "/servers/echo/mcp"
	startGatewayOn(t, gwL, "http", func(base string) *config.Config {
		return &config.Config{
			Server:               config.Server{PublicBaseURL: base},
			AuthorizationServers: []config.AuthorizationServer{{Issuer: issuer, Algorithms: []string{"ES256"}}},
			Routes: []config.Route{{
				Name: "echo", Path: "/servers/echo/mcp",
				Upstream:       config.Upstream{URL: "http://" + upL.Addr().String() + "/mcp"},
				RequiredScopes: []string{"mcp:tools"},
				Tools:          map[string]config.ItemRule{"echo": {}},
			}},
			Limits:      config.Limits{RatePerIP: config.Rate{RequestsPerSecond: -1}},
			Development: config.Development{InsecureAllowHTTPLoopback: true},
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(interop, "ts-client.mjs"), endpoint)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var res struct {
		OK          bool     `json:"ok"`
		Error       string   `json:"error"`
		First401    bool     `json:"first_401"`
		Tools       []string `json:"tools"`
		Echo        string   `json:"echo"`
		TokenAud    any      `json:"token_aud"`
		TokenTyp    string   `json:"token_typ"`
		TokenScope  string   `json:"token_scope"`
		AuthRequest struct {
			Resource            string `json:"resource"`
			Scope               string `json:"scope"`
			CodeChallengeMethod string `json:"code_challenge_method"`
		} `json:"auth_request"`
	}
	line := lastLine(string(out))
	if jerr := json.Unmarshal([]byte(line), &res); jerr != nil || err != nil || !res.OK {
		t.Fatalf("ts-client.mjs: exit %v, result %q (%v)\nerror: %s\nstderr:\n%s", err, line, jerr, res.Error, tail(stderr.String(), 2000))
	}
	t.Logf("ts-client.mjs: %s", line)

	if !res.First401 {
		t.Error("the client connected without authorizing first: mcpgate did not challenge it")
	}
	if want := "echo: hello from ts"; res.Echo != want {
		t.Errorf("echo result = %q, want %q", res.Echo, want)
	}
	if len(res.Tools) != 1 || res.Tools[0] != "echo" {
		t.Errorf("tools = %v, want [echo]", res.Tools)
	}
	if res.TokenTyp != "at+jwt" {
		t.Errorf("access token typ = %q, want at+jwt", res.TokenTyp)
	}
	if !audIs(res.TokenAud, endpoint) {
		t.Errorf("access token aud = %v, want %s (the route's resource)", res.TokenAud, endpoint)
	}
	if !strings.Contains(" "+res.TokenScope+" ", " mcp:tools ") {
		t.Errorf("access token scope = %q, want mcp:tools", res.TokenScope)
	}
	if ar := res.AuthRequest; ar.Resource != endpoint || ar.CodeChallengeMethod != "S256" || ar.Scope != "mcp:tools" {
		t.Errorf("authorization request %+v: want resource=%s, S256 PKCE and scope mcp:tools", ar, endpoint)
	}

	// The negative: oidc-provider tokens mcpgate must refuse, from a
	// dynamically registered confidential client (client_credentials).
	svc := registerCCClient(t, issuer)
	for _, tc := range []struct {
		name, resource, scope string
		want                  int
	}{
		{"the route's resource", endpoint, "mcp:tools", http.StatusOK},
		{"another resource", "http://127.0.0.1:1/other/mcp", "mcp:tools", http.StatusUnauthorized},
		{"no resource (opaque token)", "", "mcp:tools", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := svc.token(t, tc.resource, tc.scope)
			if got := initializeStatus(t, endpoint, tok); got != tc.want {
				t.Errorf("initialize with a token for %q: HTTP %d, want %d", tc.resource, got, tc.want)
			}
		})
	}
}

// ccClient is a client registered at oidc-provider for client_credentials.
type ccClient struct{ issuer, id, secret string }

func registerCCClient(t *testing.T, issuer string) ccClient {
	t.Helper()
	body := `{"grant_types":["client_credentials"],"response_types":[],"redirect_uris":[],"token_endpoint_auth_method":"client_secret_basic","scope":"mcp:tools"}`
	resp, err := http.Post(issuer+"/reg", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated || out.ID == "" {
		t.Fatalf("dynamic registration: HTTP %d %v", resp.StatusCode, err)
	}
	return ccClient{issuer: issuer, id: out.ID, secret: out.Secret}
}

func (c ccClient) token(t *testing.T, resource, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	if resource != "" {
		form.Set("resource", resource)
	}
	req, _ := http.NewRequest("POST", c.issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.id, c.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		t.Fatalf("client_credentials token request: HTTP %d %v", resp.StatusCode, err)
	}
	return out.AccessToken
}

// initializeStatus sends an MCP initialize request with tok and returns
// the HTTP status.
func initializeStatus(t *testing.T, endpoint, tok string) int {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`
	req, _ := http.NewRequest("POST", endpoint, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// audIs reports whether a JWT aud claim (a string or an array) is exactly
// want.
func audIs(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		return len(a) == 1 && a[0] == want
	}
	return false
}

// interopDir returns the absolute path of interop/, failing with the fix
// when Node.js or any of the named npm packages is missing.
func interopDir(t *testing.T, pkgs ...string) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: install Node.js 20 or later, then run ./scripts/test (npm ci in interop/)")
	}
	dir, err := filepath.Abs(filepath.Join("..", "interop"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", p, "package.json")); err != nil {
			t.Fatalf("npm package %s is not installed (%v): run ./scripts/test (npm ci in interop/)", p, err)
		}
	}
	return dir
}

// startOIDCProvider runs interop/op.mjs and returns its issuer URL. The
// script exits when its stdin closes, at cleanup.
func startOIDCProvider(t *testing.T, interop string) string {
	t.Helper()
	cmd := exec.Command("node", filepath.Join(interop, "op.mjs"), "mcp:tools")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start op.mjs: %v", err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Error("op.mjs did not exit when its stdin closed")
		}
		if testing.Verbose() || t.Failed() {
			t.Logf("op.mjs stderr:\n%s", tail(logs.String(), 4000))
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			ready <- sc.Text()
		}
		close(ready)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-ready:
		var r struct {
			Issuer string `json:"issuer"`
		}
		if !ok || json.Unmarshal([]byte(line), &r) != nil || !strings.HasPrefix(r.Issuer, "http://127.0.0.1:") {
			t.Fatalf("op.mjs did not report its issuer (got %q)\nstderr:\n%s", line, tail(logs.String(), 2000))
		}
		return r.Issuer
	case <-time.After(30 * time.Second):
		t.Fatalf("op.mjs not ready after 30s\nstderr:\n%s", tail(logs.String(), 2000))
	}
	return ""
}

// syncBuffer is a strings.Builder safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
