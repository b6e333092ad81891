package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/state"
	"github.com/mcpgate/mcpgate/internal/testissuer"
)

// Scale curves (issue #9): the cost of a cached-token tools/call as the
// configuration or the state grows — routes, tools per route, policy
// rules, history length, open streams — with the memory that growth
// costs. Sub-benchmarks are named name=value for benchstat:
//
//	go test ./internal/gateway -run '^$' -bench Scale -count 6 | tee new.txt
//	benchstat -col /routes new.txt
//
// Every benchmark but ScaleStreams serves through ServeHTTP with a stub
// upstream (stubUpstream, bench_cold_test.go) and reports heap-B: the live
// heap New holds for the configuration (built a second time without the
// stub, so each route's real upstream transport is counted).

// timeCalls times one request (payload) per b.Loop iteration through c,
// then checks outside the timer that every one of them reached the
// upstream and that the last answer is want.
func timeCalls(b *testing.B, c *benchRequest, up *stubUpstream, payload, want []byte) {
	b.Helper()
	c.mustServe(b, "before the timer", payload, want)
	start := up.requests.Load()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if w := c.serve(payload); w.code != http.StatusOK {
			b.Fatalf("call %d: status %d: %.300s", n, w.code, w.body.Bytes())
		}
		n++
	}
	b.StopTimer()
	if got := up.requests.Load() - start; got != int64(n) {
		b.Fatalf("the upstream received %d of %d calls: some were refused (%.300s)", got, n, c.w.body.Bytes())
	}
	if !bytes.Equal(c.w.body.Bytes(), want) {
		b.Fatalf("last answer %.300s, want %s", c.w.body.Bytes(), want)
	}
}

// buildHeap returns the live heap of a gateway built from cfg with its
// real upstream transports. (Report it after b.Loop, whose first call
// deletes the metrics reported before it.)
func buildHeap(b *testing.B, cfg *config.Config) float64 {
	b.Helper()
	cfg.ApplyDefaults()
	var err error
	grown := heapGrowth(func() any {
		var g *Gateway
		if g, err = New(cfg, Deps{Audit: discardSink{}}); err == nil {
			b.Cleanup(func() { _ = g.Close() })
		}
		return g
	})
	if err != nil {
		b.Fatalf("gateway.New: %v", err)
	}
	return grown
}

// scaleRoute is a route named name with one tool, search.
func scaleRoute(name string) config.Route {
	return config.Route{
		Name: name, Path: "/servers/" + name + "/mcp",
		Upstream:       config.Upstream{URL: "http://" + name + ".upstream.test/mcp"},
		RequiredScopes: []string{"docs:read"},
		Tools:          map[string]config.ItemRule{"search": {}},
	}
}

// BenchmarkScaleRoutes is a tools/call to the last of routes routes.
func BenchmarkScaleRoutes(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run("routes="+strconv.Itoa(n), func(b *testing.B) {
			iss := testissuer.New(b, testissuer.Options{})
			cfg := testConfig(benchBase, iss.URL(), "http://docs.upstream.test/mcp", "http://mail.upstream.test/mcp")
			cfg.Routes = nil
			for i := range n {
				cfg.Routes = append(cfg.Routes, scaleRoute(fmt.Sprintf("r%04d", i)))
			}
			last := benchBase + cfg.Routes[n-1].Path
			up := newStubUpstream()
			g := benchGateway(b, cfg, up)
			c := newBenchRequest(g, last, iss.Mint(aliceClaims(last, "docs:read")), v1125)
			heap := buildHeap(b, cfg)
			timeCalls(b, c, up, benchCall, stubCallResult)
			b.ReportMetric(heap, "heap-B")
		})
	}
}

// BenchmarkScaleTools is a tools/call to the last of tools tools of a
// route, each with its own scope.
func BenchmarkScaleTools(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 5000} {
		b.Run("tools="+strconv.Itoa(n), func(b *testing.B) {
			iss := testissuer.New(b, testissuer.Options{})
			cfg := testConfig(benchBase, iss.URL(), "http://docs.upstream.test/mcp", "http://mail.upstream.test/mcp")
			tools := map[string]config.ItemRule{}
			for i := range n {
				name := fmt.Sprintf("tool_%04d", i)
				tools[name] = config.ItemRule{Scopes: []string{"call:" + name}}
			}
			cfg.Routes[0].Tools = tools
			lastTool := fmt.Sprintf("tool_%04d", n-1)
			up := newStubUpstream()
			g := benchGateway(b, cfg, up)
			c := newBenchRequest(g, docsURL, iss.Mint(aliceClaims(docsURL, "docs:read call:"+lastTool)), v1125)
			heap := buildHeap(b, cfg)
			timeCalls(b, c, up, []byte(toolsCall(7, lastTool, `{"text":"q"}`)), stubCallResult)
			b.ReportMetric(heap, "heap-B")
		})
	}
}

