// This file implements the client of an authorization server's token
// endpoint shared by ModeExchange and ModeClientCredentials: client
// authentication (RFC 6749 §2.3.1), the form POST, strict parsing of the
// answer (RFC 6749 §5.1, §5.2; RFC 8693 §2.2), endpoint discovery (RFC 8414,
// OpenID Connect Discovery) and a circuit breaker per endpoint.
// See https://www.rfc-editor.org/rfc/rfc6749#section-5 and
// https://www.rfc-editor.org/rfc/rfc8693#section-2.2.

package credential

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/mcpgate/mcpgate/internal/secret"
	"github.com/sony/gobreaker/v2"
)

// Client authentication methods at the token endpoint (RFC 6749 §2.3.1).
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
)

// Token endpoint defaults and limits.
const (
	// DefaultTokenEndpointTimeout bounds one token request (and one
	// discovery fetch), body included.
	DefaultTokenEndpointTimeout = 10 * time.Second
	// MaxTokenResponseBytes caps a token endpoint answer; a larger one is
	// an invalid answer, never silently truncated.
	MaxTokenResponseBytes = 64 << 10
	// DefaultBreakerFailures is how many consecutive Unavailable-class
	// failures open the circuit.
	DefaultBreakerFailures = 5
	// DefaultBreakerOpenTimeout is how long the circuit stays open before
	// one trial request is let through (half-open).
	DefaultBreakerOpenTimeout = 30 * time.Second
	// AssumedTokenLifetime is the lifetime assumed for a token whose answer
	// has no expires_in (RFC 6749 §5.1 only RECOMMENDS it). One minute is
	// deliberately short: it bounds how long such a token is cached, and an
	// upstream that sees it expire earlier answers 401 only until then.
	AssumedTokenLifetime = time.Minute
	// maxTokenLifetime caps expires_in; a longer lifetime is cached as if
	// it were this (shorter caching is always safe).
	maxTokenLifetime = 366 * 24 * time.Hour
	// maxMetadataBytes caps an authorization server metadata document.
	maxMetadataBytes = 1 << 20
)

// Token type URNs (RFC 8693 §3).
const (
	tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	grantTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	grantClientCreds     = "client_credentials"
)

// TokenEndpointConfig configures a TokenEndpoint. It is validated by
// NewTokenEndpoint.
type TokenEndpointConfig struct {
	// TokenURL is the token endpoint (absolute http or https URL, no user
	// information or fragment). "" → discovered from Issuer on first use.
	TokenURL string
	// Issuer is the authorization server's issuer identifier. Required when
	// TokenURL is "": its metadata is fetched from
	// /.well-known/oauth-authorization-server (RFC 8414 §3.1, path
	// inserted), then /.well-known/openid-configuration, and its "issuer"
	// must equal Issuer byte for byte.
	Issuer string
	// ClientID is mcpgate's client at the authorization server. Required.
	ClientID string
	// ClientSecret returns that client's secret. It is called for every
	// token request, so a rotated secret is picked up (plug in a watched
	// file, or ClientSecretFile). Required.
	ClientSecret func() ([]byte, error)
	// AuthMethod is AuthClientSecretBasic (default) or AuthClientSecretPost.
	AuthMethod string
	// HTTPClient sends the requests. Redirects are never followed and no
	// cookie jar is used, whatever it says. nil → a client on
	// http.DefaultTransport.
	HTTPClient *http.Client
	// Timeout bounds one request, body included. 0 → 10s.
	Timeout time.Duration
	// BreakerFailures is how many consecutive failures of the
	// Unavailable kind open the circuit. 0 → 5.
	BreakerFailures uint32
	// BreakerOpenTimeout is how long the circuit stays open before a trial
	// request (half-open); its success closes the circuit. 0 → 30s.
	BreakerOpenTimeout time.Duration
	// OnCall, when set, is called after every token request with its kind
	// ("token_exchange" or "client_credentials"), its duration and the
	// error when the server failed (nil for a refusal), for metrics.
	OnCall func(call string, d time.Duration, err error)
	// Logger receives one line per failure and breaker state change, and a
	// debug line per issued token. Tokens appear only as a fingerprint (the
	// first 16 hex digits of their SHA-256); secrets, subject tokens and
	// error descriptions never do. nil → discard.
	Logger *slog.Logger
}

// TokenEndpoint is a client of one authorization server's token endpoint,
// for one client identity. It is safe for concurrent use; routes that use
// the same authorization server and client should share one, so that they
// share its circuit breaker.
type TokenEndpoint struct {
	issuer     string
	clientID   string
	secret     func() ([]byte, error)
	authMethod string
	hc         *http.Client
	timeout    time.Duration
	log        *slog.Logger
	onCall     func(call string, d time.Duration, err error)
	breaker    *gobreaker.CircuitBreaker[tokenEndpointResponse]

	tokenURL   atomic.Pointer[string] // configured or discovered
	discoverMu sync.Mutex             // one discovery at a time
}

// tokenEndpointResponse is a successful token response, checked.
type tokenEndpointResponse struct {
	AccessToken string
	// Lifetime is expires_in, or AssumedTokenLifetime when absent.
	Lifetime        time.Duration
	LifetimeAssumed bool
	// Scopes are the granted scopes; nil when the answer has no scope
	// (then they are those requested, RFC 6749 §5.1).
	Scopes          []string
	IssuedTokenType string
}

// ClientSecretFile returns a TokenEndpointConfig.ClientSecret that reads
// the secret file at path (secret.ReadFile) at every call.
func ClientSecretFile(path string) func() ([]byte, error) {
	return func() ([]byte, error) { return secret.ReadFile(path) }
}

// NewTokenEndpoint validates cfg, reporting every problem at once, and
// returns the client. It makes no request: discovery happens on first use.
func NewTokenEndpoint(cfg TokenEndpointConfig) (*TokenEndpoint, error) {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case cfg.TokenURL != "":
		if err := checkEndpointURL(cfg.TokenURL); err != nil {
			add("token url: %w", err)
		}
	case cfg.Issuer == "":
		add("either a token url or an issuer (for discovery) is required")
	}
	if cfg.Issuer != "" {
		if err := checkEndpointURL(cfg.Issuer); err != nil {
			add("issuer: %w", err)
		}
	}
	if cfg.ClientID == "" || !printable(cfg.ClientID) {
		add("client id is required and must be printable")
	}
	if cfg.ClientSecret == nil {
		add("client secret is required")
	}
	switch cfg.AuthMethod {
	case "", AuthClientSecretBasic, AuthClientSecretPost:
	default:
		add("auth method must be %s or %s, not %q", AuthClientSecretBasic, AuthClientSecretPost, cfg.AuthMethod)
	}
	if cfg.Timeout < 0 {
		add("timeout must not be negative")
	}
	if cfg.BreakerOpenTimeout < 0 {
		add("breaker open timeout must not be negative")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(errors.New("credential: invalid token endpoint config"), err)
	}

	e := &TokenEndpoint{
		issuer: cfg.Issuer, clientID: cfg.ClientID, secret: cfg.ClientSecret,
		authMethod: cfg.AuthMethod, timeout: cfg.Timeout, log: cfg.Logger, onCall: cfg.OnCall,
	}
	if e.authMethod == "" {
		e.authMethod = AuthClientSecretBasic
	}
	if e.timeout == 0 {
		e.timeout = DefaultTokenEndpointTimeout
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		*hc = *cfg.HTTPClient
	}
	hc.Jar = nil
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	e.hc = hc
	name := cfg.TokenURL
	if name != "" {
		e.tokenURL.Store(&name)
	} else {
		name = cfg.Issuer
	}
	e.log = e.log.With("authorization_server", name)

	failures := cfg.BreakerFailures
	if failures == 0 {
		failures = DefaultBreakerFailures
	}
	openTimeout := cfg.BreakerOpenTimeout
	if openTimeout == 0 {
		openTimeout = DefaultBreakerOpenTimeout
	}
	e.breaker = gobreaker.NewCircuitBreaker[tokenEndpointResponse](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     openTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		// A refusal (4xx with an error code) proves the server is up.
		IsSuccessful: func(err error) bool { return err == nil || IsDenied(err) },
		// A caller that went away says nothing about the server.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			e.log.Warn("credential: token endpoint circuit breaker changed state", "from", from.String(), "to", to.String())
		},
	})
	return e, nil
}

// State is the circuit breaker's state, for metrics: "closed", "open" or
// "half-open".
func (e *TokenEndpoint) State() string { return e.breaker.State().String() }

