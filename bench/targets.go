package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// startFunc starts a target's processes and returns it ready for load.
type startFunc func(ctx context.Context, env *runEnv, name string) (*target, error)

// targetSpec is one entry of the target list. Adding a target is adding
// an entry to targetSpecs.
type targetSpec struct {
	name  string
	about string
	start startFunc
}

// targetSpecs returns every target, in the default order.
func targetSpecs() []targetSpec {
	return []targetSpec{
		{name: "direct", about: "go-sdk StreamableHTTPHandler (stateless, JSON responses), 50 tools, no auth", start: startDirect},
		{name: "proxy", about: "httputil.ReverseProxy (Rewrite + SetURL) in front of the upstream", start: startProxy},
		{name: "mcpgate-authn", about: "mcpgate serve, authentication only (bench/configs/" + authnTemplate + ")",
			start: mcpgateTarget(gateOptions{template: authnTemplate})},
		{name: "mcpgate-full", about: "mcpgate serve, scope rules + 25 sequence rules (23 evaluated on every search), every redaction detector, file audit (fsync interval, signed), anomaly detection, metrics (bench/configs/" + fullTemplate + ")",
			start: mcpgateTarget(gateOptions{template: fullTemplate, audited: true, prime: primeWorkspace, probes: fullProbes})},
		{name: "sdk-auth", about: "the upstream behind go-sdk auth.RequireBearerToken, golang-jwt verifying every request against the JWKS", start: startSDKAuth},
		{name: "mcpgate-redis", about: "mcpgate-full with its shared state (histories, budgets, revocations) in a redis-server on loopback; CPU proxy = mcpgate + redis-server",
			start: mcpgateTarget(gateOptions{template: fullTemplate, audited: true, prime: primeWorkspace, probes: fullProbes, redis: true})},
	}
}

// targetNames returns the names of every target.
func targetNames() []string {
	var out []string
	for _, s := range targetSpecs() {
		out = append(out, s.name)
	}
	return out
}

// runEnv is what starting targets needs.
type runEnv struct {
	cfg        Config
	self       []string // argv prefix that re-executes the harness
	mcpgateBin string
	issuer     *issuer
	workDir    string
	fakeKey    string        // the leak_key tool's fake AWS access key id
	ids        *atomic.Int64 // JSON-RPC ids, unique across the run
	hz         int64         // clock ticks per second of /proc/<pid>/stat
	log        *slog.Logger
}

// principals returns the number of principals the load at concurrency c
// is spread over (-principals; 0: one per worker).
func (e *runEnv) principals(c int) int {
	if e.cfg.Principals > 0 {
		return e.cfg.Principals
	}
	return c
}

// childArgs returns the argv of a hidden subcommand.
func (e *runEnv) childArgs(role string, args ...string) []string {
	out := append(slices.Clone(e.self), role, "-tools", strconv.Itoa(e.cfg.Tools))
	if e.cfg.TrackIDs {
		out = append(out, "-track-ids")
	}
	return append(out, args...)
}

func (e *runEnv) childEnv() []string {
	return []string{childEnv + "=1", fakeKeyEnv + "=" + e.fakeKey}
}

// startUpstream starts an upstream process for target name.
func (e *runEnv) startUpstream(ctx context.Context, name string) (*process, string, error) {
	return startProcess(ctx, name+"/upstream", e.childArgs(roleUpstream), e.childEnv(), true)
}

// target is a running target.
type target struct {
	name     string
	env      *runEnv
	endpoint string // the MCP endpoint the load is sent to
	audience string // the token's audience; "" sends no token

	front       *process   // the proxying process; nil when the upstream is hit directly
	upstream    *process   // the MCP server (for sdk-auth: with its auth middleware)
	extra       []*process // processes serving the front (mcpgate-redis: redis-server), CPU counted with it
	upstreamURL string     // base URL of the upstream process (its /debug/ids)

	adminURL, configFile, auditFile, auditPub string // mcpgate targets
	adminSecret                               string // the admin bearer secret (-profile); never logged

	// prime runs once per principal before its first load (requests the
	// target's rules need), with that principal's token; primed is the
	// number of principals (bench-user-1 … bench-user-primed) done.
	prime  func(ctx context.Context, t *target, token string) error
	primed int

	probes func(ctx context.Context, env *runEnv, t *target) []Check

	forwarded   atomic.Int64 // tools/call requests that reached the upstream
	searches    atomic.Int64 // search calls answered (load)
	sentBy      []int64      // load searches sent, by principal (index i: bench-user-(i+1))
	lastID      int64        // id of the last single call
	denyProbeID string
	client      http.Client
}

