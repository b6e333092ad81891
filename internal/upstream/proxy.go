// Package upstream forwards an authorized MCP request to the MCP server
// behind a route (stage 6 of the pipeline) and streams the answer back.
//
// It is an httputil.ReverseProxy (Rewrite, never Director) with three
// properties a plain reverse proxy lacks:
//
//   - The request body sent upstream is always the exact bytes the gateway
//     already read and inspected, never the inbound connection's body. This
//     is what mcpgate checked, and it is also the fix for a hang: Go's HTTP/1
//     server consumes and closes an unread request body as soon as the
//     response starts, and if the proxy's transport is still inside its own
//     read of that body (the post-copy EOF check in transferWriter.writeBody)
//     it gets "http: invalid Read on closed Body", treats it as a write
//     error and closes the upstream connection mid-stream ("use of closed
//     network connection", a truncated or never-ending SSE response). See
//     docs/security.md and TestInboundBodyClosedMidStream.
//   - Request headers are forwarded by allow-list: the MCP headers,
//     content negotiation and tracing headers, and what the route names.
//     Authorization, cookies, hop-by-hop and client-supplied identity
//     headers never reach the upstream, and upstream Set-Cookie and
//     WWW-Authenticate never reach the client.
//   - Responses pass through per-request hooks: a JSON body can be
//     transformed as a whole (bounded), an SSE stream event by event without
//     buffering the stream.
package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// Config configures the proxy for one route.
type Config struct {
	// URL is the upstream MCP endpoint. Required.
	URL *url.URL
	// ForwardHeaders names extra request headers to forward. The caller
	// validates that none of them is a credential or hop-by-hop header.
	ForwardHeaders []string
	// ResponseHeaderTimeout bounds the wait for response headers. 0 → 2m.
	ResponseHeaderTimeout time.Duration
	// DialTimeout bounds connecting. 0 → 5s.
	DialTimeout time.Duration
	// TLS is used for https upstreams; nil → system roots.
	TLS *tls.Config
	// MaxResponseBytes bounds a JSON body passed to a Hooks.JSON transform
	// and a single SSE event passed to Hooks.Event. 0 → 16 MiB.
	MaxResponseBytes int64
}

// Deps are the proxy's injected dependencies.
type Deps struct {
	// Logger receives upstream errors. nil → discard.
	Logger *slog.Logger
	// Transport overrides the HTTP transport (tests). nil → built from Config.
	Transport http.RoundTripper
}

// Proxy forwards requests for one route.
type Proxy struct {
	target  *url.URL
	allowed map[string]bool // canonical header names forwarded as they are
	maxResp int64
	rp      *httputil.ReverseProxy
	log     *slog.Logger
}

// Hooks observe and transform one response. Every field is optional.
type Hooks struct {
	// Response is called with the response headers before anything is sent
	// to the client. Returning an error turns the response into a 502.
	Response func(resp *http.Response) error
	// JSON, when set, receives a whole application/json body (at most
	// MaxResponseBytes) and returns the body to send.
	JSON func(body []byte) ([]byte, error)
	// Event, when set, receives the data of each SSE event (data lines
	// joined by "\n") and returns the data to send: nil keeps the event,
	// an empty non-nil slice drops it whole.
	Event func(data []byte) ([]byte, error)
	// EventField, when set with Event, receives every other line of an
	// event stream (comments, id, event, retry, unknown fields) without
	// its line ending; returning false drops the line.
	EventField func(line []byte) (bool, error)
	// Raw, when set, receives a whole response body that is neither JSON
	// nor an event stream (at most MaxResponseBytes; a larger one fails
	// with 502) and returns the body to send.
	Raw func(body []byte) ([]byte, error)
	// Done is called once when the response body has been fully relayed or
	// abandoned, with the number of body bytes relayed and the copy error.
	Done func(n int64, err error)
	// RequestHeader holds headers set on the upstream request after the
	// allow-list copy, replacing any of the same name: the credential the
	// upstream receives.
	RequestHeader http.Header
}

