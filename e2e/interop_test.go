package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
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
		Protocol    string   `json:"protocol_version"`
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
	if res.Protocol != "2025-11-25" {
		t.Errorf("negotiated protocol version = %q, want 2025-11-25 (the newest TS SDK 1.32.2 speaks)", res.Protocol)
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
	return registerClient(t, issuer, "mcp:tools")
}

// registerClient registers a confidential client_credentials client
// allowed scope at oidc-provider by dynamic client registration.
func registerClient(t *testing.T, issuer, scope string) ccClient {
	t.Helper()
	meta, _ := json.Marshal(map[string]any{
		"grant_types": []string{"client_credentials"}, "response_types": []string{}, "redirect_uris": []string{},
		"token_endpoint_auth_method": "client_secret_basic", "scope": scope,
	})
	resp, err := http.Post(issuer+"/reg", "application/json", strings.NewReader(string(meta)))
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
	status, _ := initialize(t, endpoint, tok)
	return status
}

// initialize sends an MCP initialize request with tok and returns the HTTP
// status and the WWW-Authenticate challenge.
func initialize(t *testing.T, endpoint, tok string) (int, string) {
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
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
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

// startOIDCProvider runs interop/op.mjs with args (flags and scopes, default
// the scope mcp:tools) and returns its issuer URL. The script exits when its
// stdin closes, at cleanup.
func startOIDCProvider(t *testing.T, interop string, args ...string) string {
	t.Helper()
	if len(args) == 0 {
		args = []string{"mcp:tools"}
	}
	cmd := exec.Command("node", append([]string{filepath.Join(interop, "op.mjs")}, args...)...)
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

// TestInteropTypeScriptClientCredentials: a service using the MCP
// TypeScript SDK's ClientCredentialsProvider (interop/ts-cc-client.mjs),
// registered at oidc-provider for client_credentials with the scope
// mcp:system, gets a 401 from a route that requires mcp:system, discovers
// the metadata, obtains a token for the route's resource and calls a tool
// through mcpgate. A service without mcp:system gets 403 at the same route.
func TestInteropTypeScriptClientCredentials(t *testing.T) {
	interop := interopDir(t, "oidc-provider", "@modelcontextprotocol/sdk")
	issuer := startOIDCProvider(t, interop, "mcp:tools", "mcp:system")
	upstream := interopUpstream(t)
	gwL := listen(t)
	endpoint := "http://" + gwL.Addr().String() + "/servers/system/mcp"
	startGatewayOn(t, gwL, "http", func(base string) *config.Config {
		return interopConfig(base, config.AuthorizationServer{Issuer: issuer, Algorithms: []string{"ES256"}},
			interopRoute("system", upstream, []string{"mcp:system"}, nil))
	})

	svc := registerClient(t, issuer, "mcp:system")
	var res struct {
		First401      bool     `json:"first_401"`
		Tools         []string `json:"tools"`
		Echo          string   `json:"echo"`
		TokenAud      any      `json:"token_aud"`
		TokenScope    string   `json:"token_scope"`
		TokenClientID string   `json:"token_client_id"`
		TokenRequests []struct {
			GrantType string `json:"grant_type"`
			Scope     string `json:"scope"`
			Resource  string `json:"resource"`
		} `json:"token_requests"`
	}
	runNode(t, interop, []string{"MCP_CLIENT_ID=" + svc.id, "MCP_CLIENT_SECRET=" + svc.secret, "MCP_ISSUER=" + issuer, "MCP_SCOPE=mcp:system"},
		&res, "ts-cc-client.mjs", endpoint)
	if !res.First401 {
		t.Error("the service connected without a token: mcpgate did not challenge it")
	}
	if want := "echo: hello from service"; res.Echo != want {
		t.Errorf("echo result = %q, want %q", res.Echo, want)
	}
	if !audIs(res.TokenAud, endpoint) || res.TokenClientID != svc.id || !hasScope(res.TokenScope, "mcp:system") {
		t.Errorf("access token aud %v client_id %q scope %q: want aud %s, client_id %s, scope mcp:system", res.TokenAud, res.TokenClientID, res.TokenScope, endpoint, svc.id)
	}
	if len(res.TokenRequests) != 1 || res.TokenRequests[0].GrantType != "client_credentials" || res.TokenRequests[0].Resource != endpoint {
		t.Errorf("token requests %+v: want one client_credentials request with resource %s", res.TokenRequests, endpoint)
	}

	// The negative: a service whose token lacks mcp:system.
	other := registerClient(t, issuer, "mcp:tools")
	status, challenge := initialize(t, endpoint, other.token(t, endpoint, "mcp:tools"))
	if status != http.StatusForbidden || !strings.Contains(challenge, `error="insufficient_scope"`) || !strings.Contains(challenge, "mcp:system") {
		t.Errorf("token without mcp:system: HTTP %d %q, want 403 insufficient_scope naming mcp:system", status, challenge)
	}
}

// TestInteropTokenForAnotherRoute: an oidc-provider token audience-restricted
// to route a works at a and is refused at route b with 401 invalid_token.
func TestInteropTokenForAnotherRoute(t *testing.T) {
	interop := interopDir(t, "oidc-provider")
	issuer := startOIDCProvider(t, interop)
	upstream := interopUpstream(t)
	gwL := listen(t)
	base := "http://" + gwL.Addr().String()
	startGatewayOn(t, gwL, "http", func(base string) *config.Config {
		return interopConfig(base, config.AuthorizationServer{Issuer: issuer, Algorithms: []string{"ES256"}},
			interopRoute("a", upstream, []string{"mcp:tools"}, nil), interopRoute("b", upstream, []string{"mcp:tools"}, nil))
	})
	a, b := base+"/servers/a/mcp", base+"/servers/b/mcp"
	tok := registerCCClient(t, issuer).token(t, a, "mcp:tools")
	if status, ch := initialize(t, a, tok); status != http.StatusOK {
		t.Fatalf("route a with its own token: HTTP %d %q, want 200", status, ch)
	}
	status, ch := initialize(t, b, tok)
	if status != http.StatusUnauthorized || !strings.Contains(ch, `error="invalid_token"`) || !strings.Contains(ch, "/servers/b/mcp") {
		t.Errorf("route b with route a's token: HTTP %d %q, want 401 invalid_token with route b's resource_metadata", status, ch)
	}
}

// TestInteropExpiredToken: oidc-provider issues access tokens that live 2s;
// mcpgate (clock skew 1s) accepts one at once and refuses it with 401
// invalid_token once it has expired, never before its exp.
func TestInteropExpiredToken(t *testing.T) {
	interop := interopDir(t, "oidc-provider")
	issuer := startOIDCProvider(t, interop, "--access-token-ttl=2", "mcp:tools")
	upstream := interopUpstream(t)
	gwL := listen(t)
	endpoint := "http://" + gwL.Addr().String() + "/servers/echo/mcp"
	startGatewayOn(t, gwL, "http", func(base string) *config.Config {
		return interopConfig(base, config.AuthorizationServer{Issuer: issuer, Algorithms: []string{"ES256"}, ClockSkew: config.Duration(time.Second)},
			interopRoute("echo", upstream, []string{"mcp:tools"}, nil))
	})
	tok := registerCCClient(t, issuer).token(t, endpoint, "mcp:tools")
	var iat, exp int64
	if json.Unmarshal(claim(t, tok, "iat"), &iat) != nil || json.Unmarshal(claim(t, tok, "exp"), &exp) != nil || exp-iat != 2 {
		t.Fatalf("token iat %d exp %d: want a 2s lifetime (op.mjs --access-token-ttl)", iat, exp)
	}
	if status, ch := initialize(t, endpoint, tok); status != http.StatusOK {
		t.Fatalf("fresh token: HTTP %d %q, want 200", status, ch)
	}
	status, ch := pollUntilRefused(t, endpoint, tok, 20*time.Second)
	refusedAt := time.Now().Unix()
	if status != http.StatusUnauthorized || !strings.Contains(ch, `error="invalid_token"`) {
		t.Errorf("expired token: HTTP %d %q, want 401 invalid_token", status, ch)
	}
	if refusedAt < exp {
		t.Errorf("token refused at %d, before its exp %d", refusedAt, exp)
	}
}

// TestInteropRevokedTokenIntrospection: mcpgate validates oidc-provider's
// opaque access tokens by introspection (as a confidential client registered
// at oidc-provider, cache_ttl 1s). A user's token from authorization code +
// PKCE works; once the client revokes it at oidc-provider (RFC 7009) it is
// refused with 401 invalid_token.
func TestInteropRevokedTokenIntrospection(t *testing.T) {
	interop := interopDir(t, "oidc-provider")
	upstream := interopUpstream(t)
	gwL := listen(t)
	endpoint := "http://" + gwL.Addr().String() + "/servers/echo/mcp"
	issuer := startOIDCProvider(t, interop, "--opaque-resource="+endpoint, "mcp:tools")
	introspector := registerClient(t, issuer, "mcp:tools")
	secretFile := filepath.Join(t.TempDir(), "introspection-secret")
	if err := os.WriteFile(secretFile, []byte(introspector.secret), 0o600); err != nil {
		t.Fatal(err)
	}
	startGatewayOn(t, gwL, "http", func(base string) *config.Config {
		return interopConfig(base, config.AuthorizationServer{
			Issuer: issuer, Algorithms: []string{"ES256"},
			Introspection: &config.Introspection{ClientID: introspector.id, ClientSecretFile: secretFile, CacheTTL: config.Duration(time.Second)},
		}, interopRoute("echo", upstream, []string{"mcp:tools"}, nil))
	})

	tok, clientID := userToken(t, issuer, endpoint, "mcp:tools")
	if strings.Count(tok, ".") == 2 {
		t.Fatal("oidc-provider issued a JWT for the opaque resource: the test would not exercise introspection")
	}
	if status, ch := initialize(t, endpoint, tok); status != http.StatusOK {
		t.Fatalf("opaque token before revocation: HTTP %d %q, want 200", status, ch)
	}

	form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}, "client_id": {clientID}}
	resp, err := http.PostForm(issuer+"/token/revocation", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation at oidc-provider: HTTP %d", resp.StatusCode)
	}
	status, ch := pollUntilRefused(t, endpoint, tok, 20*time.Second)
	if status != http.StatusUnauthorized || !strings.Contains(ch, `error="invalid_token"`) {
		t.Errorf("revoked token: HTTP %d %q, want 401 invalid_token", status, ch)
	}
}

