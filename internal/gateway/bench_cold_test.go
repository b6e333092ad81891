package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/testissuer"
)

// Cold-path benchmarks (issue #9): what a request costs when nothing is
// cached yet — a token seen for the first time, a key the gateway has not
// loaded, a new session — and what an idle session costs in memory. The
// helpers here are shared with bench_scale_test.go.
//
//	go test ./internal/gateway -run '^$' -bench 'Cold|UnknownKID|NewSession|ToolsList500|IdleSession' -benchtime 200x

// benchBase is the public base URL of the gateways driven through
// ServeHTTP (no listener).
const benchBase = "http://127.0.0.1:8443"

// Canned upstream answers. The ids are those of the requests the
// benchmarks send: initialize 1, tools/list 2, tools/call 7.
var (
	stubInitResult = []byte(`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"` + v1125 +
		`","capabilities":{"tools":{"listChanged":true}},"serverInfo":{"name":"stub","version":"1.0.0"}}}`)
	stubCallResult = []byte(`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"results for q"}]}}`)

	benchInitialize = []byte(rpcRequest(1, "initialize",
		`{"protocolVersion":"`+v1125+`","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}`))
	benchToolsList = []byte(rpcRequest(2, "tools/list", ""))
	benchCall      = []byte(toolsCall(7, "search", `{"text":"q"}`))
)

// stubUpstream is an MCP upstream as an http.RoundTripper, without a
// network: initialize is answered with a fresh Mcp-Session-Id,
// tools/list with List, notifications with 202, anything else with
// stubCallResult. It counts what it answers, so a benchmark can check
// afterwards that every request it timed was forwarded.
type stubUpstream struct {
	// List is the whole tools/list answer (a JSON-RPC message with id 2).
	List []byte

	prefix   string
	requests atomic.Int64 // requests answered
	sessions atomic.Int64 // session ids assigned
	bufs     sync.Pool    // *bytes.Buffer for request bodies
}

func newStubUpstream() *stubUpstream {
	return &stubUpstream{prefix: "up-" + randomToken("", 4) + "-"}
}

