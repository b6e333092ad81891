package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

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

// rewindBody is a request body that can be replayed without allocating.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// BenchmarkServeHTTP is one tools/call through the whole pipeline with a
// cached token: strict decode, authn (cache hit), policy, audit decision
// and outcome, proxy with the header allow-list, response relay.
func BenchmarkServeHTTP(b *testing.B) {
	iss := testissuer.New(b, testissuer.Options{})
	base := "http://127.0.0.1:8443"
	cfg := testConfig(base, iss.URL(), "http://docs.upstream.test/mcp", "http://mail.upstream.test/mcp")
	canned := []byte(`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"results for q"}]}}`)
	g, err := New(cfg, Deps{Audit: discardSink{}, UpstreamTransport: cannedTransport{body: canned}})
	if err != nil {
		b.Fatal(err)
	}
	tok := iss.Mint(testissuer.Claims{Subject: "alice", ClientID: "agent-1", Audience: []string{base + "/servers/docs/mcp"}, Scope: "docs:read"})
	payload := []byte(toolsCall(7, "search", `{"text":"q"}`))

	body := &rewindBody{}
	req := httptest.NewRequest(http.MethodPost, base+"/servers/docs/mcp", body)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", v1125)
	req.Header.Set("User-Agent", "bench")
	serve := func() *httptest.ResponseRecorder {
		body.Reset(payload)
		req.ContentLength = int64(len(payload))
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req)
		return w
	}
	// Warm up: fetches discovery and keys, caches the verified token.
	if w := serve(); w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), canned) {
		b.Fatalf("warm-up: %d %s", w.Code, w.Body.Bytes())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if w := serve(); w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