// Handler receives what Forward learns of one exchange. [Hooks] is the
// implementation with function fields; a caller that keeps its
// per-request state in one value can implement Handler on it and spare a
// closure per hook.
type Handler interface {
	// UpstreamHeader returns the headers set on the upstream request after
	// the allow-list copy (Hooks.RequestHeader); nil for none.
	UpstreamHeader() http.Header
	// Inspects reports which bodies are handed to OnJSON, OnEvent (with
	// OnEventField) and OnRaw; a body of a kind not inspected is relayed
	// as it comes.
	Inspects() (json, event, raw bool)
	// OnResponse, OnJSON, OnEvent, OnEventField, OnRaw and OnDone are the
	// hooks Response, JSON, Event, EventField, Raw and Done of Hooks.
	OnResponse(resp *http.Response) error
	OnJSON(body []byte) ([]byte, error)
	OnEvent(data []byte) ([]byte, error)
	OnEventField(line []byte) (bool, error)
	OnRaw(body []byte) ([]byte, error)
	OnDone(n int64, err error)
}

var _ Handler = (*Hooks)(nil)

// UpstreamHeader implements Handler.
func (h *Hooks) UpstreamHeader() http.Header { return h.RequestHeader }

// Inspects implements Handler: a kind of body is inspected when its hook
// is set.
func (h *Hooks) Inspects() (json, event, raw bool) {
	return h.JSON != nil, h.Event != nil, h.Raw != nil
}

// OnResponse implements Handler.
func (h *Hooks) OnResponse(resp *http.Response) error {
	if h.Response == nil {
		return nil
	}
	return h.Response(resp)
}

// OnJSON implements Handler.
func (h *Hooks) OnJSON(body []byte) ([]byte, error) { return h.JSON(body) }

// OnEvent implements Handler.
func (h *Hooks) OnEvent(data []byte) ([]byte, error) { return h.Event(data) }

// OnEventField implements Handler: without EventField every line is kept.
func (h *Hooks) OnEventField(line []byte) (bool, error) {
	if h.EventField == nil {
		return true, nil
	}
	return h.EventField(line)
}

// OnRaw implements Handler.
func (h *Hooks) OnRaw(body []byte) ([]byte, error) { return h.Raw(body) }

// OnDone implements Handler.
func (h *Hooks) OnDone(n int64, err error) {
	if h.Done != nil {
		h.Done(n, err)
	}
}

// Error is a failure to obtain an upstream response.
type Error struct {
	Status int   // 502 or 504
	Err    error // cause, logged, never sent to the client
}