// TestInteropTypeScriptClientStepUp: the MCP TypeScript SDK's client
// (interop/ts-client.mjs --step-up=admin) authorizes with mcp:tools, calls
// the tool admin that needs mcp:admin too, gets 403 insufficient_scope with
// the scopes to ask for in WWW-Authenticate, re-authorizes at oidc-provider
// with them and calls admin successfully.
func TestInteropTypeScriptClientStepUp(t *testing.T) {
	interop := interopDir(t, "oidc-provider", "@modelcontextprotocol/sdk")
	issuer := startOIDCProvider(t, interop, "mcp:tools", "mcp:admin")
	upstream := interopUpstream(t)
	gwL := listen(t)
	endpoint := "http://" + gwL.Addr().String() + "/servers/echo/mcp"
	startGatewayOn(t, gwL, "http", func(base string) *config.Config {
		return interopConfig(base, config.AuthorizationServer{Issuer: issuer, Algorithms: []string{"ES256"}},
			interopRoute("echo", upstream, []string{"mcp:tools"}, map[string]config.ItemRule{"admin": {Scopes: []string{"mcp:admin"}}}))
	})
	type authRequest struct {
		Resource string `json:"resource"`
		Scope    string `json:"scope"`
	}
	var res struct {
		Echo        string      `json:"echo"`
		TokenScope  string      `json:"token_scope"`
		AuthRequest authRequest `json:"auth_request"`
		StepUp      *struct {
			RefusedStatus int         `json:"refused_status"`
			Challenge     string      `json:"challenge"`
			SDKError      string      `json:"sdk_error"`
			SDKAuth       authRequest `json:"sdk_auth_request"`
			Reregistered  bool        `json:"reregistered"`
			Registrations []*string   `json:"registrations"`
			AuthRequest   authRequest `json:"auth_request"`
			IsError       bool        `json:"is_error"`
			Result        string      `json:"result"`
			TokenScope    string      `json:"token_scope"`
		} `json:"step_up"`
	}
	runNode(t, interop, nil, &res, "ts-client.mjs", endpoint, "--step-up=admin")
	if res.Echo != "echo: hello from ts" || hasScope(res.TokenScope, "mcp:admin") || hasScope(res.AuthRequest.Scope, "mcp:admin") {
		t.Errorf("first authorization: echo %q, requested scope %q, token scope %q; want echo to work without mcp:admin", res.Echo, res.AuthRequest.Scope, res.TokenScope)
	}
	su := res.StepUp
	if su == nil {
		t.Fatal("ts-client.mjs reported no step-up")
	}
	if su.RefusedStatus != http.StatusForbidden || !strings.Contains(su.Challenge, `error="insufficient_scope"`) || !strings.Contains(su.Challenge, "mcp:admin") {
		t.Errorf("admin without mcp:admin: HTTP %d %q, want 403 insufficient_scope naming mcp:admin", su.RefusedStatus, su.Challenge)
	}
	// The SDK itself parses the 403 challenge and starts an authorization
	// with its scope.
	if !hasScope(su.SDKAuth.Scope, "mcp:admin") || !hasScope(su.SDKAuth.Scope, "mcp:tools") {
		t.Errorf("authorization the SDK started on the 403: %+v, want scope mcp:tools mcp:admin", su.SDKAuth)
	}
	if !hasScope(su.AuthRequest.Scope, "mcp:admin") || !hasScope(su.AuthRequest.Scope, "mcp:tools") || su.AuthRequest.Resource != endpoint {
		t.Errorf("step-up authorization request %+v: want scope mcp:tools mcp:admin, resource %s", su.AuthRequest, endpoint)
	}
	if su.IsError || su.Result != "admin: ok" || !hasScope(su.TokenScope, "mcp:admin") {
		t.Errorf("admin after step-up: error %v result %q token scope %q; want admin: ok with mcp:admin", su.IsError, su.Result, su.TokenScope)
	}
	// SDK 1.32.2 registered with the first challenge's scope only, which
	// oidc-provider enforces: ts-client.mjs then registered again.
	t.Logf("SDK error on the 403: %s; re-registered: %v; registration scopes: %v", su.SDKError, su.Reregistered, derefAll(su.Registrations))
}

