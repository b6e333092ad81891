package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestInboundBodyClosedMidStream is the deterministic regression test for
// the proxy hang seen in the MCP conformance run (tools-call-with-logging):
// a plain httputil.ReverseProxy now and then cut an SSE response short, with
// "use of closed network connection" in its log.
//
// Root cause: the reverse proxy hands the inbound request body to its
// transport, whose write loop, after copying Content-Length bytes, reads the
// body once more to check for extra data. The upstream can answer before
// that read happens. When the proxy then flushes the response headers, Go's
// HTTP/1 server (not in full-duplex mode) consumes the rest of the request
// body and closes it. The write loop's pending read then fails with "http:
// invalid Read on closed Body", the transport treats that as a failed
// request write and closes the upstream connection, and the streamed
// response dies mid-way.
//
// The test makes the losing interleaving certain: a transport wrapper holds
// the write loop's post-copy read until the response headers have been
// flushed to the client. A plain reverse proxy then loses the event the
// upstream sends afterwards; mcpgate's proxy, which forwards bytes it owns,
// relays it.
func TestInboundBodyClosedMidStream(t *testing.T) {
	for _, tc := range []struct {
		name      string
		wantEvent bool
		serve     func(rt http.RoundTripper, target *url.URL) http.Handler
	}{
		{
			name:      "plain ReverseProxy loses the stream",
			wantEvent: false,
			serve: func(rt http.RoundTripper, target *url.URL) http.Handler {
				return &httputil.ReverseProxy{
					Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
					Transport:     rt,
					FlushInterval: -1,
					ErrorLog:      discardLog(),
				}
			},
		},
		{
			name:      "mcpgate proxy relays the stream",
			wantEvent: true,
			serve: func(rt http.RoundTripper, target *url.URL) http.Handler {
				p, err := New(Config{URL: target}, Deps{Transport: rt})
				if err != nil {
					t.Fatal(err)
				}
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					body, err := io.ReadAll(r.Body)
					if err != nil {
						t.Errorf("read body: %v", err)
						return
					}
					p.Forward(w, r, body, &Hooks{})
				})
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flushed := make(chan struct{}) // response headers reached the client
			var flushOnce sync.Once

			rt := &gateBodyTransport{base: http.DefaultTransport.(*http.Transport).Clone(), open: flushed, readErr: make(chan error, 1)}
			defer rt.base.CloseIdleConnections()
			upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, err := io.ReadAll(r.Body); err != nil {
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				// Wait for the proxy transport's post-copy body read. If it
				// failed, the transport tears this connection down: wait
				// for that instead of racing it with the event.
				select {
				case err := <-rt.readErr:
					if err != io.EOF {
						<-r.Context().Done()
						return
					}
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n")
			}))
			defer upstream.Close()
			target, _ := url.Parse(upstream.URL)
			front := httptest.NewServer(flushSignal(tc.serve(rt, target), func() { flushOnce.Do(func() { close(flushed) }) }))
			defer front.Close()

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", front.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(bufio.NewReader(resp.Body))
			gotEvent := strings.Contains(string(got), `"result"`)
			if ctx.Err() != nil {
				t.Fatalf("the response never ended (the hang): %q", got)
			}
			if gotEvent != tc.wantEvent {
				t.Fatalf("event relayed = %v, want %v; body %q", gotEvent, tc.wantEvent, got)
			}
			// The root cause itself: the transport's late read of the body.
			wantErr := error(io.EOF)
			if !tc.wantEvent {
				wantErr = http.ErrBodyReadAfterClose
			}
			if err := rt.gatedErr(); !errors.Is(err, wantErr) {
				t.Fatalf("transport's post-copy body read returned %v, want %v", err, wantErr)
			}
		})
	}
}

// gateBodyTransport delays the transport's read of the request body that
// follows the last Content-Length byte until open is closed.
type gateBodyTransport struct {
	base    *http.Transport
	open    chan struct{}
	readErr chan error // the gated read's result, sent once

	mu      sync.Mutex // guards lastErr
	lastErr error      // the same result, kept for the test's assertion
}

func (g *gateBodyTransport) gatedErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastErr
}

func (g *gateBodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &gatedBody{rc: r.Body, left: r.ContentLength, open: g.open, done: func(err error) {
			g.mu.Lock()
			g.lastErr = err
			g.mu.Unlock()
			g.readErr <- err
		}}
	}
	return g.base.RoundTrip(r)
}

type gatedBody struct {
	rc    io.ReadCloser
	left  int64
	open  chan struct{}
	done  func(error)
	gated bool
}

func (b *gatedBody) Read(p []byte) (int, error) {
	if b.left > 0 {
		n, err := b.rc.Read(p)
		b.left -= int64(n)
		return n, err
	}
	<-b.open
	n, err := b.rc.Read(p)
	if !b.gated {
		b.gated = true
		b.done(err)
	}
	return n, err
}

func (b *gatedBody) Close() error { return b.rc.Close() }

// flushSignal calls onFlush after the first flush of the response reached
// the connection.
func flushSignal(h http.Handler, onFlush func()) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&signalWriter{ResponseWriter: w, onFlush: onFlush}, r)
	})
}

type signalWriter struct {
	http.ResponseWriter
	onFlush func()
}

func (s *signalWriter) Flush() {
	http.NewResponseController(s.ResponseWriter).Flush()
	s.onFlush()
}

func (s *signalWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }
