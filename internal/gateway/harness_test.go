package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/testissuer"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// harness is a gateway in front of go-sdk MCP upstreams, with a test
// issuer, an in-memory audit sink, captured logs and a record of what every
// upstream received.
type harness struct {
	t     *testing.T
	iss   *testissuer.Issuer
	gw    *Gateway
	srv   *httptest.Server
	audit *memSink
	logs  *syncBuffer
	up    map[string]*upstreamServer
	// seq orders audit writes against upstream arrivals (see
	// recordedRequest.Seq and memSink.seqs).
	seq *atomic.Int64
}

type harnessOptions struct {
	// configure edits the configuration before the gateway is built.
	configure func(*config.Config)
	// setup runs after configure, with the harness (its issuer) at hand.
	setup func(*harness, *config.Config)
	// stateless runs the upstreams in stateless mode.
	stateless bool
	// jsonResponse makes the upstreams answer with JSON instead of SSE.
	jsonResponse bool
	// auditSink overrides the in-memory sink.
	auditSink audit.Sink
	// pageSize sets the upstreams' list page size (go-sdk default 1000).
	pageSize int
	// now replaces the gateway's clock.
	now func() time.Time
	// wrapUpstream wraps each upstream's MCP handler (misbehaving
	// upstreams); route is "docs" or "mail".
	wrapUpstream func(route string, next http.Handler) http.Handler
}

// upstreamServer is a go-sdk MCP server behind an httptest server that
// records every request it receives.
type upstreamServer struct {
	srv *httptest.Server
	mcp *mcp.Server

	mu   sync.Mutex // guards reqs
	reqs []recordedRequest
}

type recordedRequest struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
	Seq    int64 // harness-wide order of arrival (see harness.seq)
}

// count is the number of requests received so far.
func (u *upstreamServer) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

func (u *upstreamServer) requests() []recordedRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recordedRequest(nil), u.reqs...)
}

func newUpstream(t *testing.T, name string, opts harnessOptions, seq *atomic.Int64) *upstreamServer {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: name, Version: "1.0.0"}, &mcp.ServerOptions{PageSize: opts.pageSize})
	addTestTools(s)
	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{Stateless: opts.stateless, JSONResponse: opts.jsonResponse})
	if opts.wrapUpstream != nil {
		h = opts.wrapUpstream(name, h)
	}
	u := &upstreamServer{mcp: s}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil {
			body, _ = readAllRestore(r)
		}
		u.mu.Lock()
		u.reqs = append(u.reqs, recordedRequest{Method: r.Method, URL: r.URL.String(), Header: r.Header.Clone(), Body: body, Seq: seq.Add(1)})
		u.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

type echoArgs struct {
	Text string `json:"text"`
}

type docArgs struct {
	Project string `json:"project"`
}

func addTestTools(s *mcp.Server) {
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	mcp.AddTool(s, &mcp.Tool{Name: "search", Description: "search documents"},
		func(ctx context.Context, req *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
			return text("results for " + a.Text), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "read_document", Description: "read a project's document"},
		func(ctx context.Context, req *mcp.CallToolRequest, a docArgs) (*mcp.CallToolResult, any, error) {
			return text("document of " + a.Project), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "update_document", Description: "write"},
		func(ctx context.Context, req *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
			return text("updated"), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "delete_everything", Description: "never allowed"},
		func(ctx context.Context, req *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
			return text("deleted"), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "unlisted", Description: "not in the gateway config"},
		func(ctx context.Context, req *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
			return text("unlisted ran"), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "echoes the request headers it got"},
		func(ctx context.Context, req *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
			var b strings.Builder
			for k, v := range req.Extra.Header {
				fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(v, ","))
			}
			return text(b.String()), nil, nil
		})
	addSamplingTool(s)
	mcp.AddTool(s, &mcp.Tool{Name: "ask", Description: "asks the user (elicitation)"},
		func(ctx context.Context, req *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: a.Text, RequestedSchema: map[string]any{
				"type": "object", "properties": map[string]any{"answer": map[string]any{"type": "string"}}}})
			if err != nil {
				return nil, nil, err
			}
			return text(fmt.Sprintf("%s: %v", res.Action, res.Content["answer"])), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "runs until cancelled"},
		func(ctx context.Context, req *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
			}
			return text("slow done"), nil, nil
		})
}

// testConfig is the configuration most tests start from: two routes (docs
// and mail) over the given upstreams, one issuer.
func testConfig(base, issuer string, docsURL, mailURL string) *config.Config {
	cfg := &config.Config{
		Server:               config.Server{Listen: "127.0.0.1:0", PublicBaseURL: base},
		AuthorizationServers: []config.AuthorizationServer{{Issuer: issuer, Algorithms: []string{"RS256", "ES256", "EdDSA"}}},
		Scopes:               config.Scopes{Implies: map[string][]string{"docs:write": {"docs:read"}}},
		Routes: []config.Route{
			{
				Name: "docs", Path: "/servers/docs/mcp", ResourceName: "Docs",
				Upstream:       config.Upstream{URL: docsURL},
				RequiredScopes: []string{"docs:read"},
				Tools: map[string]config.ItemRule{
					"search":            {},
					"whoami":            {},
					"read_document":     {Scopes: []string{"document:read:{project}"}, Arguments: map[string]config.ArgumentRule{"project": {Pattern: "[a-z0-9-]{1,40}"}}},
					"update_document":   {Scopes: []string{"docs:write"}},
					"delete_everything": {Deny: true},
				},
			},
			{
				Name: "mail", Path: "/servers/mail/mcp",
				Upstream:       config.Upstream{URL: mailURL},
				RequiredScopes: []string{"mail:read"},
				Tools:          map[string]config.ItemRule{"search": {}},
			},
		},
		Development: config.Development{InsecureAllowHTTPLoopback: true},
	}
	cfg.Limits.RatePerIP.RequestsPerSecond = -1
	cfg.ApplyDefaults()
	return cfg
}

