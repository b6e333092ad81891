package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newProxy(t *testing.T, upstreamURL string, cfg Config) *Proxy {
	t.Helper()
	u, err := url.Parse(upstreamURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.URL = u
	p, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// front serves p with the request body read up front, as the gateway does.
func front(t *testing.T, p *Proxy, hooks func() *Hooks) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Method == http.MethodPost {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				t.Errorf("read body: %v", err)
				return
			}
			body = b
		}
		h := &Hooks{}
		if hooks != nil {
			h = hooks()
		}
		p.Forward(w, r, body, h)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestHeaderAllowList(t *testing.T) {
	var got http.Header
	var gotBody []byte
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		gotBody, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Set-Cookie", "upstream=1")
		w.Header().Set("WWW-Authenticate", `Bearer realm="upstream"`)
		w.Header().Set("Mcp-Session-Id", "abc")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	defer up.Close()
	p := newProxy(t, up.URL+"/mcp", Config{ForwardHeaders: []string{"X-Tenant"}})
	s := front(t, p, nil)

	token := "eyJ" + strings.Repeat("a", 40) // built at run time; must never reach upstream
	body := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	req, _ := http.NewRequest("POST", s.URL+"/servers/x/mcp?access_token=leak", strings.NewReader(body))
	for k, v := range map[string]string{
		"Authorization":        "Bearer " + token,
		"Proxy-Authorization":  "Basic Zm9vOmJhcg==",
		"Cookie":               "session=secret",
		"X-Forwarded-For":      "10.0.0.1",
		"X-Forwarded-Host":     "evil.example",
		"X-Forwarded-User":     "admin",
		"X-Remote-User":        "admin",
		"X-Auth-Request-Email": "admin@example.com",
		"Forwarded":            "for=1.2.3.4",
		"X-Hop":                "dropped via Connection",
		"Connection":           "X-Hop",
		"Content-Type":         "application/json",
		"Accept":               "application/json, text/event-stream",
		"Mcp-Session-Id":       "abc",
		"Mcp-Protocol-Version": "2025-11-25",
		"Mcp-Method":           "ping",
		"Mcp-Param-Region":     "eu",
		"Last-Event-Id":        "7",
		"Traceparent":          "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"X-Tenant":             "acme",
		"Accept-Encoding":      "gzip",
	} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	want := []string{"Accept", "Content-Length", "Content-Type", "Last-Event-Id", "Mcp-Method", "Mcp-Param-Region",
		"Mcp-Protocol-Version", "Mcp-Session-Id", "Traceparent", "User-Agent", "X-Tenant"}
	var names []string
	for k := range got {
		names = append(names, k)
	}
	if diff := cmp.Diff(want, sorted(names)); diff != "" {
		t.Errorf("forwarded headers (-want +got):\n%s", diff)
	}
	if string(gotBody) != body {
		t.Errorf("upstream body = %q, want the exact bytes %q", gotBody, body)
	}
	for k, vs := range got {
		for _, v := range vs {
			if strings.Contains(v, token) || strings.Contains(v, "secret") {
				t.Errorf("header %s carries a credential", k)
			}
		}
	}
	if c := resp.Header.Get("Set-Cookie"); c != "" {
		t.Errorf("upstream Set-Cookie relayed: %q", c)
	}
	if c := resp.Header.Get("WWW-Authenticate"); c != "" {
		t.Errorf("upstream WWW-Authenticate relayed: %q", c)
	}
	if resp.Header.Get("Mcp-Session-Id") != "abc" {
		t.Errorf("Mcp-Session-Id not relayed")
	}
}

func TestUpstreamPathAndQuery(t *testing.T) {
	var gotURL string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotURL = r.URL.String()
	}))
	defer up.Close()
	s := front(t, newProxy(t, up.URL+"/mcp", Config{}), nil)
	resp, err := http.Post(s.URL+"/servers/docs/mcp?x=1", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if gotURL != "/mcp" {
		t.Errorf("upstream URL = %q, want /mcp (route path and query never forwarded)", gotURL)
	}
}

// TestSSEStreamsEventByEvent proves that events are relayed as they are
// produced: the upstream writes its second event only after the client has
// received the first, which deadlocks (and fails at the guard) if the proxy
// buffered.
func TestSSEStreamsEventByEvent(t *testing.T) {
	received := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "id: 1\ndata: {\"n\":1}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-received:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "id: 2\ndata: {\"n\":2}\n\n")
	}))
	defer up.Close()
	s := front(t, newProxy(t, up.URL, Config{}), func() *Hooks {
		return &Hooks{Event: func(b []byte) ([]byte, error) { return nil, nil }}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL, strings.NewReader("{}"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Errorf("X-Accel-Buffering = %q, want no", resp.Header.Get("X-Accel-Buffering"))
	}
	buf := make([]byte, 0, 64)
	for !bytes.Contains(buf, []byte("\n\n")) {
		tmp := make([]byte, 64)
		n, err := resp.Body.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			t.Fatalf("first event not relayed before the stream ended: %v (%q)", err, buf)
		}
	}
	close(received)
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read rest: %v", err)
	}
	if got := string(buf) + string(rest); got != "id: 1\ndata: {\"n\":1}\n\nid: 2\ndata: {\"n\":2}\n\n" {
		t.Errorf("stream = %q", got)
	}
}

