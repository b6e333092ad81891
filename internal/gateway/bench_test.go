package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/testissuer"
)

// cannedTransport answers every upstream request with one JSON-RPC result,
// without a network: the benchmark measures the gateway alone.
type cannedTransport struct{ body []byte }

func (c cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(c.body))}},
		Body:          io.NopCloser(bytes.NewReader(c.body)),
		ContentLength: int64(len(c.body)),
		Request:       r,
	}, nil
}

// discardSink accepts every record (the sink's own cost is not the
// gateway's).
type discardSink struct{}

func (discardSink) Write(context.Context, *audit.Event) error { return nil }
func (discardSink) Close() error                              { return nil }
func (discardSink) BoundsWrites() bool                        { return true } // never waits

// benchWriter is a reusable http.ResponseWriter with the deadline methods
// of a server connection (an httptest.ResponseRecorder has none, and
// http.ResponseController builds an error for each call it cannot make).
type benchWriter struct {
	h    http.Header
	code int
	body bytes.Buffer
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *benchWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.body.Write(b)
}
func (w *benchWriter) Flush()                           {}
func (w *benchWriter) SetReadDeadline(time.Time) error  { return nil }
func (w *benchWriter) SetWriteDeadline(time.Time) error { return nil }

// reset readies w for the next request.
func (w *benchWriter) reset() {
	if w.h == nil {
		w.h = http.Header{}
	}
	clear(w.h)
	w.code = 0
	w.body.Reset()
}

// rewindBody is a request body that can be replayed without allocating.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// hotPath returns a function serving BenchmarkServeHTTP's request: one
// tools/call through the whole pipeline with a cached token (strict
// decode, authn cache hit, policy, audit decision and outcome, proxy with
// the header allow-list, response relay), the upstream canned. The first
// call (discovery, keys, token verification) is made and checked.
func hotPath(tb testing.TB) func() *benchWriter {
	iss := testissuer.New(tb, testissuer.Options{})
	base := "http://127.0.0.1:8443"
	cfg := testConfig(base, iss.URL(), "http://docs.upstream.test/mcp", "http://mail.upstream.test/mcp")
	canned := []byte(`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"results for q"}]}}`)
	g, err := New(cfg, Deps{Audit: discardSink{}, UpstreamTransport: cannedTransport{body: canned}})
	if err != nil {
		tb.Fatal(err)
	}
	tok := iss.Mint(testissuer.Claims{Subject: "alice", ClientID: "agent-1", Audience: []string{base + "/servers/docs/mcp"}, Scope: "docs:read"})
	return replay(tb, g, "Bearer "+tok, canned)
}

// bareProxy returns a function serving the same request through a bare
// httputil.ReverseProxy on the same canned transport: the allocations of
// the scaffolding and the standard library's proxy.
func bareProxy(tb testing.TB) func() *benchWriter {
	target, _ := url.Parse("http://docs.upstream.test/mcp")
	canned := []byte(`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"results for q"}]}}`)
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.URL.Path = target.Path },
		Transport: cannedTransport{body: canned},
	}
	return replay(tb, proxy, "Bearer x", canned)
}

// replay returns a function that serves one reused request to h with a
// reused writer, after checking the first answer is want.
func replay(tb testing.TB, h http.Handler, authz string, want []byte) func() *benchWriter {
	payload := []byte(toolsCall(7, "search", `{"text":"q"}`))
	body := &rewindBody{}
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8443/servers/docs/mcp", body)
	req.Header.Set("Authorization", authz)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", v1125)
	req.Header.Set("User-Agent", "bench")
	w := &benchWriter{}
	serve := func() *benchWriter {
		body.Reset(payload)
		req.ContentLength = int64(len(payload))
		w.reset()
		h.ServeHTTP(w, req)
		return w
	}
	if w := serve(); w.code != http.StatusOK || !bytes.Equal(w.body.Bytes(), want) {
		tb.Fatalf("first request: %d %s", w.code, w.body.Bytes())
	}
	return serve
}

// BenchmarkServeHTTP is one tools/call through the whole pipeline with a
// cached token (see hotPath). Its allocations minus
// BenchmarkServeHTTPBareProxy's are mcpgate's own:
//
//	go test ./internal/gateway -run '^$' -bench 'ServeHTTP$|BareProxy' -benchmem
func BenchmarkServeHTTP(b *testing.B) {
	serve := hotPath(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if w := serve(); w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkServeHTTPBareProxy is BenchmarkServeHTTP's request through a
// bare httputil.ReverseProxy (see bareProxy).
func BenchmarkServeHTTPBareProxy(b *testing.B) {
	serve := bareProxy(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if w := serve(); w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkServeHTTPAudit is BenchmarkServeHTTP with each audit sink, run
// by 32 concurrent clients (b.SetParallelism): audit off (a discarding
// sink), the chained stream sink, and the file sink with fsync always
// (group commit) and every interval. Compare ns/op within one run:
//
//	go test ./internal/gateway -run '^$' -bench ServeHTTPAudit -count 6
func BenchmarkServeHTTPAudit(b *testing.B) {
	iss := testissuer.New(b, testissuer.Options{})
	base := "http://127.0.0.1:8443"
	tok := iss.Mint(testissuer.Claims{Subject: "alice", ClientID: "agent-1", Audience: []string{base + "/servers/docs/mcp"}, Scope: "docs:read"})
	payload := []byte(toolsCall(7, "search", `{"text":"q"}`))
	canned := []byte(`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"results for q"}]}}`)
	for _, tc := range []struct {
		name string
		sink func(dir string) (audit.Sink, error)
	}{
		{"off", func(string) (audit.Sink, error) { return discardSink{}, nil }},
		{"stream", func(string) (audit.Sink, error) { return audit.NewStreamSink(io.Discard, audit.StreamConfig{}) }},
		{"file-always", func(dir string) (audit.Sink, error) {
			return audit.OpenFileSink(audit.FileConfig{Path: dir + "/a.jsonl", Fsync: audit.FsyncAlways})
		}},
		{"file-interval", func(dir string) (audit.Sink, error) {
			return audit.OpenFileSink(audit.FileConfig{Path: dir + "/a.jsonl", Fsync: audit.FsyncPeriodic})
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			sink, err := tc.sink(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			cfg := testConfig(base, iss.URL(), "http://docs.upstream.test/mcp", "http://mail.upstream.test/mcp")
			g, err := New(cfg, Deps{Audit: sink, UpstreamTransport: cannedTransport{body: canned}})
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			serve := func() int {
				req := httptest.NewRequest(http.MethodPost, base+"/servers/docs/mcp", bytes.NewReader(payload))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Mcp-Protocol-Version", v1125)
				w := httptest.NewRecorder()
				g.ServeHTTP(w, req)
				return w.Code
			}
			if c := serve(); c != http.StatusOK {
				b.Fatalf("warm-up: %d", c)
			}
			b.ReportAllocs()
			b.SetParallelism(16) // 32 clients on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if c := serve(); c != http.StatusOK {
						b.Errorf("status %d", c)
						return
					}
				}
			})
		})
	}
}
