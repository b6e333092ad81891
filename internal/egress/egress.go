// Package egress is the guarded HTTP client for every outbound call mcpgate
// makes to an authorization server: metadata discovery, JWKS, introspection
// and, later, token exchange.
//
// The guard is against server-side request forgery, because the URLs it
// fetches come partly from remote documents (a jwks_uri or an
// introspection_endpoint in authorization server metadata):
//
//   - https only; plain http only to a loopback address, and only with the
//     development flag AllowHTTPLoopback;
//   - no redirects: a 3xx answer is an error;
//   - every connection is checked after name resolution (net.Dialer.Control),
//     so a DNS answer cannot steer it into a refused range. Refused: link-local
//     (169.254.0.0/16, which holds the cloud metadata service, and fe80::/10),
//     unspecified, multicast, reserved and a few known metadata addresses;
//     loopback unless AllowHTTPLoopback;
//   - private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) are allowed on
//     purpose: authorization servers often live on the cluster network. Keep
//     the configured issuer list short and trusted;
//   - no proxy from the environment (HTTPS_PROXY and friends are ignored,
//     since the guard would then check the proxy instead of the target);
//   - a timeout on the whole request and a cap on the response body: a larger
//     body is an error, never silently truncated;
//   - errors carry at most a short sanitized excerpt of a response body.
package egress

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults applied by New to zero-valued Config fields.
const (
	DefaultTimeout          = 5 * time.Second
	DefaultMaxResponseBytes = 1 << 20
)

// maxExcerpt bounds the response body excerpt kept in a StatusError.
const maxExcerpt = 64

// Sentinel errors; match them with errors.Is.
var (
	// ErrURLNotAllowed: the URL is not absolute https (or http to loopback
	// with AllowHTTPLoopback), or carries user info.
	ErrURLNotAllowed = errors.New("url not allowed")
	// ErrAddressNotAllowed: the dial guard refused the resolved address.
	ErrAddressNotAllowed = errors.New("address not allowed")
	// ErrRedirect: the server answered with a redirect, which is never followed.
	ErrRedirect = errors.New("redirect refused")
	// ErrTooLarge: the response body exceeded MaxResponseBytes.
	ErrTooLarge = errors.New("response too large")
)

// StatusError reports an unexpected HTTP status from GetJSON.
type StatusError struct {
	StatusCode int
	// Excerpt is at most 64 bytes of the body, with anything but printable
	// ASCII replaced by '?'.
	Excerpt string
}

func (e *StatusError) Error() string {
	if e.Excerpt == "" {
		return "unexpected status " + strconv.Itoa(e.StatusCode)
	}
	return fmt.Sprintf("unexpected status %d: %q", e.StatusCode, e.Excerpt)
}

// Config configures a Client. The zero value is usable: https only, 5 s
// timeout, 1 MiB bodies, system roots.
type Config struct {
	// Timeout bounds a whole request, body included. 0 → 5s.
	Timeout time.Duration
	// MaxResponseBytes caps a response body; a larger one is an error.
	// 0 → 1 MiB.
	MaxResponseBytes int64
	// AllowHTTPLoopback is for DEVELOPMENT ONLY: it permits plain http:// to
	// 127.0.0.0/8, ::1 and localhost (and https to loopback). Default false:
	// https only, loopback refused.
	AllowHTTPLoopback bool
	// RootCAs verifies server certificates. nil → the system pool.
	RootCAs *x509.CertPool
}

// Client is a guarded HTTP client. It is safe for concurrent use.
type Client struct {
	timeout  time.Duration
	maxBytes int64
	https    *http.Client
	http     *http.Client // nil unless AllowHTTPLoopback
}

