package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/testissuer"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The helpers below back the identity-provider guides in docs/idp: each
// guide's mcpgate YAML is run verbatim (placeholders replaced) and tokens
// shaped as that provider issues them are sent through it.

const (
	configStart = "<!-- mcpgate-config -->"
	configEnd   = "<!-- /mcpgate-config -->"
)

// guideYAML returns the YAML block between the config markers of
// docs/idp/<file>, with each placeholder of repl (old, new pairs) replaced
// by plain string replacement. It fails if the block is missing, appears
// twice, or still contains a YOUR-… placeholder afterwards.
func guideYAML(t *testing.T, file string, repl ...string) string {
	t.Helper()
	if len(repl)%2 != 0 {
		t.Fatal("guideYAML: replacements come in pairs")
	}
	b, err := os.ReadFile(filepath.Join("..", "docs", "idp", file))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	if strings.Count(doc, configStart) != 1 || strings.Count(doc, configEnd) != 1 {
		t.Fatalf("%s: want exactly one %s … %s block", file, configStart, configEnd)
	}
	_, block, _ := strings.Cut(doc, configStart)
	block, _, _ = strings.Cut(block, configEnd)
	_, y, ok := strings.Cut(block, "```yaml\n")
	if !ok {
		t.Fatalf("%s: the config block has no ```yaml fence", file)
	}
	y, _, ok = strings.Cut(y, "```")
	if !ok {
		t.Fatalf("%s: the config block's fence is not closed", file)
	}
	for i := 0; i < len(repl); i += 2 {
		if !strings.Contains(y, repl[i]) {
			t.Fatalf("%s: placeholder %q does not occur in the guide's YAML", file, repl[i])
		}
		y = strings.ReplaceAll(y, repl[i], repl[i+1])
	}
	if i := strings.Index(y, "YOUR-"); i >= 0 {
		t.Fatalf("%s: placeholder left unreplaced near %q", file, y[i:min(len(y), i+40)])
	}
	return y
}

// guideConfig decodes the guide's YAML strictly, adding only
// development.insecure_allow_http_loopback (the test issuers speak http).
func guideConfig(t *testing.T, file string, repl ...string) *config.Config {
	t.Helper()
	y := guideYAML(t, file, repl...) + "\ndevelopment:\n  insecure_allow_http_loopback: true\n"
	cfg, err := config.Decode([]byte(y))
	if err != nil {
		t.Fatalf("%s: config.Decode: %v\n%s", file, err, y)
	}
	return cfg
}

// auditRecorder is an audit.Sink that keeps every event and lets a test
// wait for one.
type auditRecorder struct {
	mu     sync.Mutex // guards events and notify
	events []audit.Event
	notify chan struct{} // closed and replaced on every write
}

func newAuditRecorder() *auditRecorder { return &auditRecorder{notify: make(chan struct{})} }

func (a *auditRecorder) Write(_ context.Context, e *audit.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, *e)
	close(a.notify)
	a.notify = make(chan struct{})
	return nil
}

func (a *auditRecorder) Close() error { return nil }

// wait returns the first decision record matching match, waiting up to 10 s.
func (a *auditRecorder) wait(t *testing.T, what string, match func(*audit.Event) bool) audit.Event {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		a.mu.Lock()
		for i := range a.events {
			if e := &a.events[i]; e.Kind == audit.KindDecision && match(e) {
				a.mu.Unlock()
				return *e
			}
		}
		ch := a.notify
		a.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no audit decision record for %s", what)
		}
	}
}

// startIdPGateway runs mcpgate like startGateway, recording audit events.
func startIdPGateway(t *testing.T, build func(base string) *config.Config) (string, *auditRecorder) {
	t.Helper()
	rec := newAuditRecorder()
	base := startGatewayAudited(t, listen(t), "http", rec, build)
	return base, rec
}

// idpUpstreamTools are the tools of the upstream behind every guide's
// routes; each route's policy shows only some of them.
var idpUpstreamTools = []string{"search", "update_document", "send_message", "admin_reset"}