// request posts form (grant_type included) with client authentication and
// returns the checked answer. op names the grant in messages ("token
// exchange"); exchange allows token_type N_A. Every error is an *Error.
func (e *TokenEndpoint) request(ctx context.Context, op string, form url.Values, exchange bool) (tokenEndpointResponse, error) {
	sec, err := e.secret()
	if err != nil || len(sec) == 0 {
		if err == nil {
			err = errors.New("the client secret is empty")
		}
		e.log.Error("credential: cannot read the client secret", "err", err)
		return tokenEndpointResponse{}, &Error{Kind: Unavailable,
			Message: "mcpgate cannot read its client secret for the authorization server", Err: err}
	}
	start := time.Now()
	resp, err := e.breaker.Execute(func() (tokenEndpointResponse, error) {
		return e.send(ctx, op, form, string(sec), exchange)
	})
	if e.onCall != nil {
		call := "client_credentials"
		if exchange {
			call = "token_exchange"
		}
		// A refusal is an answer, not a failure of the server.
		var failed error
		if err != nil && !IsDenied(err) {
			failed = err
		}
		e.onCall(call, time.Since(start), failed)
	}
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return tokenEndpointResponse{}, &Error{Kind: Unavailable,
			Message: "the authorization server is unavailable (circuit open); try again later", Err: err}
	}
	return resp, err
}

// send makes one token request. It runs inside the circuit breaker.
func (e *TokenEndpoint) send(ctx context.Context, op string, form url.Values, sec string, exchange bool) (tokenEndpointResponse, error) {
	endpoint, err := e.endpoint(ctx)
	if err != nil {
		e.log.Warn("credential: token endpoint discovery failed", "err", err)
		return tokenEndpointResponse{}, &Error{Kind: Unavailable,
			Message: "the authorization server is unavailable (its token endpoint cannot be discovered)", Err: err}
	}
	body := make(url.Values, len(form)+2)
	for k, v := range form {
		body[k] = v
	}
	if e.authMethod == AuthClientSecretPost {
		body.Set("client_id", e.clientID)
		body.Set("client_secret", sec)
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body.Encode()))
	if err != nil {
		return tokenEndpointResponse{}, &Error{Kind: Unavailable, Message: "the authorization server is unavailable", Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "mcpgate")
	if e.authMethod == AuthClientSecretBasic {
		// RFC 6749 §2.3.1: form-urlencode id and secret, then Basic.
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString(
			[]byte(url.QueryEscape(e.clientID)+":"+url.QueryEscape(sec))))
	}
	status, raw, err := e.do(req)
	if err != nil {
		msg := "the authorization server is unavailable (no answer)"
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "the authorization server did not answer in time"
		}
		e.log.Warn("credential: token request failed", "grant", op, "err", err)
		return tokenEndpointResponse{}, &Error{Kind: Unavailable, Message: msg, Err: err}
	}
	resp, err := parseTokenEndpointResponse(status, raw, op, exchange)
	var ce *Error
	switch {
	case err == nil:
		e.log.Debug("credential: token issued", "grant", op, "token_id", shortHash(resp.AccessToken),
			"expires_in", resp.Lifetime.String(), "expires_in_assumed", resp.LifetimeAssumed)
	case errors.As(err, &ce) && ce.Kind == Denied:
		e.log.Warn("credential: the authorization server refused a token request", "grant", op, "status", status, "err", ce.Err)
	default:
		e.log.Warn("credential: token request failed", "grant", op, "status", status, "err", err)
	}
	return resp, err
}

// do sends req and reads at most MaxTokenResponseBytes+1 of the answer.
// Errors name neither the request body nor the answer.
func (e *TokenEndpoint) do(req *http.Request) (int, []byte, error) {
	resp, err := e.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the method and URL
		}
		return 0, nil, fmt.Errorf("post token endpoint: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxTokenResponseBytes+1))
	if err != nil {
		return 0, nil, fmt.Errorf("read token endpoint answer: %w", err)
	}
	return resp.StatusCode, b, nil
}