// New validates cfg, applies defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	var errs []error
	if cfg.Timeout < 0 {
		errs = append(errs, errors.New("egress: timeout must not be negative"))
	}
	if cfg.MaxResponseBytes < 0 {
		errs = append(errs, errors.New("egress: max response bytes must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	c := &Client{
		timeout:  cfg.Timeout,
		maxBytes: cfg.MaxResponseBytes,
		https:    newHTTPClient(cfg, control(cfg.AllowHTTPLoopback, false)),
	}
	if cfg.AllowHTTPLoopback {
		c.http = newHTTPClient(cfg, control(true, true))
	}
	return c, nil
}

func newHTTPClient(cfg Config, ctl func(string, string, syscall.RawConn) error) *http.Client {
	d := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second, Control: ctl}
	t := &http.Transport{
		Proxy:                  nil, // never from the environment: see the package doc
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    cfg.Timeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           32,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
	}
	return &http.Client{
		Transport: t,
		// Redirects are never followed; the 3xx response comes back to us
		// and is turned into ErrRedirect.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// CloseIdleConnections closes idle keep-alive connections.
func (c *Client) CloseIdleConnections() {
	c.https.CloseIdleConnections()
	if c.http != nil {
		c.http.CloseIdleConnections()
	}
}

// GetJSON fetches rawURL and decodes a 200 response's JSON body into v.
// Any other status is a *StatusError; a 3xx is ErrRedirect.
func (c *Client) GetJSON(ctx context.Context, rawURL string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, hc, err := c.newRequest(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	status, body, err := c.do(hc, req)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("get %s: %w", redact(req.URL), &StatusError{StatusCode: status, Excerpt: excerpt(body)})
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("get %s: decode json: %w", redact(req.URL), err)
	}
	return nil
}

// PostForm posts form as application/x-www-form-urlencoded with the extra
// header and returns the status and body of any non-redirect response; the
// caller interprets the status. The body may hold sensitive data echoed by
// the server (a token sent for introspection, say): callers must not put it
// in errors or logs.
func (c *Client) PostForm(ctx context.Context, rawURL string, form url.Values, header http.Header) (status int, body []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, hc, err := c.newRequest(ctx, http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	return c.do(hc, req)
}

// newRequest checks rawURL against the scheme rules and picks the client.
func (c *Client) newRequest(ctx context.Context, method, rawURL string, body io.Reader) (*http.Request, *http.Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: unparsable", ErrURLNotAllowed)
	}
	if u.User != nil {
		return nil, nil, fmt.Errorf("%w: user info in %s", ErrURLNotAllowed, redact(u))
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, nil, fmt.Errorf("%w: not an absolute url", ErrURLNotAllowed)
	}
	var hc *http.Client
	switch u.Scheme {
	case "https":
		hc = c.https
	case "http":
		if c.http == nil || !isLoopbackHost(u.Hostname()) {
			return nil, nil, fmt.Errorf("%w: %s is not https", ErrURLNotAllowed, redact(u))
		}
		hc = c.http
	default:
		return nil, nil, fmt.Errorf("%w: scheme %q", ErrURLNotAllowed, u.Scheme)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrURLNotAllowed, err)
	}
	req.Header.Set("User-Agent", "mcpgate")
	return req, hc, nil
}

// do sends req and reads at most maxBytes of the body.
func (c *Client) do(hc *http.Client, req *http.Request) (int, []byte, error) {
	where := strings.ToLower(req.Method) + " " + redact(req.URL)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", where, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return 0, nil, fmt.Errorf("%s: %w (status %d)", where, ErrRedirect, resp.StatusCode)
	}
	if resp.ContentLength > c.maxBytes {
		return 0, nil, fmt.Errorf("%s: %w (content-length %d > %d)", where, ErrTooLarge, resp.ContentLength, c.maxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBytes+1))
	if err != nil {
		return 0, nil, fmt.Errorf("%s: read body: %w", where, err)
	}
	if int64(len(body)) > c.maxBytes {
		return 0, nil, fmt.Errorf("%s: %w (more than %d bytes)", where, ErrTooLarge, c.maxBytes)
	}
	return resp.StatusCode, body, nil
}

// unwrapURLError drops *url.Error's own prefix (method and full URL, query
// included), since do already names the request.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// isLoopbackHost reports whether host is localhost or a loopback literal.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// redact renders u without user info, query or fragment, for errors.
func redact(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return r.String()
}

// excerpt returns a short, printable-ASCII-only prefix of body.
func excerpt(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) > maxExcerpt {
		body = body[:maxExcerpt]
	}
	b := make([]byte, len(body))
	for i, c := range body {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b[i] = c
	}
	return string(b)
}

// HTTPClient returns a standard *http.Client with the same guard, for
// libraries that take one (the token endpoint client): the scheme and
// address rules, no redirects and no environment proxy hold. The response
// size cap does not (the caller bounds its reads); the timeout does.
func (c *Client) HTTPClient() *http.Client {
	return &http.Client{
		Transport:     guarded{c},
		Timeout:       c.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// guarded applies the URL rules of newRequest to every request.
type guarded struct{ c *Client }

func (g guarded) RoundTrip(req *http.Request) (*http.Response, error) {
	u := req.URL
	if u.User != nil || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: %s", ErrURLNotAllowed, redact(u))
	}
	switch {
	case u.Scheme == "https":
		return g.c.https.Transport.RoundTrip(req)
	case u.Scheme == "http" && g.c.http != nil && isLoopbackHost(u.Hostname()):
		return g.c.http.Transport.RoundTrip(req)
	}
	return nil, fmt.Errorf("%w: %s is not https", ErrURLNotAllowed, redact(u))
}