// TestInteropGoClientProtocolVersions: go-sdk's client, with an
// oidc-provider client_credentials JWT as a static bearer token, negotiates
// each MCP protocol version mcpgate supports with a go-sdk server through
// mcpgate and calls a tool; a token for another resource is refused.
func TestInteropGoClientProtocolVersions(t *testing.T) {
	interop := interopDir(t, "oidc-provider")
	issuer := startOIDCProvider(t, interop)
	gwL := listen(t)
	base := "http://" + gwL.Addr().String()
	startGatewayOn(t, gwL, "http", func(base string) *config.Config {
		return interopConfig(base, config.AuthorizationServer{Issuer: issuer, Algorithms: []string{"ES256"}},
			interopRoute("echo", interopUpstream(t), []string{"mcp:tools"}, nil),
			interopRoute("stateless", interopUpstreamOpts(t, &mcp.StreamableHTTPOptions{Stateless: true}), []string{"mcp:tools"}, nil))
	})
	svc := registerCCClient(t, issuer)
	for _, tc := range []struct{ version, route string }{
		{"2025-06-18", "echo"}, {"2025-11-25", "echo"}, {"2026-07-28", "stateless"},
	} {
		v, endpoint := tc.version, base+"/servers/"+tc.route+"/mcp"
		tok := svc.token(t, endpoint, "mcp:tools")
		t.Run(v, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := mcp.NewClient(&mcp.Implementation{Name: "interop-go", Version: "1"}, nil)
			cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{
				Endpoint: endpoint, MaxRetries: -1, DisableStandaloneSSE: true,
				HTTPClient: &http.Client{Transport: bearerTransport{token: tok, base: http.DefaultTransport}},
			}, &mcp.ClientSessionOptions{ProtocolVersion: v})
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer cs.Close()
			if got := cs.InitializeResult().ProtocolVersion; got != v {
				t.Errorf("negotiated protocol version %q, want %q", got, v)
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": v}})
			if err != nil || res.IsError || len(res.Content) != 1 {
				t.Fatalf("tools/call echo: %v %+v", err, res)
			}
			if tc, ok := res.Content[0].(*mcp.TextContent); !ok || tc.Text != "echo: "+v {
				t.Errorf("echo result %+v, want echo: %s", res.Content[0], v)
			}
			// The negative, on this version: a token for another resource.
			other := svc.token(t, "http://127.0.0.1:1/other/mcp", "mcp:tools")
			c2 := mcp.NewClient(&mcp.Implementation{Name: "interop-go", Version: "1"}, nil)
			if cs2, err := c2.Connect(ctx, &mcp.StreamableClientTransport{
				Endpoint: endpoint, MaxRetries: -1, DisableStandaloneSSE: true,
				HTTPClient: &http.Client{Transport: bearerTransport{token: other, base: http.DefaultTransport}},
			}, &mcp.ClientSessionOptions{ProtocolVersion: v}); err == nil {
				cs2.Close()
				t.Error("connect with a token for another resource succeeded")
			}
		})
	}
}