func TestSSETransform(t *testing.T) {
	stream := ": keep-alive\n\nid: 7\nevent: message\ndata: {\"a\":\ndata: 1}\nretry: 500\n\ndata: keep\n\n"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		io.WriteString(w, stream)
	}))
	defer up.Close()
	var seen []string
	var done struct {
		mu  sync.Mutex
		n   int64
		err error
		hit int
	}
	s := front(t, newProxy(t, up.URL, Config{}), func() *Hooks {
		return &Hooks{
			Event: func(b []byte) ([]byte, error) {
				seen = append(seen, string(b))
				if strings.HasPrefix(string(b), "{") {
					return []byte(`{"a":2}`), nil
				}
				return nil, nil
			},
			Done: func(n int64, err error) {
				done.mu.Lock()
				defer done.mu.Unlock()
				done.n, done.err = n, err
				done.hit++
			},
		}
	})
	resp, err := http.Post(s.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := ": keep-alive\n\nid: 7\nevent: message\ndata: {\"a\":2}\nretry: 500\n\ndata: keep\n\n"
	if string(got) != want {
		t.Errorf("stream:\n got %q\nwant %q", got, want)
	}
	if diff := cmp.Diff([]string{"{\"a\":\n1}", "keep"}, seen); diff != "" {
		t.Errorf("event data seen (-want +got):\n%s", diff)
	}
	done.mu.Lock()
	defer done.mu.Unlock()
	if done.hit != 1 || done.err != nil || done.n != int64(len(want)) {
		t.Errorf("Done called %d times with (%d, %v), want once with (%d, nil)", done.hit, done.n, done.err, len(want))
	}
}

func TestSSEEventTooLarge(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: small\n\n")
		io.WriteString(w, "data: "+strings.Repeat("x", 100<<10)+"\n\n")
	}))
	defer up.Close()
	s := front(t, newProxy(t, up.URL, Config{MaxResponseBytes: 64 << 10}), func() *Hooks {
		return &Hooks{Event: func([]byte) ([]byte, error) { return nil, nil }}
	})
	resp, err := http.Post(s.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != "data: small\n\n" {
		t.Errorf("stream = %.40q…, want only the small event before the stream is cut", got)
	}
}