func (s *stubUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	buf, _ := s.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer s.bufs.Put(buf)
	buf.Reset()
	if r.Body != nil {
		_, _ = buf.ReadFrom(r.Body)
		_ = r.Body.Close()
	}
	s.requests.Add(1)
	req := buf.Bytes()
	status, body := http.StatusOK, stubCallResult
	h := http.Header{"Content-Type": {"application/json"}}
	switch {
	case bytes.Contains(req, []byte(`"method":"initialize"`)):
		body = stubInitResult
		h["Mcp-Session-Id"] = []string{s.prefix + strconv.FormatInt(s.sessions.Add(1), 10)}
	case bytes.Contains(req, []byte(`"method":"tools/list"`)):
		body = s.List
	case !bytes.Contains(req, []byte(`"id":`)): // a notification
		status, body = http.StatusAccepted, nil
		delete(h, "Content-Type")
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	return &http.Response{
		StatusCode: status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r,
	}, nil
}

// benchRequest is one reusable request to a route, served through the
// gateway's ServeHTTP into a reusable writer: the loop allocates only what
// the gateway does.
type benchRequest struct {
	g    *Gateway
	req  *http.Request
	body *rewindBody
	w    benchWriter
	auth []string // the Authorization header's value slice, reused
	sid  []string // the Mcp-Session-Id value slice, reused
}

// newBenchRequest prepares a POST to url (a route's public URL) with the
// bearer token tok and, unless version is "", MCP-Protocol-Version.
func newBenchRequest(g *Gateway, url, tok, version string) *benchRequest {
	c := &benchRequest{g: g, body: &rewindBody{}, auth: []string{"Bearer " + tok}, sid: []string{""}}
	c.req = httptest.NewRequest(http.MethodPost, url, c.body)
	c.req.Header["Authorization"] = c.auth
	c.req.Header.Set("Content-Type", "application/json")
	c.req.Header.Set("Accept", "application/json, text/event-stream")
	c.req.Header.Set("User-Agent", "bench")
	if version != "" {
		c.req.Header.Set("Mcp-Protocol-Version", version)
	}
	return c
}

// setBearer replaces the Authorization header's value ("Bearer …")
// without allocating.
func (c *benchRequest) setBearer(authorization string) { c.auth[0] = authorization }

// setSession sets Mcp-Session-Id; "" removes it.
func (c *benchRequest) setSession(sid string) {
	if sid == "" {
		delete(c.req.Header, "Mcp-Session-Id")
		return
	}
	c.sid[0] = sid
	c.req.Header["Mcp-Session-Id"] = c.sid
}

// serve sends payload and returns the writer holding the answer, valid
// until the next serve.
func (c *benchRequest) serve(payload []byte) *benchWriter {
	c.body.Reset(payload)
	c.req.ContentLength = int64(len(payload))
	c.w.reset()
	c.g.ServeHTTP(&c.w, c.req)
	return &c.w
}

// mustServe is serve failing tb unless the answer is 200 with want (nil:
// any body).
func (c *benchRequest) mustServe(tb testing.TB, what string, payload, want []byte) *benchWriter {
	tb.Helper()
	w := c.serve(payload)
	if w.code != http.StatusOK || want != nil && !bytes.Equal(w.body.Bytes(), want) {
		tb.Fatalf("%s: status %d, body %.300s", what, w.code, w.body.Bytes())
	}
	return w
}

// benchGateway builds a gateway over cfg with a discarding audit sink and
// up as every route's upstream.
func benchGateway(tb testing.TB, cfg *config.Config, up http.RoundTripper) *Gateway {
	tb.Helper()
	cfg.ApplyDefaults()
	g, err := New(cfg, Deps{Audit: discardSink{}, UpstreamTransport: up})
	if err != nil {
		tb.Fatalf("gateway.New: %v", err)
	}
	tb.Cleanup(func() { _ = g.Close() })
	return g
}

// docsURL is the public URL of testConfig's docs route.
const docsURL = benchBase + "/servers/docs/mcp"

// aliceClaims are the claims of the tokens the benchmarks present.
func aliceClaims(route, scope string) testissuer.Claims {
	return testissuer.Claims{Subject: "alice", ClientID: "agent-1", Audience: []string{route}, Scope: scope}
}

// mintBearers mints n distinct tokens with claims c (each has its own
// jti) on every core and returns their Authorization header values.
func mintBearers(iss *testissuer.Issuer, n int, c testissuer.Claims, opts ...testissuer.MintOption) []string {
	out := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				out[i] = "Bearer " + iss.Mint(c, opts...)
			}
		})
	}
	wg.Wait()
	return out
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC() // finalizers queued by the first one have run
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// heapGrowth returns how much the live heap grew across fn, keeping
// what fn returns alive until measured. It is 0 if the heap shrank.
func heapGrowth(fn func() any) float64 {
	before := liveHeap()
	v := fn()
	after := liveHeap()
	runtime.KeepAlive(v)
	if after < before {
		return 0
	}
	return float64(after - before)
}

// benchAlgs are the algorithms the cold-path benchmarks sign with: one of
// each key family a deployment is likely to meet.
var benchAlgs = []string{"ES256", "RS256", "EdDSA"}