// Rule kinds of mixedRules, in the order they cycle.
var ruleKinds = []string{"flow", "after", "never", "budget", "cel-history", "cel-args"}

// mixedRules returns n sequence rules cycling through ruleKinds. Every one
// of them matches a call of search (so each is evaluated for it) and none
// fires once prep has been called with the same text:
//
//   - flow: a taint the run never acquires, to search;
//   - after: search only after prep (every other one with
//     same_arguments: [text]);
//   - never: search never after a tool no one calls;
//   - budget: 10,000 searches per 100ms, per session, subject or client;
//   - cel-history: an ordered pattern over session.history (lastCall);
//   - cel-args: a test of call.args (accounted at run time).
func mixedRules(n int) []config.SequenceRule {
	rules := make([]config.SequenceRule, 0, n)
	search := config.Match{Tools: []string{"search"}}
	for i := range n {
		kind := ruleKinds[i%len(ruleKinds)]
		r := config.SequenceRule{ID: fmt.Sprintf("r%03d-%s", i, kind)}
		switch kind {
		case "flow":
			r.Flow = &config.FlowRule{Taint: []string{fmt.Sprintf("never_%d", i)}, To: search}
		case "after":
			r.Order = &config.OrderRule{Call: search, After: &config.Match{Tools: []string{"prep"}}}
			if i%(2*len(ruleKinds)) == 1 {
				r.Order.SameArguments = []string{"text"}
			}
		case "never":
			r.Order = &config.OrderRule{Call: search, NeverAfter: &config.Match{Tools: []string{fmt.Sprintf("forbidden_%d", i)}}}
		case "budget":
			r.Budget = &config.BudgetRule{Match: search, Max: 10000, Window: config.Duration(100 * time.Millisecond),
				Per: []string{"session", "subject", "client"}[(i/len(ruleKinds))%3]}
		case "cel-history":
			r.When = fmt.Sprintf(`call.tool == "search" && session.lastCall("forbidden_%d") > session.lastCall("prep")`, i)
		case "cel-args":
			r.When = fmt.Sprintf(`call.tool == "search" && string(call.args.text).startsWith("forbidden-%d")`, i)
		}
		rules = append(rules, r)
	}
	return rules
}

// rulesRoute makes search need a templated scope bound to its argument
// (search:{text}, text constrained by a pattern) and allows prep.
func rulesRoute(cfg *config.Config) {
	cfg.Routes[0].Tools = map[string]config.ItemRule{
		"search": {Scopes: []string{"search:{text}"}, Arguments: map[string]config.ArgumentRule{"text": {Pattern: "[a-z]{1,16}"}}},
		"prep":   {},
	}
}

// rulesHistory is the history length BenchmarkScaleRules holds constant
// (sequence.history.max_entries), so that its curve is the rules' alone:
// the cel-history rules scan the history.
const rulesHistory = 100

// BenchmarkScaleRules is a tools/call decided by rules sequence rules of
// mixed kinds (mixedRules), all evaluated and none denying, over a
// history of rulesHistory calls, after the route's scope rules (a
// templated per-tool scope with an argument constraint; scope rules are
// per tool, so one applies to a call however many tools are configured —
// BenchmarkScaleTools covers their number).
func BenchmarkScaleRules(b *testing.B) {
	for _, n := range []int{1, 10, 50, 200} {
		b.Run("rules="+strconv.Itoa(n), func(b *testing.B) {
			iss := testissuer.New(b, testissuer.Options{})
			cfg := testConfig(benchBase, iss.URL(), "http://docs.upstream.test/mcp", "http://mail.upstream.test/mcp")
			rulesRoute(cfg)
			cfg.Sequence.Rules = mixedRules(n)
			cfg.Sequence.History.MaxEntries = rulesHistory
			up := newStubUpstream()
			g := benchGateway(b, cfg, up)
			c := newBenchRequest(g, docsURL, iss.Mint(aliceClaims(docsURL, "docs:read search:q")), v1125)
			c.mustServe(b, "prep", []byte(toolsCall(7, "prep", `{"text":"q"}`)), stubCallResult)
			for range rulesHistory {
				c.mustServe(b, "filling the history", benchCall, stubCallResult)
			}
			heap := buildHeap(b, cfg)
			timeCalls(b, c, up, benchCall, stubCallResult)
			if got := historyLen(b, g, iss.URL()); got != rulesHistory {
				b.Fatalf("history holds %d calls, want %d", got, rulesHistory)
			}
			b.ReportMetric(heap, "heap-B")
		})
	}
}