// interopUpstream runs a go-sdk MCP server with the tools echo and admin and
// returns its URL.
func interopUpstream(t *testing.T) string {
	t.Helper()
	return interopUpstreamOpts(t, nil)
}

// interopUpstreamOpts is interopUpstream with handler options (Stateless
// for 2026-07-28, which go-sdk serves only without sessions).
func interopUpstreamOpts(t *testing.T, opts *mcp.StreamableHTTPOptions) string {
	t.Helper()
	up := mcp.NewServer(&mcp.Implementation{Name: "echo", Version: "1"}, nil)
	type echoIn struct {
		Text string `json:"text"`
	}
	mcp.AddTool(up, &mcp.Tool{Name: "echo", Description: "echoes text"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "echo: " + in.Text}}}, nil, nil
	})
	mcp.AddTool(up, &mcp.Tool{Name: "admin", Description: "an administrative action"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "admin: ok"}}}, nil, nil
	})
	l := listen(t)
	srv := &http.Server{Handler: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, opts)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String() + "/mcp"
}

// interopRoute is a route /servers/<name>/mcp to upstream allowing echo
// and the extra tools.
func interopRoute(name, upstream string, scopes []string, extra map[string]config.ItemRule) config.Route {
	tools := map[string]config.ItemRule{"echo": {}}
	for k, v := range extra {
		tools[k] = v
	}
	return config.Route{
		Name: name, Path: "/servers/" + name + "/mcp",
		Upstream:       config.Upstream{URL: upstream},
		RequiredScopes: scopes,
		Tools:          tools,
	}
}