// BenchmarkColdToken is a tools/call whose token the gateway has never
// seen: every iteration presents a fresh token (own jti, same key), so the
// token cache misses and the signature is verified, the claims checked
// and the result cached. Keys and discovery are warm. Tokens are minted
// before the timer, b.N of them (RS256 minting dominates the wall time).
func BenchmarkColdToken(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run("alg="+alg, func(b *testing.B) {
			iss := testissuer.New(b, testissuer.Options{Alg: alg})
			up := newStubUpstream()
			g := benchGateway(b, testConfig(benchBase, iss.URL(), "http://docs.upstream.test/mcp", "http://mail.upstream.test/mcp"), up)
			claims := aliceClaims(docsURL, "docs:read")
			c := newBenchRequest(g, docsURL, iss.Mint(claims), v1125)
			c.mustServe(b, "warm-up", benchCall, stubCallResult) // discovery and keys
			bearers := mintBearers(iss, b.N, claims)
			mustBeDistinct(b, bearers, c.auth[0])
			fetches := iss.JWKSFetches()
			start := up.requests.Load()

			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.setBearer(bearers[i])
				if w := c.serve(benchCall); w.code != http.StatusOK {
					b.Fatalf("iteration %d: status %d: %s", i, w.code, w.body.Bytes())
				}
			}
			b.StopTimer()

			if got := up.requests.Load() - start; got != int64(b.N) {
				b.Fatalf("upstream answered %d calls, want %d", got, b.N)
			}
			if !bytes.Equal(c.w.body.Bytes(), stubCallResult) {
				b.Fatalf("last answer %s", c.w.body.Bytes())
			}
			if n := iss.JWKSFetches(); n != fetches {
				b.Fatalf("%d JWKS fetches during the benchmark: the path measured is not the cold-token one", n-fetches)
			}
		})
	}
}

// BenchmarkUnknownKID is a tools/call whose token is signed by a key the
// gateway has not loaded: the kid misses, the JWKS is fetched again over
// HTTP (the test issuer on loopback), parsed, and the token verified with
// the new key. unknown_kid_cooldown is set to 1ns so that every iteration
// refetches (the default, 30s, allows one refetch per 30s per issuer).
//
// The issuer rotates its keys once (testissuer.Rotate) and then publishes
// either the old key set or the new one, alternately: iteration i presents
// a fresh token signed by the set the gateway does not hold, so every
// iteration is an unknown kid, a refetch of a 5-key JWKS and a
// verification. (Rotating once per iteration would generate an RSA key
// per iteration; alternating two disjoint sets measures the same path.)
func BenchmarkUnknownKID(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run("alg="+alg, func(b *testing.B) {
			iss := testissuer.New(b, testissuer.Options{Alg: alg})
			up := newStubUpstream()
			cfg := testConfig(benchBase, iss.URL(), "http://docs.upstream.test/mcp", "http://mail.upstream.test/mcp")
			cfg.AuthorizationServers[0].UnknownKIDCooldown = 1 // 1ns: every miss refetches
			g := benchGateway(b, cfg, up)
			claims := aliceClaims(docsURL, "docs:read")

			half := (b.N + 1) / 2
			oldBearers := mintBearers(iss, half+1, claims) // +1 for the warm-up
			oldSet := iss.JWKS()
			iss.Rotate()
			newBearers := mintBearers(iss, half, claims)
			newSet := jwksWithout(b, iss.JWKS(), oldSet)
			sets := [2][]byte{newSet, oldSet}
			bearers := [2][]string{newBearers, oldBearers[1:]}

			mustBeDistinct(b, newBearers, oldBearers...)
			iss.SetJWKSBody(oldSet)
			c := newBenchRequest(g, docsURL, strings.TrimPrefix(oldBearers[0], "Bearer "), v1125)
			c.mustServe(b, "warm-up", benchCall, stubCallResult) // discovery and the old keys
			fetches := iss.JWKSFetches()
			start := up.requests.Load()

			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				iss.SetJWKSBody(sets[i%2]) // a mutex and an assignment
				c.setBearer(bearers[i%2][i/2])
				if w := c.serve(benchCall); w.code != http.StatusOK {
					b.Fatalf("iteration %d: status %d: %s", i, w.code, w.body.Bytes())
				}
			}
			b.StopTimer()

			if got := iss.JWKSFetches() - fetches; got != b.N {
				b.Fatalf("%d JWKS fetches for %d iterations: not every iteration refetched", got, b.N)
			}
			if got := up.requests.Load() - start; got != int64(b.N) {
				b.Fatalf("upstream answered %d calls, want %d", got, b.N)
			}
			if !bytes.Equal(c.w.body.Bytes(), stubCallResult) {
				b.Fatalf("last answer %s", c.w.body.Bytes())
			}
		})
	}
}