func newHarness(t *testing.T, opts harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, iss: testissuer.New(t, testissuer.Options{}), logs: &syncBuffer{},
		up: map[string]*upstreamServer{}, seq: new(atomic.Int64)}
	h.audit = &memSink{seq: h.seq}
	h.up["docs"] = newUpstream(t, "docs", opts, h.seq)
	h.up["mail"] = newUpstream(t, "mail", opts, h.seq)
	h.srv = httptest.NewUnstartedServer(nil)
	cfg := testConfig("http://"+h.srv.Listener.Addr().String(), h.iss.URL(), h.up["docs"].srv.URL, h.up["mail"].srv.URL)
	if opts.configure != nil {
		opts.configure(cfg)
	}
	if opts.setup != nil {
		opts.setup(h, cfg)
	}
	cfg.ApplyDefaults()
	sink := audit.Sink(h.audit)
	if opts.auditSink != nil {
		sink = opts.auditSink
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gw, err := New(cfg, Deps{Logger: log, Audit: sink, Now: opts.now})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	h.gw = gw
	h.srv.Config.Handler = gw
	h.srv.Start()
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harness) url(route string) string { return h.srv.URL + "/servers/" + route + "/mcp" }

func (h *harness) resource(route string) string { return h.url(route) }

// token mints a token for route with the given scopes.
func (h *harness) token(route, scope string) string {
	return h.iss.Mint(testissuer.Claims{Subject: "alice", ClientID: "agent-1", Audience: []string{h.resource(route)}, Scope: scope})
}

// client connects a go-sdk MCP client to route with a fixed bearer token.
func (h *harness) client(ctx context.Context, route, token string) (*mcp.ClientSession, error) {
	c := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1.0.0"}, nil)
	tr := &mcp.StreamableClientTransport{
		Endpoint:   h.url(route),
		HTTPClient: &http.Client{Transport: bearer{token: token, base: http.DefaultTransport}},
		MaxRetries: -1,
	}
	return c.Connect(ctx, tr, nil)
}

// assertNoTokenLeak fails if any upstream request or log line contains the
// token or an Authorization header.
func (h *harness) assertNoTokenLeak(token string) {
	h.t.Helper()
	h.assertNoTokenLeakT(h.t, token)
}

// assertNoTokenLeakT is assertNoTokenLeak reporting to t (a subtest).
func (h *harness) assertNoTokenLeakT(t testing.TB, token string) {
	t.Helper()
	for name, u := range h.up {
		for _, r := range u.requests() {
			if r.Header.Get("Authorization") != "" {
				t.Errorf("upstream %s received an Authorization header", name)
			}
			for k, vs := range r.Header {
				for _, v := range vs {
					if strings.Contains(v, token) {
						t.Errorf("upstream %s received the token in header %s", name, k)
					}
				}
			}
			if strings.Contains(r.URL, token) {
				t.Errorf("upstream %s received the token in the URL", name)
			}
			if bytes.Contains(r.Body, []byte(token)) {
				t.Errorf("upstream %s received the token in a body", name)
			}
		}
	}
	if strings.Contains(h.logs.String(), token) {
		t.Errorf("the token appears in the gateway's logs")
	}
	for _, e := range h.audit.events() {
		b, _ := json.Marshal(e)
		if bytes.Contains(b, []byte(token)) {
			t.Errorf("the token appears in an audit record")
		}
	}
}

// bearer adds a fixed Authorization header.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.base.RoundTrip(r)
}

// memSink is an audit sink in memory, optionally failing.
type memSink struct {
	seq *atomic.Int64 // shared with the upstreams; nil → not ordered

	mu   sync.Mutex // guards the fields below
	evs  []audit.Event
	seqs []int64 // seqs[i] orders evs[i] against upstream arrivals
	fail error
}

func (m *memSink) Write(_ context.Context, e *audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	var n int64
	if m.seq != nil {
		n = m.seq.Add(1)
	}
	m.evs = append(m.evs, *e)
	m.seqs = append(m.seqs, n)
	return nil
}

func (m *memSink) setFail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// seqOf returns the order stamp of the i-th event.
func (m *memSink) seqOf(i int) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seqs[i]
}

func (m *memSink) Close() error { return nil }

func (m *memSink) events() []audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]audit.Event(nil), m.evs...)
}

type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
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

func readAllRestore(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(r.Body)
	r.Body.Close()
	b := buf.Bytes()
	r.Body = readCloser{bytes.NewReader(b)}
	return b, err
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