func interopConfig(base string, as config.AuthorizationServer, routes ...config.Route) *config.Config {
	return &config.Config{
		Server:               config.Server{PublicBaseURL: base},
		AuthorizationServers: []config.AuthorizationServer{as},
		Routes:               routes,
		Limits:               config.Limits{RatePerIP: config.Rate{RequestsPerSecond: -1}},
		Development:          config.Development{InsecureAllowHTTPLoopback: true},
	}
}

// runNode runs an interop/ script with extra environment and decodes the
// JSON line it prints last into out, failing unless it reports ok.
func runNode(t *testing.T, interop string, env []string, out any, script string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{filepath.Join(interop, script)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	line := lastLine(string(stdout))
	var res struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if jerr := json.Unmarshal([]byte(line), &res); jerr != nil || err != nil || !res.OK {
		t.Fatalf("%s: exit %v, result %q (%v)\nerror: %s\nstderr:\n%s", script, err, line, jerr, res.Error, tail(stderr.String(), 2000))
	}
	if err := json.Unmarshal([]byte(line), out); err != nil {
		t.Fatalf("%s: result %q: %v", script, line, err)
	}
	t.Logf("%s: %s", script, line)
}

// pollUntilRefused repeats initialize with tok until mcpgate stops
// accepting it, and returns that answer; it fails after limit.
func pollUntilRefused(t *testing.T, endpoint, tok string, limit time.Duration) (int, string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		status, ch := initialize(t, endpoint, tok)
		if status != http.StatusOK {
			return status, ch
		}
		if time.Now().After(deadline) {
			t.Fatalf("token still accepted after %s", limit)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// userToken runs authorization code + PKCE (S256) at oidc-provider for a
// dynamically registered public client, following its test-only automatic
// login and consent with a cookie jar, and returns the access token for
// resource and the client id.
func userToken(t *testing.T, issuer, resource, scope string) (string, string) {
	t.Helper()
	const redirect = "http://127.0.0.1:1/callback" // never fetched
	reg := `{"redirect_uris":["` + redirect + `"],"grant_types":["authorization_code"],"response_types":["code"],"token_endpoint_auth_method":"none"}`
	resp, err := http.Post(issuer+"/reg", "application/json", strings.NewReader(reg))
	if err != nil {
		t.Fatal(err)
	}
	var client struct {
		ID string `json:"client_id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&client)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated || client.ID == "" {
		t.Fatalf("dynamic registration of a public client: HTTP %d %v", resp.StatusCode, err)
	}

	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id": {client.ID}, "response_type": {"code"}, "redirect_uri": {redirect}, "scope": {scope},
		"resource": {resource}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	jar, _ := cookiejar.New(nil)
	var code string
	browser := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), redirect) {
			code = req.URL.Query().Get("code")
			return http.ErrUseLastResponse
		}
		if len(via) > 20 {
			return errors.New("too many redirects")
		}
		return nil
	}}
	resp, err = browser.Get(issuer + "/auth?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
	resp.Body.Close()
	if code == "" {
		t.Fatalf("authorization ended without a code: HTTP %d %s", resp.StatusCode, body)
	}

	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}, "client_id": {client.ID}, "resource": {resource}}
	resp, err = http.PostForm(issuer+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		t.Fatalf("authorization code token request: HTTP %d %v", resp.StatusCode, err)
	}
	return out.AccessToken, client.ID
}

func hasScope(scopes, s string) bool {
	return strings.Contains(" "+scopes+" ", " "+s+" ")
}

func derefAll(ps []*string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		if p != nil {
			out[i] = *p
		}
	}
	return out
}