// mustBeDistinct fails tb if a token repeats in a and b: the token cache
// is keyed by the token's hash, so only a repeated token could hit it.
func mustBeDistinct(tb testing.TB, a []string, b ...string) {
	tb.Helper()
	seen := make(map[string]bool, len(a)+len(b))
	for _, s := range append(slices.Clip(a), b...) {
		if seen[s] {
			tb.Fatal("a token repeats: the cache would answer for it")
		}
		seen[s] = true
	}
}

// jwksWithout returns the JWKS doc without the keys (by kid) of other.
func jwksWithout(tb testing.TB, doc, other []byte) []byte {
	tb.Helper()
	type jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	var d, o jwks
	if err := json.Unmarshal(doc, &d); err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(other, &o); err != nil {
		tb.Fatal(err)
	}
	drop := map[any]bool{}
	for _, k := range o.Keys {
		drop[k["kid"]] = true
	}
	var out jwks
	for _, k := range d.Keys {
		if !drop[k["kid"]] {
			out.Keys = append(out.Keys, k)
		}
	}
	if len(out.Keys) == 0 || len(out.Keys) == len(d.Keys) {
		tb.Fatalf("rotation left %d of %d keys", len(out.Keys), len(d.Keys))
	}
	b, err := json.Marshal(out)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// sessionConfig is testConfig with the session caps out of the way of
// benchmarks that open many sessions for one principal.
func sessionConfig(issuer string, sessions int) *config.Config {
	cfg := testConfig(benchBase, issuer, "http://docs.upstream.test/mcp", "http://mail.upstream.test/mcp")
	cfg.Limits.MaxSessions = max(sessions, config.DefaultMaxSessions)
	cfg.Limits.MaxSessionsPerPrincipal = cfg.Limits.MaxSessions
	return cfg
}

// BenchmarkNewSession is an initialize through the gateway on 2025-11-25
// (the upstream assigns a new Mcp-Session-Id, which the gateway binds to
// the principal) followed by one tools/call on the new session. The token
// is cached.
func BenchmarkNewSession(b *testing.B) {
	iss := testissuer.New(b, testissuer.Options{})
	up := newStubUpstream()
	g := benchGateway(b, sessionConfig(iss.URL(), 1<<24), up)
	tok := iss.Mint(aliceClaims(docsURL, "docs:read"))
	ini := newBenchRequest(g, docsURL, tok, "")
	call := newBenchRequest(g, docsURL, tok, v1125)
	// open initializes a session and calls search on it; it returns the
	// session id ("" if none was assigned) and both answers.
	open := func() (string, *benchWriter, *benchWriter) {
		wi := ini.serve(benchInitialize)
		sid := wi.h.Get("Mcp-Session-Id")
		call.setSession(sid)
		return sid, wi, call.serve(benchCall)
	}
	if sid, wi, wc := open(); sid == "" || wi.code != http.StatusOK || wc.code != http.StatusOK || !bytes.Equal(wc.body.Bytes(), stubCallResult) {
		b.Fatalf("warm-up: initialize %d (session %q) %s; call %d %s", wi.code, sid, wi.body.Bytes(), wc.code, wc.body.Bytes())
	}
	sessions := g.sessionCount()

	b.ReportAllocs()
	n := 0
	for b.Loop() {
		sid, wi, wc := open()
		if sid == "" || wi.code != http.StatusOK || wc.code != http.StatusOK {
			b.Fatalf("iteration %d: initialize %d (session %q), call %d: %s", n, wi.code, sid, wc.code, wc.body.Bytes())
		}
		n++
	}
	b.StopTimer()

	if got := g.sessionCount() - sessions; got != n {
		b.Fatalf("%d sessions bound for %d iterations", got, n)
	}
	if !strings.HasPrefix(call.sid[0], up.prefix) || !bytes.Equal(call.w.body.Bytes(), stubCallResult) ||
		!bytes.Equal(ini.w.body.Bytes(), stubInitResult) {
		b.Fatalf("last exchange: session %q, initialize %s, call %s", call.sid[0], ini.w.body.Bytes(), call.w.body.Bytes())
	}
	if got, want := up.requests.Load(), int64(2*(n+1)); got != want {
		b.Fatalf("upstream answered %d requests, want %d", got, want)
	}
}

// catalogTools is how many tools BenchmarkToolsList500's upstream lists.
const catalogTools = 500

// catalogConfig allows even-numbered catalog tools with scope
// catalog:read and odd-numbered ones with catalog:admin.
func catalogConfig(issuer string, n int) *config.Config {
	cfg := testConfig(benchBase, issuer, "http://docs.upstream.test/mcp", "http://mail.upstream.test/mcp")
	tools := map[string]config.ItemRule{}
	for i := range n {
		scope := "catalog:read"
		if i%2 == 1 {
			scope = "catalog:admin"
		}
		tools[catalogName(i)] = config.ItemRule{Scopes: []string{scope}}
	}
	cfg.Routes[0].Tools = tools
	return cfg
}

func catalogName(i int) string { return fmt.Sprintf("tool_%03d", i) }

// catalogList is an upstream tools/list answer (id 2) of n tools, each
// with a description, an input schema and, for every third, annotations.
func catalogList(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":2,"result":{"tools":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":%q,"description":"Catalog operation %d: looks up records by key and returns them as text.",`+
			`"inputSchema":{"type":"object","properties":{"key":{"type":"string","description":"record key"},"limit":{"type":"integer","minimum":1,"maximum":100}},"required":["key"]}`,
			catalogName(i), i)
		if i%3 == 0 {
			b.WriteString(`,"annotations":{"readOnlyHint":true}`)
		}
		b.WriteByte('}')
	}
	b.WriteString(`]}}`)
	return []byte(b.String())
}

// listedNames returns the tool names of a tools/list answer.
func listedNames(tb testing.TB, answer []byte) []string {
	tb.Helper()
	var m struct {
		Result struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
		} `json:"result"`
	}
	if err := json.Unmarshal(answer, &m); err != nil {
		tb.Fatalf("tools/list answer: %v: %.300s", err, answer)
	}
	names := make([]string, len(m.Result.Tools))
	for i, t := range m.Result.Tools {
		names[i] = t.Name
	}
	return names
}

// BenchmarkToolsList500 is a tools/list whose upstream answer lists 500
// tools (about 150 KB), filtered by per-tool scopes down to the 250 the
// token may call; the gateway also learns the tools' annotations and pins
// their definitions (tool_pinning: alert, the default).
func BenchmarkToolsList500(b *testing.B) {
	iss := testissuer.New(b, testissuer.Options{})
	up := newStubUpstream()
	up.List = catalogList(catalogTools)
	g := benchGateway(b, catalogConfig(iss.URL(), catalogTools), up)
	c := newBenchRequest(g, docsURL, iss.Mint(aliceClaims(docsURL, "docs:read catalog:read")), v1125)
	check := func(what string) {
		names := listedNames(b, c.w.body.Bytes())
		if len(names) != catalogTools/2 {
			b.Fatalf("%s: %d tools listed, want %d", what, len(names), catalogTools/2)
		}
		for i, n := range names {
			if n != catalogName(2*i) {
				b.Fatalf("%s: tool %d is %s, want %s", what, i, n, catalogName(2*i))
			}
		}
	}
	c.mustServe(b, "warm-up", benchToolsList, nil)
	check("warm-up")
	start := up.requests.Load()
	b.SetBytes(int64(len(up.List)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if w := c.serve(benchToolsList); w.code != http.StatusOK {
			b.Fatalf("status %d: %.300s", w.code, w.body.Bytes())
		}
		n++
	}
	b.StopTimer()
	check("last answer")
	if got := up.requests.Load() - start; got != int64(n) {
		b.Fatalf("upstream answered %d lists, want %d", got, n)
	}
}

// idleSessions is how many sessions BenchmarkIdleSessionMemory opens.
const idleSessions = 10000

// idleSessionBudget is the most an idle session may hold (bytes of live
// heap per session).
const idleSessionBudget = 4096

// idleSessionBytes opens n sessions (initialize through the gateway)
// and returns the live heap they hold, in bytes per session. The token is
// cached and the gateway warmed up (one session) before the first
// measurement, so only what each session keeps is counted.
func idleSessionBytes(tb testing.TB, n int) float64 {
	tb.Helper()
	iss := testissuer.New(tb, testissuer.Options{})
	up := newStubUpstream()
	g := benchGateway(tb, sessionConfig(iss.URL(), n+1), up)
	c := newBenchRequest(g, docsURL, iss.Mint(aliceClaims(docsURL, "docs:read")), "")
	c.mustServe(tb, "warm-up", benchInitialize, stubInitResult)
	grown := heapGrowth(func() any {
		for i := range n {
			if w := c.serve(benchInitialize); w.code != http.StatusOK || w.h.Get("Mcp-Session-Id") == "" {
				tb.Fatalf("initialize %d: status %d, session %q: %s", i, w.code, w.h.Get("Mcp-Session-Id"), w.body.Bytes())
			}
		}
		return g
	})
	if got := g.sessionCount(); got != n+1 {
		tb.Fatalf("%d sessions bound, want %d", got, n+1)
	}
	return grown / float64(n)
}

// BenchmarkIdleSessionMemory reports the live heap an idle session holds
// (B/session, measured once over 10,000 sessions opened through the
// gateway) beside the cost of opening one (ns/op, B/op: an initialize).
func BenchmarkIdleSessionMemory(b *testing.B) {
	b.Run("sessions="+strconv.Itoa(idleSessions), func(b *testing.B) {
		perSession := idleSessionBytes(b, idleSessions)

		iss := testissuer.New(b, testissuer.Options{})
		up := newStubUpstream()
		g := benchGateway(b, sessionConfig(iss.URL(), 1<<24), up)
		c := newBenchRequest(g, docsURL, iss.Mint(aliceClaims(docsURL, "docs:read")), "")
		c.mustServe(b, "warm-up", benchInitialize, stubInitResult)
		before := g.sessionCount()
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			if w := c.serve(benchInitialize); w.code != http.StatusOK {
				b.Fatalf("initialize: status %d: %s", w.code, w.body.Bytes())
			}
			n++
		}
		b.StopTimer()
		if got := g.sessionCount() - before; got != n {
			b.Fatalf("%d sessions bound for %d initializes", got, n)
		}
		b.ReportMetric(perSession, "B/session")
	})
}

// TestIdleSessionMemoryBudget: an idle session holds at most 4 KiB of
// live heap (5,000 sessions opened through the gateway; the smaller of
// two measurements, against collector noise).
func TestIdleSessionMemoryBudget(t *testing.T) {
	const n = 5000
	got := min(idleSessionBytes(t, n), idleSessionBytes(t, n))
	t.Logf("%.0f bytes of live heap per idle session", got)
	if got > idleSessionBudget {
		t.Errorf("an idle session holds %.0f bytes of live heap, over the %d-byte budget", got, idleSessionBudget)
	}
	if got <= 0 {
		t.Errorf("measured %.0f bytes per session: the measurement saw no sessions", got)
	}
}