func TestJSONTransform(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"tools":[1,2,3]}}`)
	}))
	defer up.Close()
	for _, tc := range []struct {
		name       string
		f          func([]byte) ([]byte, error)
		max        int64
		wantStatus int
		wantBody   string
	}{
		{"replaced", func([]byte) ([]byte, error) { return []byte(`{"x":1}`), nil }, 0, 200, `{"x":1}`},
		{"transform error fails closed", func([]byte) ([]byte, error) { return nil, errors.New("cannot filter") }, 0, 502, "-32603"},
		{"too large to inspect fails closed", func(b []byte) ([]byte, error) { return b, nil }, 10, 502, "-32603"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := front(t, newProxy(t, up.URL, Config{MaxResponseBytes: tc.max}), func() *Hooks { return &Hooks{JSON: tc.f} })
			resp, err := http.Post(s.URL, "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(got), tc.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, got, tc.wantStatus, tc.wantBody)
			}
			if tc.wantStatus == 200 && resp.ContentLength != int64(len(tc.wantBody)) {
				t.Errorf("Content-Length = %d, want %d", resp.ContentLength, len(tc.wantBody))
			}
		})
	}
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	started := make(chan struct{})
	cancelled := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {}\n\n")
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
		close(cancelled)
	}))
	defer up.Close()
	s := front(t, newProxy(t, up.URL, Config{}), nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	cancel()
	resp.Body.Close()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("upstream request not cancelled after the client went away")
	}
}

func TestUpstreamFailures(t *testing.T) {
	// A listener that is closed at once: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + l.Addr().String()
	l.Close()

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // lets the server notice the proxy hanging up
		<-r.Context().Done()
	}))
	defer slow.Close()

	for _, tc := range []struct {
		name string
		url  string
		cfg  Config
		want int
	}{
		{"unreachable", deadURL, Config{}, http.StatusBadGateway},
		{"response header timeout", slow.URL, Config{ResponseHeaderTimeout: 50 * time.Millisecond}, http.StatusGatewayTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var doneErr error
			s := front(t, newProxy(t, tc.url, tc.cfg), func() *Hooks {
				return &Hooks{Done: func(_ int64, err error) { doneErr = err }}
			})
			resp, err := http.Post(s.URL, "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || !strings.Contains(string(body), `"code":-32603`) {
				t.Errorf("got %d %s, want %d with a JSON-RPC error", resp.StatusCode, body, tc.want)
			}
			var ue *Error
			if !errors.As(doneErr, &ue) || ue.Status != tc.want {
				t.Errorf("Done error = %v, want *Error with status %d", doneErr, tc.want)
			}
		})
	}
}

func sorted(s []string) []string {
	return slices.Sorted(slices.Values(s))
}

// TestRequestHeaderReplacesForwarded checks that the credential the
// gateway attaches replaces whatever the client sent under that name, and
// that the client's own Authorization never reaches the upstream.
func TestRequestHeaderReplacesForwarded(t *testing.T) {
	var got http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer up.Close()
	p := newProxy(t, up.URL, Config{ForwardHeaders: []string{"X-Api-Key"}})
	s := front(t, p, func() *Hooks {
		return &Hooks{RequestHeader: http.Header{"Authorization": {"Bearer upstream-credential"}, "x-api-key": {"gateway-key"},
			// A name the reverse proxy strips from requests: the
			// credential is set after it has.
			"X-Forwarded-For": {"forwarded-credential"}}}
	})
	req, _ := http.NewRequest(http.MethodPost, s.URL, strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer client-token")
	req.Header.Set("X-Api-Key", "client-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if a := got.Values("Authorization"); !slices.Equal(a, []string{"Bearer upstream-credential"}) {
		t.Errorf("Authorization = %q", a)
	}
	if k := got.Values("X-Api-Key"); !slices.Equal(k, []string{"gateway-key"}) {
		t.Errorf("X-Api-Key = %q", k)
	}
	if k := got.Values("X-Forwarded-For"); !slices.Equal(k, []string{"forwarded-credential"}) {
		t.Errorf("X-Forwarded-For = %q", k)
	}
}

// TestRawTransform checks that a body that is neither JSON nor SSE goes
// through the Raw hook, bounded, failing closed.
func TestRawTransform(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "boom: secret-value")
	}))
	defer up.Close()
	for _, tc := range []struct {
		name       string
		f          func([]byte) ([]byte, error)
		max        int64
		wantStatus int
		wantBody   string
	}{
		{"replaced", func(b []byte) ([]byte, error) { return bytes.ReplaceAll(b, []byte("secret-value"), []byte("[x]")), nil }, 0, 500, "boom: [x]"},
		{"error fails closed", func([]byte) ([]byte, error) { return nil, errors.New("no") }, 0, 502, "-32603"},
		{"too large fails closed", func(b []byte) ([]byte, error) { return b, nil }, 5, 502, "-32603"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := front(t, newProxy(t, up.URL, Config{MaxResponseBytes: tc.max}), func() *Hooks { return &Hooks{Raw: tc.f} })
			resp, err := http.Post(s.URL, "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(got), tc.wantBody) || strings.Contains(string(got), "secret-value") {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, got, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

// TestInformationalResponsesNotRelayed: a 1xx the upstream sends (with
// headers) never reaches the client, and the headers the gateway set
// before forwarding survive the proxy's handling of it.
func TestInformationalResponsesNotRelayed(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</secret-token-in-hint>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	defer up.Close()
	p := newProxy(t, up.URL, Config{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "rid-1")
		p.Forward(w, r, []byte("{}"), &Hooks{JSON: func(b []byte) ([]byte, error) { return b, nil }})
	}))
	defer s.Close()
	var got1xx []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
		got1xx = append(got1xx, code)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodPost, s.URL, strings.NewReader("{}"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(got1xx) != 0 {
		t.Errorf("the client received informational responses %v", got1xx)
	}
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") != "rid-1" || resp.Header.Get("Link") != "" {
		t.Errorf("final response %d, X-Request-Id %q, Link %q", resp.StatusCode, resp.Header.Get("X-Request-Id"), resp.Header.Get("Link"))
	}
}

// TestTrailersNotRelayed: upstream trailers (declared or not) never reach
// the client, on JSON and on event streams.
func TestTrailersNotRelayed(t *testing.T) {
	for _, ct := range []string{"application/json", "text/event-stream"} {
		t.Run(ct, func(t *testing.T) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-Declared")
				w.Header().Set("Content-Type", ct)
				if ct == "application/json" {
					io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
				} else {
					io.WriteString(w, "data: {}\n\n")
				}
				w.Header().Set("X-Declared", "leak-1")
				w.Header().Set(http.TrailerPrefix+"X-Undeclared", "leak-2")
			}))
			defer up.Close()
			s := front(t, newProxy(t, up.URL, Config{}), func() *Hooks {
				return &Hooks{JSON: func(b []byte) ([]byte, error) { return b, nil }, Event: func([]byte) ([]byte, error) { return nil, nil }}
			})
			resp, err := http.Post(s.URL, "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
			if len(resp.Trailer) != 0 {
				t.Errorf("trailers relayed: %v", resp.Trailer)
			}
		})
	}
}

// TestEncodedResponsesRefused: an inspected response with a
// Content-Encoding cannot be inspected and is refused with 502.
func TestEncodedResponsesRefused(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "\x1f\x8b compressed")
	}))
	defer up.Close()
	s := front(t, newProxy(t, up.URL, Config{}), func() *Hooks {
		return &Hooks{Raw: func(b []byte) ([]byte, error) { return b, nil }}
	})
	resp, err := http.Post(s.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "compressed response") || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("got %d %q (Content-Encoding %q), want a 502 refusal", resp.StatusCode, body, resp.Header.Get("Content-Encoding"))
	}
}