// startIdPUpstream serves a go-sdk MCP server offering idpUpstreamTools.
func startIdPUpstream(t *testing.T) string {
	t.Helper()
	srv := mcp.NewServer(&mcp.Implementation{Name: "idp-upstream", Version: "1"}, nil)
	for _, name := range idpUpstreamTools {
		mcp.AddTool(srv, &mcp.Tool{Name: name}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok " + name}}}, nil, nil
		})
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	up := httptest.NewServer(h)
	t.Cleanup(up.Close)
	return up.URL + "/mcp"
}

// slashIssuer serves discovery for the issuer identifier "http://host/"
// (Auth0's form, with its trailing slash), publishing iss's keys; tokens
// for it are minted by iss with iss claim set to the returned value.
// testissuer itself trims a trailing slash from its path.
func slashIssuer(t *testing.T, iss *testissuer.Issuer) string {
	t.Helper()
	var url string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": url, "jwks_uri": iss.JWKSURL(),
			"authorization_endpoint": url + "authorize", "token_endpoint": url + "oauth/token",
			"response_types_supported": []string{"code"}, "code_challenge_methods_supported": []string{"S256"},
		})
	}))
	url = "http://" + srv.Listener.Addr().String() + "/" // before Start: no race with the handler
	srv.Start()
	t.Cleanup(srv.Close)
	return url
}

// header selects a minted token's JOSE header: typ "" omits it; raw, when
// set, is used verbatim (Keycloak's spaced JSON).
type header struct {
	typ   string
	extra map[string]any
	raw   string
}

// shaped mints a token whose claims are exactly claims (no defaults added)
// with the header h, signed by iss with RS256.
func shaped(t *testing.T, iss *testissuer.Issuer, h header, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	opts := []testissuer.MintOption{testissuer.WithRawClaims(b)}
	switch {
	case h.raw != "":
		opts = append(opts, testissuer.WithRawHeader([]byte(strings.ReplaceAll(h.raw, "KID", iss.KID("RS256")))))
	case h.typ == "":
		opts = append(opts, testissuer.WithoutType())
	default:
		opts = append(opts, testissuer.WithType(h.typ))
	}
	for k, v := range h.extra {
		opts = append(opts, testissuer.WithHeader(k, v))
	}
	return iss.Mint(testissuer.Claims{}, opts...)
}

// hs512 returns an HS512 JWS over claims, keyed with a random secret: the
// shape of a Keycloak refresh token.
func hs512(t *testing.T, hdr string, claims map[string]any) string {
	t.Helper()
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	input := enc([]byte(hdr)) + "." + enc(c)
	key := make([]byte, 64)
	_, _ = rand.Read(key)
	m := hmac.New(sha512.New, key)
	m.Write([]byte(input))
	return input + "." + enc(m.Sum(nil))
}

// times returns iat and exp for a token issued now, valid for an hour.
func times() (iat, exp int64) {
	now := time.Now().Unix()
	return now, now + 3600
}

func fingerprint16(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:8])
}

// idpCheck is one token sent to one route of a guide's configuration.
type idpCheck struct {
	name  string
	route string // route path
	token string

	// Accepted: the MCP session opens, tools/list shows tools, call succeeds,
	// and the audit record names client and scopes.
	accept      bool
	wantSubject string
	wantClient  string
	wantScopes  []string
	wantTools   []string
	call        string

	// Refused at initialize with status and the audit reason.
	status int
	reason string

	// Step-up: the session opens but calling stepUp needs stepUpScope.
	stepUp      string
	stepUpScope string
}

func runIdPChecks(t *testing.T, base string, rec *auditRecorder, checks []idpCheck) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			endpoint := base + c.route
			switch {
			case c.accept:
				checkAccepted(t, endpoint, rec, c)
			case c.stepUp != "":
				checkStepUp(t, endpoint, rec, c)
			default:
				checkRefused(t, endpoint, rec, c)
			}
		})
	}
}

func checkAccepted(t *testing.T, endpoint string, rec *auditRecorder, c idpCheck) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, _ := connectIdP(ctx, t, endpoint, c.token)
	defer cs.Close()
	lt, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tl := range lt.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, c.wantTools) {
		t.Errorf("tools/list = %v, want %v", names, c.wantTools)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: c.call, Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("tools/call %s: %v %+v", c.call, err, res)
	}
	fp := fingerprint16(c.token)
	ev := rec.wait(t, "tools/call "+c.call, func(e *audit.Event) bool {
		return e.Token == fp && e.Method == "tools/call" && e.Tool == c.call
	})
	if ev.Decision != audit.Allow || ev.Subject != c.wantSubject || ev.ClientID != c.wantClient || !slices.Equal(ev.Scopes, c.wantScopes) {
		t.Errorf("audit: decision %q subject %q client %q scopes %v; want allow, %q, %q, %v",
			ev.Decision, ev.Subject, ev.ClientID, ev.Scopes, c.wantSubject, c.wantClient, c.wantScopes)
	}
}

func checkStepUp(t *testing.T, endpoint string, rec *auditRecorder, c idpCheck) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, rt := connectIdP(ctx, t, endpoint, c.token)
	defer cs.Close()
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: c.stepUp, Arguments: map[string]any{}}); err == nil {
		t.Fatalf("tools/call %s succeeded without %s", c.stepUp, c.stepUpScope)
	}
	last := rt.last()
	if last.status != http.StatusForbidden || !strings.Contains(last.challenge, `error="insufficient_scope"`) ||
		!strings.Contains(last.challenge, c.stepUpScope) {
		t.Errorf("tools/call %s: %d %q, want 403 insufficient_scope naming %s", c.stepUp, last.status, last.challenge, c.stepUpScope)
	}
	ev := rec.wait(t, "request "+last.requestID, func(e *audit.Event) bool { return e.RequestID == last.requestID })
	if ev.Decision != audit.StepUp || !slices.Contains(ev.RequiredScopes, c.stepUpScope) {
		t.Errorf("audit: decision %q required %v, want step_up with %s", ev.Decision, ev.RequiredScopes, c.stepUpScope)
	}
}

func checkRefused(t *testing.T, endpoint string, rec *auditRecorder, c idpCheck) {
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"idp-test","version":"1"}}}`
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	ch := resp.Header.Get("WWW-Authenticate")
	wantErr := `error="invalid_token"`
	if c.status == http.StatusForbidden {
		wantErr = `error="insufficient_scope"`
	}
	if resp.StatusCode != c.status || !strings.Contains(ch, wantErr) || !strings.Contains(ch, "resource_metadata=") {
		t.Errorf("initialize: %d %q, want %d with %s and resource_metadata", resp.StatusCode, ch, c.status, wantErr)
	}
	id := resp.Header.Get("X-Request-Id")
	ev := rec.wait(t, "request "+id, func(e *audit.Event) bool { return e.RequestID == id })
	if ev.Reason != c.reason {
		t.Errorf("audit reason %q, want %q", ev.Reason, c.reason)
	}
	if ev.Token != "" && ev.Token != fingerprint16(c.token) || strings.Contains(ev.Token, ".") {
		t.Errorf("audit token field %q is not the token's fingerprint", ev.Token)
	}
}

// connectIdP opens a go-sdk client session carrying token.
func connectIdP(ctx context.Context, t *testing.T, endpoint, token string) (*mcp.ClientSession, *recordingTransport) {
	t.Helper()
	rt := &recordingTransport{base: bearerTransport{token: token, base: http.DefaultTransport}}
	c := mcp.NewClient(&mcp.Implementation{Name: "idp-agent", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: endpoint, MaxRetries: -1, DisableStandaloneSSE: true,
		HTTPClient: &http.Client{Transport: rt},
	}, nil)
	if err != nil {
		t.Fatalf("connect: %v (last response %+v)", err, rt.last())
	}
	return cs, rt
}

// recordingTransport remembers the status, challenge and request id of
// the last POST response.
type recordingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex // guards resp
	resp recorded
}

type recorded struct {
	status               int
	challenge, requestID string
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err == nil && req.Method == http.MethodPost {
		r.mu.Lock()
		r.resp = recorded{resp.StatusCode, resp.Header.Get("WWW-Authenticate"), resp.Header.Get("X-Request-Id")}
		r.mu.Unlock()
	}
	return resp, err
}

func (r *recordingTransport) last() recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resp
}