// historyLen returns the number of entries in the history of alice
// (client agent-1) at issuer, read through the gateway's store without
// changing it.
func historyLen(tb testing.TB, g *Gateway, issuer string) int {
	tb.Helper()
	errRead := errors.New("read only")
	n := -1
	key := g.seq.HistoryKey(policy.Call{Issuer: issuer, Subject: "alice", ClientID: "agent-1"})
	err := g.store.Update(context.Background(), key, nil, func(h *state.History, _ []*state.Counter) error {
		n = len(h.Entries)
		return errRead // nothing is written
	})
	if !errors.Is(err, errRead) {
		tb.Fatalf("read history: %v", err)
	}
	return n
}

// BenchmarkScaleHistory is a tools/call decided over a history of history
// calls by three rules that must look at it: a CEL scan of
// session.history, a CEL ordered pattern (lastCall, a native scan), and
// an order rule (search after prep). sequence.history.max_entries is set
// to history, so the history keeps that length while the loop adds to it.
//
// CEL sees at most the newest 1000 entries of a history (celMaxHistory in
// internal/policy, enforced whatever max_entries says), and order rules
// read what they remember per rule (at most 256 values), not the entries:
// beyond 1000 the cost of a call should not grow.
//
// The history is built before the timer with real calls through the
// gateway (prep once, then search); history-B is the live heap that
// building it added (the history itself, with what the gateway keeps per
// call).
func BenchmarkScaleHistory(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run("history="+strconv.Itoa(n), func(b *testing.B) {
			iss := testissuer.New(b, testissuer.Options{})
			cfg := testConfig(benchBase, iss.URL(), "http://docs.upstream.test/mcp", "http://mail.upstream.test/mcp")
			rulesRoute(cfg)
			cfg.Sequence.History.MaxEntries = n
			cfg.Sequence.Rules = []config.SequenceRule{
				{ID: "history-scan", When: `call.tool == "search" && session.history.exists(e, e.tool == "forbidden")`},
				{ID: "ordered", When: `call.tool == "search" && session.lastCall("forbidden") > session.lastCall("prep")`},
				{ID: "after-prep", Order: &config.OrderRule{Call: config.Match{Tools: []string{"search"}}, After: &config.Match{Tools: []string{"prep"}}}},
			}
			up := newStubUpstream()
			g := benchGateway(b, cfg, up)
			c := newBenchRequest(g, docsURL, iss.Mint(aliceClaims(docsURL, "docs:read search:q")), v1125)
			c.mustServe(b, "warm-up", []byte(toolsCall(7, "prep", `{"text":"q"}`)), stubCallResult)
			history := heapGrowth(func() any {
				for i := 1; i < n; i++ {
					c.mustServe(b, "building the history", benchCall, stubCallResult)
				}
				return g
			})
			if got := historyLen(b, g, iss.URL()); got != n {
				b.Fatalf("history holds %d calls before the timer, want %d", got, n)
			}
			heap := buildHeap(b, cfg)
			timeCalls(b, c, up, benchCall, stubCallResult)
			if got := historyLen(b, g, iss.URL()); got != n {
				b.Fatalf("history holds %d calls after the loop, want %d", got, n)
			}
			b.ReportMetric(heap, "heap-B")
			b.ReportMetric(history, "history-B")
		})
	}
}

// streamOpenEvent is the notification holdUpstream sends first on every
// stream it holds.
const streamOpenEvent = `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"stream open"}}`

// holdUpstream is an MCP upstream over real HTTP that holds event streams
// open: a GET, and a tools/call of the tool hold, are answered with an
// event stream that carries streamOpenEvent and then stays open until the
// client goes away or the upstream is released. initialize gets a fresh
// session id, any other request stubCallResult.
type holdUpstream struct {
	srv     *httptest.Server
	release chan struct{}
	held    atomic.Int64 // streams open now
	sids    atomic.Int64
}