func (e *Error) Error() string { return fmt.Sprintf("upstream: %d: %v", e.Status, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// New builds a proxy from cfg.
func New(cfg Config, deps Deps) (*Proxy, error) {
	if cfg.URL == nil || (cfg.URL.Scheme != "http" && cfg.URL.Scheme != "https") || cfg.URL.Host == "" {
		return nil, errors.New("upstream: URL must be an absolute http or https URL")
	}
	if cfg.ResponseHeaderTimeout == 0 {
		cfg.ResponseHeaderTimeout = 2 * time.Minute
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = 16 << 20
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{
		target:  cfg.URL,
		allowed: map[string]bool{},
		maxResp: cfg.MaxResponseBytes,
		log:     log,
	}
	for _, h := range defaultForwardHeaders {
		p.allowed[http.CanonicalHeaderKey(h)] = true
	}
	for _, h := range cfg.ForwardHeaders {
		p.allowed[http.CanonicalHeaderKey(h)] = true
	}
	tr := deps.Transport
	if tr == nil {
		tr = NewTransport(cfg)
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:   p.rewrite,
		Transport: tr,
		// 0: ReverseProxy itself flushes every write of an event stream and
		// of any response without a Content-Length, so SSE events leave as
		// they arrive; a JSON body of known length needs no flushes.
		FlushInterval:  0,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		BufferPool:     newBufferPool(),
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return p, nil
}

// NewTransport returns the HTTP transport used for an upstream: bounded
// dial and header timeouts, no compression (streams must not be buffered
// by a compressor, and inspected bodies must be plain), no environment
// proxy.
func NewTransport(cfg Config) *http.Transport {
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:            d.DialContext,
		TLSClientConfig:        cfg.TLS,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  cfg.ResponseHeaderTimeout,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    256,
		IdleConnTimeout:        90 * time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      cfg.TLS != nil,
	}
}

// defaultForwardHeaders are forwarded on every route: the MCP transport
// headers (Mcp-Param-* is matched by prefix), content negotiation and trace
// context. Accept-Encoding is deliberately absent (see NewTransport).
var defaultForwardHeaders = []string{
	"Mcp-Session-Id", "Mcp-Protocol-Version", "Last-Event-Id", "Mcp-Method", "Mcp-Name",
	"Accept", "Accept-Language", "Content-Type", "User-Agent",
	"Traceparent", "Tracestate", "Baggage",
}

// Forwards reports whether the request header name (canonical form) is
// forwarded to the upstream.
func (p *Proxy) Forwards(name string) bool {
	return p.allowed[name] || strings.HasPrefix(name, "Mcp-Param-")
}

type hooksKey struct{}

// Forward sends body (already read and checked by the caller; nil for GET
// and DELETE) to the upstream with r's method and allowed headers, and
// relays the response to w. It returns once the response has been relayed
// or the client went away.
func (p *Proxy) Forward(w http.ResponseWriter, r *http.Request, body []byte, h *Hooks) {
	if h == nil {
		h = &Hooks{}
	}
	p.ForwardTo(r.Context(), w, r, body, h)
}

// ForwardTo is Forward with a Handler, the upstream request made under
// ctx (r's context or one derived from it).
func (p *Proxy) ForwardTo(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte, h Handler) {
	out := r.WithContext(context.WithValue(ctx, hooksKey{}, h))
	out.Body, out.ContentLength, out.GetBody = newBody(body)
	out.TransferEncoding = nil
	// The reverse proxy clones the request's headers: hand it only those
	// the upstream receives.
	out.Header = p.upstreamHeader(r.Header, h)
	f := &finalOnly{ResponseWriter: w}
	f.save(w.Header())
	p.rp.ServeHTTP(f, out)
}

// finalOnly keeps informational (1xx) responses from the client. The
// reverse proxy relays them as they arrive, before ModifyResponse sees the
// final response, so their headers would escape every check; it also
// clears the header map after each one, so the headers the gateway set
// (request id, CORS) are restored for the final response.
type finalOnly struct {
	http.ResponseWriter
	saved []savedHeader // the gateway's headers, shared slices: they are only read
	buf   [8]savedHeader
	wrote bool
}

type savedHeader struct {
	name   string
	values []string
}

// save remembers h's entries without copying their values: the reverse
// proxy clears the map after a 1xx response but never writes into the
// value slices the gateway set.
func (f *finalOnly) save(h http.Header) {
	f.saved = f.buf[:0]
	for k, vs := range h {
		f.saved = append(f.saved, savedHeader{k, vs})
	}
}

func (f *finalOnly) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		return
	}
	f.restore()
	f.ResponseWriter.WriteHeader(code)
}

func (f *finalOnly) Write(b []byte) (int, error) {
	f.restore()
	return f.ResponseWriter.Write(b)
}

func (f *finalOnly) restore() {
	if f.wrote {
		return
	}
	f.wrote = true
	h := f.ResponseWriter.Header()
	for _, sv := range f.saved {
		if _, ok := h[sv.name]; !ok {
			h[sv.name] = sv.values
		}
	}
}

// Unwrap lets http.ResponseController reach the connection (flushes).
func (f *finalOnly) Unwrap() http.ResponseWriter { return f.ResponseWriter }

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	u := *p.target
	pr.Out.URL = &u
	pr.Out.Host = ""
	// pr.Out.Header is the reverse proxy's copy of upstreamHeader's
	// result, less hop-by-hop and forwarding headers; the credential is
	// set last, whatever its name.
	if h, _ := pr.In.Context().Value(hooksKey{}).(Handler); h != nil {
		for k, vs := range h.UpstreamHeader() {
			pr.Out.Header[http.CanonicalHeaderKey(k)] = vs
		}
	}
}