// parseTokenEndpointResponse classifies and checks a token endpoint
// answer. A 200 must be a valid RFC 6749 §5.1 response; a 400, 401 or 403
// with an error code is a refusal (Denied), except invalid_client and
// unauthorized_client, which refuse mcpgate itself (Unavailable, counted by
// the breaker); anything else is Unavailable.
// Errors never carry the body, a token or the error_description.
func parseTokenEndpointResponse(status int, body []byte, op string, exchange bool) (tokenEndpointResponse, error) {
	invalid := func(format string, args ...any) (tokenEndpointResponse, error) {
		return tokenEndpointResponse{}, &Error{Kind: Unavailable,
			Message: "the authorization server sent an invalid answer", Err: fmt.Errorf("status %d: "+format, append([]any{status}, args...)...)}
	}
	if len(body) > MaxTokenResponseBytes {
		return invalid("answer larger than %d bytes", MaxTokenResponseBytes)
	}
	switch {
	case status == http.StatusOK:
	case status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden:
		code, ok := errorCode(body)
		if !ok {
			return invalid("refusal without an error code")
		}
		if code == "invalid_client" || code == "unauthorized_client" {
			// mcpgate's own client is refused (a wrong or rotated secret,
			// a grant not allowed): not the user's doing, and every call
			// will fail alike until an operator fixes it.
			return tokenEndpointResponse{}, &Error{Kind: Unavailable,
				Message: "the authorization server refused mcpgate's own client (" + code + ")",
				Err:     fmt.Errorf("status %d, error %s", status, code)}
		}
		return tokenEndpointResponse{}, &Error{Kind: Denied,
			Message: "the authorization server refused the " + op + " (" + code + ")",
			Err:     fmt.Errorf("status %d, error %s", status, code)}
	default:
		return tokenEndpointResponse{}, &Error{Kind: Unavailable,
			Message: "the authorization server is unavailable (HTTP " + strconv.Itoa(status) + ")",
			Err:     fmt.Errorf("status %d", status)}
	}

	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return invalid("not a JSON object")
	}
	str := func(name string) (string, bool, error) {
		v, ok := obj[name]
		if !ok || string(v) == "null" {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", false, fmt.Errorf("%s is not a string", name)
		}
		return s, true, nil
	}
	var r tokenEndpointResponse
	tok, ok, err := str("access_token")
	if err != nil {
		return invalid("%w", err)
	}
	if !ok || tok == "" {
		return invalid("no access_token")
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c < 0x21 || c > 0x7e {
			return invalid("access_token holds a character not allowed in a header")
		}
	}
	r.AccessToken = tok

	if r.IssuedTokenType, _, err = str("issued_token_type"); err != nil {
		return invalid("%w", err)
	}
	// RFC 8693 §2.2.1 requires issued_token_type; a server that omits it
	// is accepted when token_type says Bearer, but never one that names
	// another type than the access token requested.
	if exchange && r.IssuedTokenType != "" && r.IssuedTokenType != tokenTypeAccessToken {
		return invalid("issued_token_type is not an access token")
	}
	tt, ok, err := str("token_type")
	switch {
	case err != nil:
		return invalid("%w", err)
	case !ok:
		return invalid("no token_type")
	case strings.EqualFold(tt, "Bearer"):
	case exchange && strings.EqualFold(tt, "N_A") && r.IssuedTokenType == tokenTypeAccessToken:
	default:
		return invalid("token_type is neither Bearer nor an allowed N_A")
	}

	if v, ok := obj["expires_in"]; ok && string(v) != "null" {
		secs, err := parseExpiresIn(v)
		if err != nil {
			return invalid("%w", err)
		}
		r.Lifetime = time.Duration(secs) * time.Second
	} else {
		r.Lifetime, r.LifetimeAssumed = AssumedTokenLifetime, true
	}

	scope, ok, err := str("scope")
	if err != nil {
		return invalid("%w", err)
	}
	if ok {
		r.Scopes = []string{}
		for _, s := range strings.Split(scope, " ") {
			if s == "" {
				continue
			}
			if !validScope(s) {
				return invalid("scope holds an invalid scope token")
			}
			r.Scopes = append(r.Scopes, s)
		}
	}
	return r, nil
}

// parseExpiresIn reads expires_in: a positive integer number of seconds, as a
// JSON number or (as some servers send it) a string of digits. It is capped
// at maxTokenLifetime.
func parseExpiresIn(v json.RawMessage) (int64, error) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		if s == "" || len(s) > 12 || strings.Trim(s, "0123456789") != "" {
			return 0, errors.New("expires_in is not a number of seconds")
		}
		v = json.RawMessage(s)
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil || math.IsNaN(f) || f != math.Trunc(f) {
		return 0, errors.New("expires_in is not a whole number of seconds")
	}
	if f < 1 {
		return 0, errors.New("expires_in is not positive")
	}
	if maxSecs := float64(maxTokenLifetime / time.Second); f > maxSecs {
		f = maxSecs
	}
	return int64(f), nil
}