func newHoldUpstream(tb testing.TB) *holdUpstream {
	u := &holdUpstream{release: make(chan struct{})}
	u.srv = httptest.NewServer(u)
	tb.Cleanup(func() {
		close(u.release)
		u.srv.Close()
	})
	return u
}

func (u *holdUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		u.hold(w, r)
		return
	case http.MethodPost:
	default:
		w.WriteHeader(http.StatusOK)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	reply := stubCallResult
	switch {
	case bytes.Contains(body, []byte(`"method":"initialize"`)):
		w.Header().Set("Mcp-Session-Id", "held-"+strconv.FormatInt(u.sids.Add(1), 10))
		reply = stubInitResult
	case bytes.Contains(body, []byte(`"name":"hold"`)):
		u.hold(w, r)
		return
	case !bytes.Contains(body, []byte(`"id":`)):
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(reply)
}

func (u *holdUpstream) hold(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "data: "+streamOpenEvent+"\n\n")
	if err := http.NewResponseController(w).Flush(); err != nil {
		return
	}
	u.held.Add(1)
	defer u.held.Add(-1)
	select {
	case <-r.Context().Done():
	case <-u.release:
	}
}

// memSnapshot is the process's live heap, goroutine stacks and goroutines.
type memSnapshot struct {
	heap, stack uint64
	goroutines  int
}

func snapshot() memSnapshot {
	heap := liveHeap()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSnapshot{heap: heap, stack: m.StackInuse, goroutines: runtime.NumGoroutine()}
}

// reportPerStream reports the growth from a to z divided by n.
func reportPerStream(b *testing.B, a, z memSnapshot, n int) {
	per := func(x, y uint64) float64 {
		if y < x {
			return 0
		}
		return float64(y-x) / float64(n)
	}
	b.ReportMetric(per(a.heap, z.heap), "heap-B/stream")
	b.ReportMetric(per(a.stack, z.stack), "stack-B/stream")
	b.ReportMetric(float64(z.goroutines-a.goroutines)/float64(n), "goroutines/stream")
}

// openStream sends req and waits for the first event of the stream it
// answers, which must be streamOpenEvent relayed by the gateway.
func openStream(client *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("status %d (%s): %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var buf [512]byte
	n := 0
	for !bytes.Contains(buf[:n], []byte("\n\n")) {
		if n == len(buf) {
			resp.Body.Close()
			return nil, fmt.Errorf("first event too long: %q", buf[:n])
		}
		m, err := resp.Body.Read(buf[n:])
		n += m
		if err != nil && !bytes.Contains(buf[:n], []byte("\n\n")) {
			resp.Body.Close()
			return nil, fmt.Errorf("reading the first event: %w (%q)", err, buf[:n])
		}
	}
	if !bytes.Contains(buf[:n], []byte(streamOpenEvent)) {
		resp.Body.Close()
		return nil, fmt.Errorf("first event %q", buf[:n])
	}
	return resp, nil
}

// BenchmarkScaleStreams is a tools/call (cached token, JSON answer, over
// HTTP/1.1 keep-alive) through a real gateway listener while streams
// event streams are open through it to a real upstream that holds them:
// half GET streams (each on its own session), half POST tools/call
// streams. The stream caps are raised to fit. It reports what each open
// stream costs the whole process: live heap (heap-B/stream), goroutine
// stacks (stack-B/stream) and goroutines — the client's, the gateway's
// and the upstream's side together.
//
// The streams reach the gateway over cleartext HTTP/2 (a few connections
// multiplexing them, as behind a TLS listener, where Go negotiates h2):
// over HTTP/1.1, 5,000 streams would need four file descriptors each in
// this one process (client, gateway in and out, upstream), beyond a
// 20,000-descriptor limit. The gateway's upstream hop is its production
// HTTP/1.1 transport, one connection per stream.
func BenchmarkScaleStreams(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 5000} {
		b.Run("streams="+strconv.Itoa(n), func(b *testing.B) {
			benchStreams(b, n)
		})
	}
}

