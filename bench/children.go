package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// The hidden subcommands: every target's server runs in its own process,
// started by the harness re-executing itself, so that its CPU time can be
// read from /proc.
const (
	roleUpstream = "upstream" // the go-sdk MCP server (direct target, and behind every proxy)
	roleProxy    = "proxy"    // httputil.ReverseProxy in front of an upstream
	roleSDKAuth  = "sdk-auth" // the upstream behind go-sdk's auth.RequireBearerToken
)

// childEnv marks a process started as a child; the test binary's TestMain
// dispatches on it (the harness re-executes whatever binary it runs in).
const childEnv = "MCPGATE_BENCH_CHILD"

// fakeKeyEnv carries the fake AWS access key id the leak_key tool returns.
// It is built at run time by the parent (never a literal in the source).
const fakeKeyEnv = "MCPGATE_BENCH_FAKE_KEY"

// listenPrefix starts the line a child prints on standard output once it
// listens: "LISTEN http://127.0.0.1:PORT".
const listenPrefix = "LISTEN "

// mcpPath is the MCP endpoint path of the upstream, the proxy and sdk-auth.
const mcpPath = "/mcp"

// isRole reports whether name is a hidden subcommand.
func isRole(name string) bool {
	switch name {
	case roleUpstream, roleProxy, roleSDKAuth:
		return true
	}
	return false
}

// childMain runs a hidden subcommand until SIGINT or SIGTERM and returns
// the exit code.
func childMain(args []string, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if len(args) == 0 || !isRole(args[0]) {
		fmt.Fprintf(stderr, "bench: unknown child role %q\n", strings.Join(args, " "))
		return 2
	}
	role := args[0]
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "listen `address`")
	tools := fs.Int("tools", 50, "number of tools the upstream registers")
	trackIDs := fs.Bool("track-ids", false, "record the JSON-RPC id of every tools/call (served at /debug/ids)")
	upstream := fs.String("upstream", "", "proxy: upstream base `URL`")
	issuerURL := fs.String("issuer", "", "sdk-auth: the authorization server's issuer `URL`")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen", slog.String("error", err.Error()))
		return 1
	}
	base := "http://" + l.Addr().String()
	var h http.Handler
	switch role {
	case roleUpstream, roleSDKAuth:
		srv, err := newUpstreamServer(*tools, os.Getenv(fakeKeyEnv))
		if err != nil {
			log.Error("upstream", slog.String("error", err.Error()))
			return 1
		}
		mux := http.NewServeMux()
		var ids *idTracker
		if *trackIDs {
			ids = &idTracker{seen: map[string]int{}}
			mux.Handle("GET /debug/ids", ids)
		}
		var endpoint http.Handler = mcp.NewStreamableHTTPHandler(
			func(*http.Request) *mcp.Server { return srv },
			&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true},
		)
		if role == roleSDKAuth {
			mw, err := sdkAuthMiddleware(ctx, *issuerURL, base+mcpPath)
			if err != nil {
				log.Error("sdk-auth", slog.String("error", err.Error()))
				return 1
			}
			endpoint = mw(endpoint)
		}
		if ids != nil {
			endpoint = ids.wrap(endpoint)
		}
		mux.Handle(mcpPath, endpoint)
		if role == roleSDKAuth {
			mux.Handle("GET /.well-known/oauth-protected-resource"+mcpPath, auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
				Resource: base + mcpPath, AuthorizationServers: []string{*issuerURL}, ScopesSupported: []string{"bench:read"},
			}))
		}
		h = mux
	case roleProxy:
		u, err := url.Parse(*upstream)
		if err != nil || u.Scheme == "" || u.Host == "" {
			log.Error("proxy needs -upstream URL", slog.String("upstream", *upstream))
			return 2
		}
		h = newReverseProxy(u)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	fmt.Fprintln(stdout, listenPrefix+base)
	select {
	case err := <-done:
		log.Error("serve", slog.String("error", err.Error()))
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown", slog.String("error", err.Error()))
		return 1
	}
	return 0
}

// newReverseProxy is the "bare proxy" baseline: httputil.ReverseProxy
// with Rewrite and SetURL, as its documentation shows. The one change
// from http.DefaultTransport is MaxIdleConnsPerHost, raised from 2 to the
// 256 mcpgate's own upstream transport uses: with the default, every
// concurrency level above 2 would measure connection churn, not proxying.
func newReverseProxy(u *url.URL) http.Handler {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	return &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(u) },
		Transport: tr,
	}
}

// searchIn is the measured tool's input.
type searchIn struct {
	Query     string `json:"query" jsonschema:"what to search for"`
	Workspace string `json:"workspace,omitempty" jsonschema:"the workspace to search in"`
}

// workspaceIn is the input of the workspace tools.
type workspaceIn struct {
	Workspace string `json:"workspace" jsonschema:"the workspace"`
}

// searchResult is the measured tool's (small) text answer for a query.
func searchResult(in searchIn) string {
	return fmt.Sprintf("3 results for %q in %s: doc-17 (quarterly plan), doc-42 (runbook), doc-99 (glossary)", in.Query, in.Workspace)
}

// namedTools returns the named tools of the upstream; fillers (tool_NN)
// bring the total to the requested count.
func namedTools() []string {
	return []string{"search", "open_workspace", "purge_workspace", "approve_export", "export_results", "leak_key"}
}

// toolNames returns the names of the n tools the upstream registers.
func toolNames(n int) []string {
	out := namedTools()
	for i := len(out); i < n; i++ {
		out = append(out, fmt.Sprintf("tool_%02d", i))
	}
	return out[:min(n, len(out))]
}