// upstreamHeader returns the allow-listed headers of in and an explicit
// User-Agent; rewrite adds h's (the credential), replacing any of the
// same name.
func (p *Proxy) upstreamHeader(in http.Header, h Handler) http.Header {
	out := make(http.Header, len(in))
	for k, vs := range in {
		if p.Forwards(k) {
			out[k] = vs
		}
	}
	// Set explicitly so the transport never adds defaults of its own.
	if _, ok := out["User-Agent"]; !ok {
		out["User-Agent"] = []string{""}
	}
	if h != nil {
		// A credential header replaces a forwarded one of the same name.
		for k := range h.UpstreamHeader() {
			delete(out, http.CanonicalHeaderKey(k))
		}
	}
	return out
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	resp.Header.Del("Set-Cookie")
	resp.Header.Del("Set-Cookie2")
	resp.Header.Del("WWW-Authenticate")
	h, _ := resp.Request.Context().Value(hooksKey{}).(Handler)
	if h == nil {
		return nil
	}
	if err := h.OnResponse(resp); err != nil {
		return err
	}
	ct := MediaType(resp.Header.Get("Content-Type"))
	inspectJSON, inspectEvent, inspectRaw := h.Inspects()
	inspected := inspectJSON || inspectEvent || inspectRaw
	if ce := resp.Header.Get("Content-Encoding"); inspected && ce != "" && !strings.EqualFold(ce, "identity") {
		// The transport asks for identity (no Accept-Encoding); a body
		// encoded anyway cannot be inspected, so it is not relayed.
		return &Refusal{Message: "the upstream MCP server sent a compressed response, which mcpgate cannot inspect",
			Err: fmt.Errorf("Content-Encoding %q", ce)}
	}
	// Trailers are never relayed: they would reach the client after the
	// body was inspected, uninspected themselves.
	resp.Trailer = nil
	switch {
	case ct == "text/event-stream":
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		if resp.Header.Get("X-Accel-Buffering") == "" {
			resp.Header.Set("X-Accel-Buffering", "no")
		}
		if inspectEvent {
			resp.Body = newEventStream(resp.Body, h.OnEvent, h.OnEventField, p.maxResp, h.OnDone)
		} else {
			resp.Body = newEventStream(resp.Body, nil, nil, p.maxResp, h.OnDone)
		}
		resp.Body = &noTrailers{ReadCloser: resp.Body, resp: resp}
	case ct == "application/json" && inspectJSON:
		if err := transformJSON(resp, h.OnJSON, p.maxResp); err != nil {
			return err
		}
		resp.Body = &doneBody{ReadCloser: resp.Body, h: h, resp: resp}
	case ct != "application/json" && inspectRaw:
		if err := transformJSON(resp, h.OnRaw, p.maxResp); err != nil {
			return err
		}
		resp.Body = &doneBody{ReadCloser: resp.Body, h: h, resp: resp}
	default:
		resp.Body = &doneBody{ReadCloser: resp.Body, h: h, resp: resp}
	}
	return nil
}

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	h, _ := r.Context().Value(hooksKey{}).(Handler)
	if r.Context().Err() != nil {
		// The client went away (or the stream was cut, e.g. at token
		// expiry); there is nobody to answer.
		if h != nil {
			h.OnDone(0, r.Context().Err())
		}
		return
	}
	status := http.StatusBadGateway
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		status = http.StatusGatewayTimeout
	}
	p.log.LogAttrs(r.Context(), slog.LevelWarn, "upstream request failed",
		slog.String("upstream", p.target.Host), slog.Int("status", status), slog.String("error", err.Error()))
	if h != nil {
		h.OnDone(0, &Error{Status: status, Err: err})
	}
	var refused *Refusal
	if errors.As(err, &refused) {
		writeError(w, status, refused.Message)
		return
	}
	WriteUnavailable(w, status)
}

// Refusal is an error a Hooks.Response or transform returns when the
// upstream's answer must not be relayed, with the message the client gets
// (in a 502 JSON-RPC error) instead of the generic one.
type Refusal struct {
	Message string // for the client
	Err     error  // for logs
}

func (e *Refusal) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Refusal) Unwrap() error { return e.Err }

// WriteUnavailable writes a JSON-RPC error (id null) for a failed upstream.
func WriteUnavailable(w http.ResponseWriter, status int) {
	msg := "the upstream MCP server did not answer; try again later"
	if status == http.StatusGatewayTimeout {
		msg = "the upstream MCP server did not answer in time; try again later"
	}
	writeError(w, status, msg)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":%q}}`, msg)
}

// MediaType returns the lower-case media type of a Content-Type value.
func MediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}