func startDirect(ctx context.Context, env *runEnv, name string) (*target, error) {
	up, u, err := env.startUpstream(ctx, name)
	if err != nil {
		return nil, err
	}
	return &target{name: name, env: env, upstream: up, upstreamURL: u, endpoint: u + mcpPath, probes: directProbes}, nil
}

func startProxy(ctx context.Context, env *runEnv, name string) (*target, error) {
	up, u, err := env.startUpstream(ctx, name)
	if err != nil {
		return nil, err
	}
	t := &target{name: name, env: env, upstream: up, upstreamURL: u}
	front, pu, err := startProcess(ctx, name, slices.Concat(env.self, []string{roleProxy, "-upstream", u}), env.childEnv(), true)
	if err != nil {
		t.stop()
		return nil, err
	}
	t.front, t.endpoint = front, pu+mcpPath
	return t, nil
}

func startSDKAuth(ctx context.Context, env *runEnv, name string) (*target, error) {
	p, u, err := startProcess(ctx, name, env.childArgs(roleSDKAuth, "-issuer", env.issuer.url), env.childEnv(), true)
	if err != nil {
		return nil, err
	}
	t := &target{name: name, env: env, upstream: p, upstreamURL: u, endpoint: u + mcpPath, audience: u + mcpPath}
	return t, nil
}

// directProbes shows the leak_key tool really returns the key when no
// gateway is in the way (so mcpgate-full's redaction check is not vacuous).
func directProbes(ctx context.Context, env *runEnv, t *target) []Check {
	body, status, err := t.call(ctx, "leak_key", map[string]any{})
	if err != nil {
		return []Check{{Target: t.name, Name: "leak-without-gateway", Detail: err.Error()}}
	}
	t.forwarded.Add(1)
	text, rerr := rpcResultText(body, t.lastID)
	ok := status == http.StatusOK && rerr == nil && strings.Contains(text, env.fakeKey)
	return []Check{{Target: t.name, Name: "leak-without-gateway", OK: ok,
		Detail: fmt.Sprintf("leak_key direct: HTTP %d, the fake key is in the result: %v", status, strings.Contains(text, env.fakeKey))}}
}

// principalSubject is the subject of principal i (0-based).
func principalSubject(i int) string { return "bench-user-" + strconv.Itoa(i+1) }

// token returns the bearer token of the target's first principal (the
// one the probes and other single calls use), "" when it needs none.
func (t *target) token() (string, error) {
	if t.audience == "" {
		return "", nil
	}
	return t.env.issuer.token(t.audience, principalSubject(0))
}

// principalTokens returns the tokens of principals 1…n, each primed (see
// target.prime) before it is returned for the first time; nil when the
// target takes no token. The tokens are cached by the issuer (re-minted
// only near expiry) and priming is done once per principal, so rounds
// and levels reuse both.
func (t *target) principalTokens(ctx context.Context, n int) ([]string, error) {
	if t.audience == "" {
		return nil, nil
	}
	toks := make([]string, n)
	for i := range toks {
		tok, err := t.env.issuer.token(t.audience, principalSubject(i))
		if err != nil {
			return nil, err
		}
		toks[i] = tok
	}
	if t.prime != nil {
		for ; t.primed < n; t.primed++ {
			if err := t.prime(ctx, t, toks[t.primed]); err != nil {
				return nil, fmt.Errorf("%s: prime %s: %w", t.name, principalSubject(t.primed), err)
			}
		}
	}
	return toks, nil
}