// newUpstreamServer builds the go-sdk MCP server: n tools, of which the
// measured one is search. leak_key returns fakeKey (a credential-shaped
// string) so that redaction can be shown to work.
func newUpstreamServer(n int, fakeKey string) (*mcp.Server, error) {
	if n < len(namedTools()) {
		return nil, fmt.Errorf("-tools must be at least %d", len(namedTools()))
	}
	srv := mcp.NewServer(&mcp.Implementation{Name: "bench-upstream", Version: "1"}, nil)
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	mcp.AddTool(srv, &mcp.Tool{Name: "search", Description: "Searches the workspace's documents.", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(_ context.Context, _ *mcp.CallToolRequest, in searchIn) (*mcp.CallToolResult, any, error) {
			return text(searchResult(in)), nil, nil
		})
	for _, name := range []string{"open_workspace", "purge_workspace", "approve_export", "export_results"} {
		mcp.AddTool(srv, &mcp.Tool{Name: name, Description: "Workspace operation " + name + "."},
			func(_ context.Context, _ *mcp.CallToolRequest, in workspaceIn) (*mcp.CallToolResult, any, error) {
				return text(name + " done for " + in.Workspace), nil, nil
			})
	}
	mcp.AddTool(srv, &mcp.Tool{Name: "leak_key", Description: "Returns deployment settings (with a credential in them)."},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return text("deploy settings: region=eu-west-1 aws_access_key_id=" + fakeKey + " bucket=reports"), nil, nil
		})
	for _, name := range toolNames(n)[len(namedTools()):] {
		mcp.AddTool(srv, &mcp.Tool{Name: name, Description: "Filler tool " + name + "."},
			func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
				return text(name + " ok"), nil, nil
			})
	}
	return srv, nil
}

// idTracker records the JSON-RPC id of every tools/call it sees. It
// costs a second decode of each body, so the harness enables it only with
// -track-ids (the tests do).
type idTracker struct {
	mu    sync.Mutex
	seen  map[string]int
	calls int
}

// idReport is what /debug/ids answers.
type idReport struct {
	Calls      int               `json:"calls"`
	Distinct   int               `json:"distinct"`
	Duplicates int               `json:"duplicates"`
	IDs        []json.RawMessage `json:"ids"`
}

func (t *idTracker) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				http.Error(w, "read body", http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			var m struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			if json.Unmarshal(b, &m) == nil && m.Method == "tools/call" {
				t.mu.Lock()
				t.calls++
				t.seen[string(m.ID)]++
				t.mu.Unlock()
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (t *idTracker) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	t.mu.Lock()
	rep := idReport{Calls: t.calls, Distinct: len(t.seen), IDs: make([]json.RawMessage, 0, len(t.seen))}
	for id, n := range t.seen {
		rep.Duplicates += n - 1
		rep.IDs = append(rep.IDs, json.RawMessage(id))
	}
	t.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rep)
}

// sdkAuthMiddleware protects the upstream the way the go-sdk's examples
// do: auth.RequireBearerToken with a TokenVerifier that checks every
// request's JWT with golang-jwt against the issuer's JWKS (fetched once,
// here, at start): signature (ES256 only), exp (required), iss and aud (the
// resource URI). No token cache.
func sdkAuthMiddleware(ctx context.Context, issuerURL, resource string) (func(http.Handler) http.Handler, error) {
	if issuerURL == "" {
		return nil, errors.New("sdk-auth needs -issuer")
	}
	keys, err := fetchJWKS(ctx, issuerURL)
	if err != nil {
		return nil, err
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithIssuer(issuerURL),
		jwt.WithAudience(resource),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(time.Minute),
	)
	keyfunc := func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := keys[kid]
		if !ok {
			return nil, errNoKey
		}
		return k, nil
	}
	verify := func(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		claims := jwt.MapClaims{}
		if _, err := parser.ParseWithClaims(token, claims, keyfunc); err != nil {
			return nil, fmt.Errorf("%w: %v", auth.ErrInvalidToken, err)
		}
		exp, err := claims.GetExpirationTime()
		if err != nil || exp == nil {
			return nil, fmt.Errorf("%w: no exp", auth.ErrInvalidToken)
		}
		sub, _ := claims.GetSubject()
		scope, _ := claims["scope"].(string)
		return &auth.TokenInfo{Scopes: strings.Fields(scope), Expiration: exp.Time, UserID: sub}, nil
	}
	return auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{
		ResourceMetadataURL: strings.TrimSuffix(resource, mcpPath) + "/.well-known/oauth-protected-resource" + mcpPath, // served beside it
		Scopes:              []string{"bench:read"},
	}), nil
}

// fetchJWKS discovers the issuer's jwks_uri (RFC 8414) and returns its
// keys by kid.
func fetchJWKS(ctx context.Context, issuerURL string) (map[string]any, error) {
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, issuerURL+"/.well-known/oauth-authorization-server", &meta); err != nil {
		return nil, fmt.Errorf("issuer metadata: %w", err)
	}
	if meta.Issuer != issuerURL || meta.JWKSURI == "" {
		return nil, fmt.Errorf("issuer metadata: issuer %q, jwks_uri %q", meta.Issuer, meta.JWKSURI)
	}
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, meta.JWKSURI, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	keys := map[string]any{}
	for _, k := range set.Keys {
		if k.Valid() && k.IsPublic() {
			keys[k.KeyID] = k.Key
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no usable public key")
	}
	return keys, nil
}

// getJSON GETs u and decodes its JSON answer into v.
func getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}