func benchStreams(b *testing.B, n int) {
	iss := testissuer.New(b, testissuer.Options{})
	up := newHoldUpstream(b)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	cfg := testConfig(base, iss.URL(), up.srv.URL+"/mcp", "http://mail.upstream.test/mcp")
	cfg.Routes[0].Tools["hold"] = config.ItemRule{}
	cfg.Limits.MaxStreamsPerPrincipal = n + 16
	cfg.Limits.MaxSessionsPerPrincipal = n + 16
	cfg.ApplyDefaults()
	g, err := New(cfg, Deps{Audit: discardSink{}})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := g.Server()
	if err != nil {
		b.Fatal(err)
	}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 1000}
	go func() { _ = srv.Serve(l) }()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(func() {
		cancel() // ends every stream
		_ = srv.Close()
		_ = g.Close()
	})

	url := base + "/servers/docs/mcp"
	bearer := "Bearer " + iss.Mint(testissuer.Claims{Subject: "alice", ClientID: "agent-1", Audience: []string{url}, Scope: "docs:read"})
	// post builds a POST of body; version "" sends no MCP-Protocol-Version
	// (initialize).
	post := func(body []byte, sid, version string) *http.Request {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Authorization", bearer)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if version != "" {
			req.Header.Set("Mcp-Protocol-Version", version)
		}
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
		}
		return req
	}
	callTr := http.DefaultTransport.(*http.Transport).Clone()
	callTr.MaxIdleConnsPerHost = 4
	calls := &http.Client{Transport: callTr, Timeout: 30 * time.Second}
	defer callTr.CloseIdleConnections()
	call := func(body []byte, version string) (*http.Response, []byte, error) {
		resp, err := calls.Do(post(body, "", version))
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		return resp, got, err
	}

	// Sessions for the GET streams, before the first measurement.
	sids := make([]string, (n+1)/2)
	for i := range sids {
		resp, body, err := call(benchInitialize, "")
		if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Mcp-Session-Id") == "" {
			b.Fatalf("initialize %d: %v %v %s", i, err, resp, body)
		}
		sids[i] = resp.Header.Get("Mcp-Session-Id")
	}
	if _, body, err := call(benchCall, v1125); err != nil || !bytes.Equal(body, stubCallResult) {
		b.Fatalf("warm-up call: %v %s", err, body)
	}

	h2 := &http.Transport{Protocols: new(http.Protocols)}
	h2.Protocols.SetUnencryptedHTTP2(true)
	defer h2.CloseIdleConnections()
	streamClient := &http.Client{Transport: h2}
	streamReq := func(i int) *http.Request {
		if i%2 == 0 {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			req.Header.Set("Authorization", bearer)
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Mcp-Protocol-Version", v1125)
			req.Header.Set("Mcp-Session-Id", sids[i/2])
			return req
		}
		return post([]byte(toolsCall(1000+i, "hold", `{"text":"q"}`)), "", v1125)
	}
	// One stream of each kind opened and closed first, so that the
	// measurement starts with the client connections and lazily built
	// state in place.
	warm, werr := openStream(streamClient, post([]byte(toolsCall(999, "hold", `{"text":"q"}`)), "", v1125))
	if werr != nil {
		b.Fatalf("warm-up stream: %v", werr)
	}
	warm.Body.Close()
	waitUntil(b, "the warm-up stream to end", func() bool { return up.held.Load() == 0 })

	before := snapshot()
	streams := make([]*http.Response, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var openErr error
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				resp, err := openStream(streamClient, streamReq(i))
				if err != nil {
					mu.Lock()
					openErr = errors.Join(openErr, fmt.Errorf("stream %d: %w", i, err))
					mu.Unlock()
					return
				}
				streams[i] = resp
			}
		})
	}
	wg.Wait()
	if openErr != nil {
		b.Fatal(openErr)
	}
	waitUntil(b, "the upstream to hold every stream", func() bool { return up.held.Load() == int64(n) })
	after := snapshot()

	b.ReportAllocs()
	calls0 := 0
	var last []byte
	for b.Loop() {
		resp, body, err := call(benchCall, v1125)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("call %d with %d streams open: %v %v", calls0, n, err, resp)
		}
		last = body
		calls0++
	}
	b.StopTimer()
	if !bytes.Equal(last, stubCallResult) {
		b.Fatalf("last answer %s", last)
	}
	if h := up.held.Load(); h != int64(n) {
		b.Fatalf("%d of %d streams still open after the loop", h, n)
	}
	if open := g.streams.Open(); open != (n+1)/2 {
		b.Fatalf("the gateway counts %d open GET streams, want %d", open, (n+1)/2)
	}
	reportPerStream(b, before, after, n)
	for _, s := range streams {
		s.Body.Close()
	}
}

// waitUntil polls cond until it holds, failing tb after 20 s.
func waitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