// addSent adds a load's per-principal counts to t.sentBy.
func (t *target) addSent(counts []int64) {
	for len(t.sentBy) < len(counts) {
		t.sentBy = append(t.sentBy, 0)
	}
	for i, n := range counts {
		t.sentBy[i] += n
	}
}

// stop stops the target's processes, the front first.
func (t *target) stop() error {
	var errs []error
	if t.front != nil {
		// mcpgate finishes its audit trail with a signed shutdown checkpoint.
		errs = append(errs, t.front.stop(30*time.Second))
	}
	if t.upstream != nil {
		errs = append(errs, t.upstream.stop(10*time.Second))
	}
	for _, p := range t.extra {
		errs = append(errs, p.stop(10*time.Second))
	}
	return errors.Join(errs...)
}

// alive returns an error if one of the target's processes has exited.
func (t *target) alive() error {
	for _, p := range append([]*process{t.front, t.upstream}, t.extra...) {
		if p != nil {
			if err := p.alive(); err != nil {
				return err
			}
		}
	}
	return nil
}

// setHeaders sets the headers of every MCP request.
func setHeaders(h http.Header, token string) {
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json, text/event-stream")
	h.Set("Mcp-Protocol-Version", "2025-11-25")
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
}

// call sends one tools/call outside the load as the first principal and
// returns the body and status; t.lastID is its JSON-RPC id.
func (t *target) call(ctx context.Context, tool string, args map[string]any) ([]byte, int, error) {
	tok, err := t.token()
	if err != nil {
		return nil, 0, err
	}
	return t.callAs(ctx, tok, tool, args)
}

// callAs is call with the given token ("" for none).
func (t *target) callAs(ctx context.Context, tok, tool string, args map[string]any) ([]byte, int, error) {
	id := t.env.ids.Add(1)
	t.lastID = id
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call",
		"params": map[string]any{"name": tool, "arguments": args}})
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, bytes.NewReader(b))
	if err != nil {
		return nil, 0, err
	}
	setHeaders(req.Header, tok)
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w", t.name, tool, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w", t.name, tool, err)
	}
	return body, resp.StatusCode, nil
}

// fetchIDs returns what the upstream recorded of the ids it saw
// (-track-ids).
func (t *target) fetchIDs(ctx context.Context) (idReport, error) {
	var r idReport
	err := getJSON(ctx, t.upstreamURL+"/debug/ids", &r)
	return r, err
}

// rpcResponse is a JSON-RPC response with a tools/call result.
type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  *struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// decodeRPC decodes body and checks it is JSON-RPC 2.0 answering id.
func decodeRPC(body []byte, id int64) (*rpcResponse, error) {
	var r rpcResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("not JSON: %w (%q)", err, truncate(body, 200))
	}
	if r.JSONRPC != "2.0" {
		return nil, fmt.Errorf("jsonrpc %q, want 2.0", r.JSONRPC)
	}
	if got := string(bytes.TrimSpace(r.ID)); got != strconv.FormatInt(id, 10) {
		return nil, fmt.Errorf("id %s, want %d", got, id)
	}
	return &r, nil
}

// rpcResultText checks that body is a successful tools/call result for id
// and returns its text content.
func rpcResultText(body []byte, id int64) (string, error) {
	r, err := decodeRPC(body, id)
	if err != nil {
		return "", err
	}
	if r.Error != nil {
		return "", fmt.Errorf("JSON-RPC error %d: %s", r.Error.Code, r.Error.Message)
	}
	if r.Result == nil {
		return "", errors.New("no result")
	}
	if r.Result.IsError {
		return "", fmt.Errorf("tool error: %q", truncate(body, 200))
	}
	var sb strings.Builder
	for _, c := range r.Result.Content {
		if c.Type == "text" {
			sb.WriteString(c.Text)
		}
	}
	return sb.String(), nil
}

// rpcError checks that body is a JSON-RPC error for id and returns it.
func rpcError(body []byte, id int64) (int, string, error) {
	r, err := decodeRPC(body, id)
	if err != nil {
		return 0, "", err
	}
	if r.Error == nil {
		return 0, "", errors.New("no JSON-RPC error")
	}
	return r.Error.Code, r.Error.Message, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