// errorCode reads the error code of an RFC 6749 §5.2 answer, sanitized:
// ASCII letters lowercased, anything but a-z and _ replaced by _, at most 64
// characters. The error_description is never read.
func errorCode(body []byte) (string, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return "", false
	}
	var code string
	if v, ok := obj["error"]; !ok || json.Unmarshal(v, &code) != nil {
		return "", false
	}
	code = strings.TrimSpace(code)
	if code == "" {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(code) && b.Len() < 64; i++ {
		switch c := code[i]; {
		case c >= 'a' && c <= 'z' || c == '_':
			b.WriteByte(c)
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte('_')
		}
	}
	return b.String(), true
}

// endpoint returns the token endpoint, discovering it on first use.
func (e *TokenEndpoint) endpoint(ctx context.Context) (string, error) {
	if u := e.tokenURL.Load(); u != nil {
		return *u, nil
	}
	e.discoverMu.Lock()
	defer e.discoverMu.Unlock()
	if u := e.tokenURL.Load(); u != nil {
		return *u, nil
	}
	u, err := e.discover(ctx)
	if err != nil {
		return "", err
	}
	e.tokenURL.Store(&u)
	e.log.Info("credential: discovered the token endpoint", "token_endpoint", u)
	return u, nil
}

// discover reads token_endpoint from the issuer's metadata: RFC 8414 first
// (the well-known path inserted before the issuer's path), then OpenID
// Connect Discovery (appended). A document naming another issuer is never
// used.
func (e *TokenEndpoint) discover(ctx context.Context) (string, error) {
	u, err := url.Parse(e.issuer)
	if err != nil {
		return "", fmt.Errorf("issuer: %w", err)
	}
	base, path := u.Scheme+"://"+u.Host, strings.TrimSuffix(u.EscapedPath(), "/")
	var errs []error
	for _, doc := range []string{base + "/.well-known/oauth-authorization-server" + path, base + path + "/.well-known/openid-configuration"} {
		te, err := e.fetchMetadata(ctx, doc)
		if err == nil {
			return te, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return "", errors.Join(errs...)
}

func (e *TokenEndpoint) fetchMetadata(ctx context.Context, doc string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, doc, nil)
	if err != nil {
		return "", fmt.Errorf("metadata %s: %w", doc, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "mcpgate")
	resp, err := e.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("metadata %s: %w", doc, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("metadata %s: status %d", doc, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return "", fmt.Errorf("metadata %s: %w", doc, err)
	}
	if len(b) > maxMetadataBytes {
		return "", fmt.Errorf("metadata %s: larger than %d bytes", doc, maxMetadataBytes)
	}
	// Exact key match: decode into a map, not a struct (encoding/json
	// matches struct fields case-insensitively).
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return "", fmt.Errorf("metadata %s: not a JSON object", doc)
	}
	var issuer, te string
	if json.Unmarshal(obj["issuer"], &issuer) != nil || issuer != e.issuer {
		return "", fmt.Errorf("metadata %s: its issuer is not %s", doc, e.issuer)
	}
	if json.Unmarshal(obj["token_endpoint"], &te) != nil || te == "" {
		return "", fmt.Errorf("metadata %s: no token_endpoint string", doc)
	}
	if err := checkEndpointURL(te); err != nil {
		return "", fmt.Errorf("metadata %s: token_endpoint: %w", doc, err)
	}
	if strings.HasPrefix(te, "http:") && !strings.HasPrefix(e.issuer, "http:") {
		return "", fmt.Errorf("metadata %s: token_endpoint is plain http for an https issuer", doc)
	}
	return te, nil
}

// checkEndpointURL accepts an absolute http or https URL without user
// information or fragment. (Which hosts may be plain http is the
// configuration's decision.)
func checkEndpointURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("not a valid url")
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("scheme must be https or http")
	case u.Host == "" || u.Opaque != "":
		return errors.New("must be an absolute url with a host")
	case u.User != nil:
		return errors.New("must not contain user information")
	case strings.Contains(raw, "#"):
		return errors.New("must not contain a fragment")
	}
	return nil
}

// shortHash identifies a token or secret in logs and audit records
// without revealing it: the first 16 hex digits of its SHA-256.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// validScope reports whether s is an RFC 6749 §3.3 scope-token.
func validScope(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0)
	})
}
