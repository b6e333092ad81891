package credential

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/devauth"
)

// Test fixtures of the token endpoint, exchange and client credentials
// tests (prefix xc). Secrets, passwords and tokens are made at runtime.
const (
	xcGatewayRes  = "https://gw.example.test/servers/docs/mcp" // the route: inbound tokens' audience
	xcUpstreamRes = "https://docs.upstream.test/mcp"           // the upstream: exchanged tokens' audience
	xcOtherRes    = "https://mail.upstream.test/mcp"
	xcPublicApp   = "xc-public-app"
	xcRedirect    = "http://127.0.0.1:9999/callback"
	xcGateway     = "xc-gateway"
	xcAlice       = "alice"
	xcBob         = "bob"
	xcAliceSub    = "user-alice"
)

// xcClock is a settable clock.
type xcClock struct {
	mu sync.Mutex
	t  time.Time
}

func xcNewClock() *xcClock { return &xcClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *xcClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *xcClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// xcLogs captures slog output at debug level.
type xcLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *xcLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *xcLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *xcLogs) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// xcSecret makes a client secret with characters that need form encoding.
func xcSecret() string { return "s:+/ %&=" + rand.Text() }

// xcFakeToken makes an opaque token value.
func xcFakeToken() string { return "xt." + rand.Text() + rand.Text() }

// xcAS is a devauth server behind a wrapper that counts token endpoint
// requests and can replace the token endpoint with a fault.
type xcAS struct {
	srv      *devauth.Server
	ts       *httptest.Server
	issuer   string
	secret   string            // the gateway client's secret
	pw       map[string]string // username → password
	posts    atomic.Int64      // token endpoint POSTs, except test setup
	metadata atomic.Int64      // well-known GETs
	delay    atomic.Int64      // nanoseconds to sleep before each counted POST
	fault    atomic.Pointer[http.HandlerFunc]
}

func xcNewAS(t testing.TB) *xcAS {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	a := &xcAS{ts: ts, issuer: "http://" + ts.Listener.Addr().String(), secret: xcSecret(),
		pw: map[string]string{xcAlice: "p-" + rand.Text(), xcBob: "p-" + rand.Text()}}
	srv, err := devauth.New(devauth.Config{
		Issuer: a.issuer,
		Users: []devauth.User{
			{Username: xcAlice, Password: a.pw[xcAlice], Subject: xcAliceSub},
			{Username: xcBob, Password: a.pw[xcBob], Scopes: []string{"docs:read"}},
		},
		Clients: []devauth.Client{
			{ID: xcPublicApp, RedirectURIs: []string{xcRedirect}},
			{ID: xcGateway, Secret: a.secret, GrantTypes: []string{devauth.GrantClientCredentials, devauth.GrantTokenExchange}},
		},
		Resources: []string{xcGatewayRes, xcUpstreamRes, xcOtherRes},
		Scopes:    []string{"docs:read", "docs:write", "mail:send"},
	})
	if err != nil {
		t.Fatalf("devauth.New: %v", err)
	}
	a.srv = srv
	h := srv.Handler()
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/.well-known/") {
			a.metadata.Add(1)
		}
		if r.Method == http.MethodPost && r.URL.Path == "/oauth/token" && r.Header.Get("X-Xc-Setup") == "" {
			a.posts.Add(1)
			time.Sleep(time.Duration(a.delay.Load()))
			if f := a.fault.Load(); f != nil {
				(*f)(w, r)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
	ts.Start()
	t.Cleanup(ts.Close)
	return a
}

func (a *xcAS) setFault(h http.HandlerFunc) {
	if h == nil {
		a.fault.Store(nil)
		return
	}
	a.fault.Store(&h)
}

// endpoint returns a TokenEndpoint of the gateway client at this server.
func (a *xcAS) endpoint(t testing.TB, mod func(*TokenEndpointConfig)) *TokenEndpoint {
	t.Helper()
	cfg := TokenEndpointConfig{
		TokenURL: a.issuer + "/oauth/token", ClientID: xcGateway,
		ClientSecret: func() ([]byte, error) { return []byte(a.secret), nil },
	}
	if mod != nil {
		mod(&cfg)
	}
	ep, err := NewTokenEndpoint(cfg)
	if err != nil {
		t.Fatalf("NewTokenEndpoint: %v", err)
	}
	return ep
}

// userToken runs the code flow for user (resource: the gateway route) and
// returns the access token and the Caller the gateway would build from it.
func (a *xcAS) userToken(t testing.TB, user, scope string) Caller {
	t.Helper()
	verifier := strings.ReplaceAll(rand.Text()+rand.Text(), "=", "")
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {xcPublicApp}, "redirect_uri": {xcRedirect},
		"scope": {scope}, "state": {"st-" + rand.Text()}, "resource": {xcGatewayRes},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	redirect, err := a.srv.Login(context.Background(), a.issuer+"/authorize?"+q.Encode(), user, a.pw[user])
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {redirect.Query().Get("code")},
		"redirect_uri": {xcRedirect}, "code_verifier": {verifier}, "client_id": {xcPublicApp}}
	req, _ := http.NewRequest(http.MethodPost, a.issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Xc-Setup", "1")
	resp, err := a.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("code exchange: %d %v", resp.StatusCode, err)
	}
	c := xcClaims(t, body.AccessToken)
	exp, _ := c["exp"].(float64)
	iss, _ := c["iss"].(string)
	sub, _ := c["sub"].(string)
	cid, _ := c["client_id"].(string)
	sc, _ := c["scope"].(string)
	return Caller{Token: body.AccessToken, Issuer: iss, Subject: sub, ClientID: cid,
		Scopes: strings.Fields(sc), Expiry: time.Unix(int64(exp), 0)}
}

// xcClaims decodes a JWT's payload without verifying it.
func xcClaims(t testing.TB, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode payload: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("unmarshal payload: %v", err)
	}
	return m
}

// xcFakeAS is a token endpoint answering with h, counting requests.
type xcFakeAS struct {
	ts    *httptest.Server
	hits  atomic.Int64
	mu    sync.Mutex
	h     http.HandlerFunc
	forms []url.Values
}

func xcNewFakeAS(t testing.TB, h http.HandlerFunc) *xcFakeAS {
	t.Helper()
	f := &xcFakeAS{h: h}
	f.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		_ = r.ParseForm()
		f.mu.Lock()
		f.forms = append(f.forms, r.PostForm)
		h := f.h
		f.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(f.ts.Close)
	return f
}

func (f *xcFakeAS) set(h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.h = h
}

func (f *xcFakeAS) lastForm() url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.forms) == 0 {
		return nil
	}
	return f.forms[len(f.forms)-1]
}

func (f *xcFakeAS) endpoint(t testing.TB, secret string, mod func(*TokenEndpointConfig)) *TokenEndpoint {
	t.Helper()
	cfg := TokenEndpointConfig{TokenURL: f.ts.URL + "/token", ClientID: "xc-client",
		ClientSecret: func() ([]byte, error) { return []byte(secret), nil }}
	if mod != nil {
		mod(&cfg)
	}
	ep, err := NewTokenEndpoint(cfg)
	if err != nil {
		t.Fatalf("NewTokenEndpoint: %v", err)
	}
	return ep
}

// xcJSON answers status with v as JSON.
func xcJSON(status int, v any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
}

// xcIssue answers every request with a fresh Bearer token.
func xcIssue(expiresIn int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		xcJSON(200, map[string]any{"access_token": xcFakeToken(), "token_type": "Bearer", "expires_in": expiresIn,
			"issued_token_type": tokenTypeAccessToken})(w, r)
	}
}

func xcKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

func TestNewTokenEndpointConfig(t *testing.T) {
	sec := func() ([]byte, error) { return []byte("x"), nil }
	for _, tt := range []struct {
		name string
		cfg  TokenEndpointConfig
		want []string // substrings of the error; nil → valid
	}{
		{name: "token url", cfg: TokenEndpointConfig{TokenURL: "https://as.example.test/token", ClientID: "c", ClientSecret: sec}},
		{name: "issuer for discovery", cfg: TokenEndpointConfig{Issuer: "https://as.example.test", ClientID: "c", ClientSecret: sec, AuthMethod: AuthClientSecretPost}},
		{name: "empty", cfg: TokenEndpointConfig{}, want: []string{"token url or an issuer", "client id", "client secret"}},
		{name: "bad urls and method", cfg: TokenEndpointConfig{TokenURL: "ftp://as/token", Issuer: "https://u:p@as", ClientID: "c\n", ClientSecret: sec,
			AuthMethod: "private_key_jwt", Timeout: -1, BreakerOpenTimeout: -1},
			want: []string{"token url: scheme", "issuer: must not contain user", "client id", "auth method", "timeout", "breaker open timeout"}},
		{name: "relative", cfg: TokenEndpointConfig{TokenURL: "/token", ClientID: "c", ClientSecret: sec}, want: []string{"token url"}},
		{name: "fragment", cfg: TokenEndpointConfig{TokenURL: "https://as/token#x", ClientID: "c", ClientSecret: sec}, want: []string{"fragment"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTokenEndpoint(tt.cfg)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestTokenEndpointClientAuthentication(t *testing.T) {
	sec := xcSecret()
	const id = "gw:svc+1 é"
	for _, method := range []string{"", AuthClientSecretBasic, AuthClientSecretPost} {
		t.Run("method="+method, func(t *testing.T) {
			var mu sync.Mutex
			var problems []string
			f := xcNewFakeAS(t, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
					problems = append(problems, "content type "+ct)
				}
				user, pass, basic := r.BasicAuth()
				switch method {
				case AuthClientSecretPost:
					if basic || r.PostForm.Get("client_id") != id || r.PostForm.Get("client_secret") != sec {
						problems = append(problems, "client_secret_post credentials wrong")
					}
				default:
					// RFC 6749 §2.3.1: both form-urlencoded before Basic.
					if user != url.QueryEscape(id) || pass != url.QueryEscape(sec) {
						problems = append(problems, fmt.Sprintf("basic credentials not form-encoded: %q", user))
					}
					if r.PostForm.Has("client_secret") || r.PostForm.Has("client_id") {
						problems = append(problems, "client_secret_basic also put credentials in the body")
					}
				}
				if r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("resource") != xcUpstreamRes {
					problems = append(problems, "form not passed through")
				}
				xcIssue(300)(w, r)
			})
			ep := f.endpoint(t, sec, func(c *TokenEndpointConfig) { c.ClientID = id; c.AuthMethod = method })
			form := url.Values{"grant_type": {"client_credentials"}, "resource": {xcUpstreamRes}}
			resp, err := ep.request(context.Background(), "client credentials grant", form, false)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			if resp.Lifetime != 300*time.Second || resp.AccessToken == "" {
				t.Errorf("response %+v", resp)
			}
			mu.Lock()
			defer mu.Unlock()
			if problems != nil {
				t.Error(problems)
			}
			if form.Has("client_secret") {
				t.Error("the caller's form was modified")
			}
		})
	}
}

// TestTokenEndpointDevauthSecretEncoding: a secret with reserved
// characters authenticates at a real server (which form-decodes Basic).
func TestTokenEndpointDevauthSecretEncoding(t *testing.T) {
	a := xcNewAS(t)
	for _, method := range []string{AuthClientSecretBasic, AuthClientSecretPost} {
		ep := a.endpoint(t, func(c *TokenEndpointConfig) { c.AuthMethod = method })
		_, err := ep.request(context.Background(), "client credentials grant",
			url.Values{"grant_type": {"client_credentials"}, "resource": {xcUpstreamRes}}, false)
		if err != nil {
			t.Errorf("%s: %v", method, err)
		}
	}
	ep := a.endpoint(t, func(c *TokenEndpointConfig) {
		c.ClientSecret = func() ([]byte, error) { return []byte("wrong-" + rand.Text()), nil }
	})
	_, err := ep.request(context.Background(), "client credentials grant",
		url.Values{"grant_type": {"client_credentials"}, "resource": {xcUpstreamRes}}, false)
	var ce *Error
	if !errors.As(err, &ce) || ce.Kind != Unavailable || !strings.Contains(err.Error(), "refused mcpgate's own client (invalid_client)") {
		t.Errorf("wrong secret: %v, want Unavailable invalid_client (mcpgate's own configuration, not the user's)", err)
	}
}

func TestParseTokenEndpointResponse(t *testing.T) {
	tok := xcFakeToken()
	ok := func(extra string) []byte {
		return []byte(`{"access_token":"` + tok + `","token_type":"Bearer"` + extra + `}`)
	}
	const unavailable, denied = Unavailable, Denied
	for _, tt := range []struct {
		name      string
		status    int
		body      []byte
		exchange  bool
		kind      Kind // 0 → success
		msg       string
		lifetime  time.Duration
		assumed   bool
		scopes    []string
		issuedTyp string
	}{
		{name: "minimal", status: 200, body: ok(`,"expires_in":3600`), lifetime: time.Hour},
		{name: "bearer lowercase, scope", status: 200, body: []byte(`{"access_token":"` + tok + `","token_type":"bearer","expires_in":60,"scope":"a b:c  d"}`),
			lifetime: time.Minute, scopes: []string{"a", "b:c", "d"}},
		{name: "expires_in as string", status: 200, body: ok(`,"expires_in":"120"`), lifetime: 2 * time.Minute},
		{name: "expires_in 1e2", status: 200, body: ok(`,"expires_in":1e2`), lifetime: 100 * time.Second},
		{name: "expires_in absent", status: 200, body: ok(``), lifetime: AssumedTokenLifetime, assumed: true},
		{name: "expires_in null", status: 200, body: ok(`,"expires_in":null`), lifetime: AssumedTokenLifetime, assumed: true},
		{name: "expires_in huge is capped", status: 200, body: ok(`,"expires_in":1e300`), lifetime: maxTokenLifetime},
		{name: "exchange", status: 200, body: ok(`,"expires_in":5,"issued_token_type":"` + tokenTypeAccessToken + `"`), exchange: true,
			lifetime: 5 * time.Second, issuedTyp: tokenTypeAccessToken},
		{name: "exchange N_A", status: 200, body: []byte(`{"access_token":"` + tok + `","token_type":"N_A","expires_in":5,"issued_token_type":"` + tokenTypeAccessToken + `"}`),
			exchange: true, lifetime: 5 * time.Second, issuedTyp: tokenTypeAccessToken},
		{name: "extra fields ignored", status: 200, body: ok(`,"expires_in":5,"refresh_token":"r","x":{"y":[1]}`), lifetime: 5 * time.Second},

		{name: "N_A outside exchange", status: 200, body: []byte(`{"access_token":"` + tok + `","token_type":"N_A","issued_token_type":"` + tokenTypeAccessToken + `"}`), kind: unavailable},
		{name: "N_A without issued type", status: 200, body: []byte(`{"access_token":"` + tok + `","token_type":"N_A"}`), exchange: true, kind: unavailable},
		{name: "exchange issued other type", status: 200, body: ok(`,"issued_token_type":"urn:ietf:params:oauth:token-type:refresh_token"`), exchange: true, kind: unavailable},
		{name: "DPoP", status: 200, body: []byte(`{"access_token":"` + tok + `","token_type":"DPoP"}`), kind: unavailable},
		{name: "no token_type", status: 200, body: []byte(`{"access_token":"` + tok + `"}`), kind: unavailable},
		{name: "no access_token", status: 200, body: []byte(`{"token_type":"Bearer"}`), kind: unavailable},
		{name: "empty access_token", status: 200, body: []byte(`{"access_token":"","token_type":"Bearer"}`), kind: unavailable},
		{name: "access_token not a string", status: 200, body: []byte(`{"access_token":42,"token_type":"Bearer"}`), kind: unavailable},
		{name: "header injection", status: 200, body: []byte(`{"access_token":"a\r\nX-Evil: 1","token_type":"Bearer"}`), kind: unavailable},
		{name: "space in token", status: 200, body: []byte(`{"access_token":"a b","token_type":"Bearer"}`), kind: unavailable},
		{name: "case-different key", status: 200, body: []byte(`{"ACCESS_TOKEN":"` + tok + `","token_type":"Bearer"}`), kind: unavailable},
		{name: "expires_in zero", status: 200, body: ok(`,"expires_in":0`), kind: unavailable},
		{name: "expires_in negative", status: 200, body: ok(`,"expires_in":-5`), kind: unavailable},
		{name: "expires_in fraction", status: 200, body: ok(`,"expires_in":1.5`), kind: unavailable},
		{name: "expires_in bad string", status: 200, body: ok(`,"expires_in":"1h"`), kind: unavailable},
		{name: "expires_in bool", status: 200, body: ok(`,"expires_in":true`), kind: unavailable},
		{name: "bad scope token", status: 200, body: ok(`,"scope":"a \"b\""`), kind: unavailable},
		{name: "garbage", status: 200, body: []byte(`<html>hello</html>`), kind: unavailable, msg: "the authorization server sent an invalid answer"},
		{name: "array", status: 200, body: []byte(`[]`), kind: unavailable},
		{name: "null", status: 200, body: []byte(`null`), kind: unavailable},
		{name: "trailing garbage", status: 200, body: append(ok(``), 'x'), kind: unavailable},
		{name: "too large", status: 200, body: ok(`,"pad":"` + strings.Repeat("a", MaxTokenResponseBytes) + `"`), kind: unavailable},

		{name: "400 invalid_target", status: 400, body: []byte(`{"error":"invalid_target","error_description":"resource https://x is unknown"}`), exchange: true,
			kind: denied, msg: "the authorization server refused the token exchange (invalid_target)"},
		{name: "401 invalid_client", status: 401, body: []byte(`{"error":"invalid_client"}`), kind: unavailable, msg: "the authorization server refused mcpgate's own client (invalid_client)"},
		{name: "400 unauthorized_client", status: 400, body: []byte(`{"error":"unauthorized_client"}`), kind: unavailable, msg: "the authorization server refused mcpgate's own client (unauthorized_client)"},
		{name: "400 invalid_grant", status: 400, body: []byte(`{"error":"invalid_grant"}`), kind: denied, msg: "the authorization server refused the op (invalid_grant)"},
		{name: "403 sanitized", status: 403, body: []byte(`{"error":"Access-Denied <script>` + strings.Repeat("x", 100) + `"}`), kind: denied,
			msg: "the authorization server refused the op (access_denied__script_" + strings.Repeat("x", 64-len("access_denied__script_")) + ")"},
		{name: "400 without error", status: 400, body: []byte(`{"error_description":"nope"}`), kind: unavailable},
		{name: "400 empty error", status: 400, body: []byte(`{"error":"  "}`), kind: unavailable},
		{name: "400 error not a string", status: 400, body: []byte(`{"error":1}`), kind: unavailable},
		{name: "400 html", status: 400, body: []byte(`<h1>Bad Request</h1>`), kind: unavailable},
		{name: "404", status: 404, body: []byte(`{"error":"not_found"}`), kind: unavailable, msg: "the authorization server is unavailable (HTTP 404)"},
		{name: "429", status: 429, body: []byte(`{"error":"slow_down"}`), kind: unavailable, msg: "the authorization server is unavailable (HTTP 429)"},
		{name: "500", status: 500, body: []byte(`{"error":"server_error"}`), kind: unavailable},
		{name: "503", status: 503, body: nil, kind: unavailable},
		{name: "204", status: 204, body: nil, kind: unavailable},
		{name: "302", status: 302, body: nil, kind: unavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseTokenEndpointResponse(tt.status, tt.body, "op", tt.exchange)
			if tt.exchange && tt.kind == denied {
				r, err = parseTokenEndpointResponse(tt.status, tt.body, "token exchange", tt.exchange)
			}
			if tt.kind == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if r.AccessToken != tok || r.Lifetime != tt.lifetime || r.LifetimeAssumed != tt.assumed ||
					fmt.Sprint(r.Scopes) != fmt.Sprint(tt.scopes) || r.IssuedTokenType != tt.issuedTyp {
					t.Errorf("got %+v", r)
				}
				return
			}
			if xcKind(err) != tt.kind {
				t.Fatalf("error %v: kind %d, want %d", err, xcKind(err), tt.kind)
			}
			msg := err.(*Error).Message
			if tt.msg != "" && msg != tt.msg {
				t.Errorf("message %q, want %q", msg, tt.msg)
			}
			for _, leak := range []string{tok, "error_description", "resource https://x", "nope", "<script>", "hello"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q contains %q", err, leak)
				}
			}
		})
	}
}

// TestTokenEndpointFaults drives request through injected faults.
func TestTokenEndpointFaults(t *testing.T) {
	sec := xcSecret()
	redirected := atomic.Int64{}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirected.Add(1)
		xcIssue(60)(w, r)
	}))
	defer target.Close()
	big := strings.Repeat("a", MaxTokenResponseBytes+10)
	for _, tt := range []struct {
		name    string
		h       http.HandlerFunc
		kind    Kind
		msg     string
		timeout time.Duration
	}{
		{name: "500", h: xcJSON(500, map[string]string{"error": "server_error"}), kind: Unavailable, msg: "(HTTP 500)"},
		{name: "503 html", h: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(503)
			_, _ = io.WriteString(w, "<html>down</html>")
		},
			kind: Unavailable, msg: "(HTTP 503)"},
		{name: "429", h: xcJSON(429, nil), kind: Unavailable, msg: "(HTTP 429)"},
		{name: "garbage 200", h: func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{not json") }, kind: Unavailable, msg: "invalid answer"},
		{name: "oversized 200", h: func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, `{"access_token":"`+big+`","token_type":"Bearer"}`)
		}, kind: Unavailable, msg: "invalid answer"},
		{name: "timeout", h: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
		}, kind: Unavailable, msg: "did not answer in time", timeout: 100 * time.Millisecond},
		{name: "redirect not followed", h: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/token", http.StatusTemporaryRedirect)
		}, kind: Unavailable, msg: "(HTTP 307)"},
		{name: "refusal with description", h: xcJSON(400, map[string]string{"error": "invalid_grant", "error_description": "the secret " + sec + " is wrong"}),
			kind: Denied, msg: "refused the client credentials grant (invalid_grant)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := xcNewFakeAS(t, tt.h)
			logs := &xcLogs{}
			ep := f.endpoint(t, sec, func(c *TokenEndpointConfig) { c.Timeout = tt.timeout; c.Logger = logs.Logger() })
			start := time.Now()
			_, err := ep.request(context.Background(), "client credentials grant", url.Values{"grant_type": {"client_credentials"}}, false)
			if xcKind(err) != tt.kind || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v (kind %d), want kind %d with %q", err, xcKind(err), tt.kind, tt.msg)
			}
			if tt.timeout != 0 && time.Since(start) > time.Second {
				t.Errorf("timeout not applied: %v", time.Since(start))
			}
			for _, out := range []string{err.Error(), logs.String()} {
				if strings.Contains(out, sec) || strings.Contains(out, url.QueryEscape(sec)) || strings.Contains(out, "<html>") {
					t.Errorf("secret or body leaked: %q", out)
				}
			}
		})
	}
	if redirected.Load() != 0 {
		t.Error("the redirect was followed")
	}

	t.Run("connection refused", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		u := dead.URL
		dead.Close()
		ep, err := NewTokenEndpoint(TokenEndpointConfig{TokenURL: u + "/token", ClientID: "c",
			ClientSecret: func() ([]byte, error) { return []byte(sec), nil }})
		if err != nil {
			t.Fatal(err)
		}
		_, err = ep.request(context.Background(), "op", url.Values{}, false)
		if xcKind(err) != Unavailable || !strings.Contains(err.Error(), "unavailable (no answer)") {
			t.Errorf("got %v", err)
		}
	})
}

func TestTokenEndpointClientSecretSource(t *testing.T) {
	f := xcNewFakeAS(t, xcIssue(60))
	t.Run("error", func(t *testing.T) {
		ep := f.endpoint(t, "", func(c *TokenEndpointConfig) {
			c.ClientSecret = func() ([]byte, error) { return nil, errors.New("secret: /run/x: permission denied") }
		})
		before := f.hits.Load()
		_, err := ep.request(context.Background(), "op", url.Values{}, false)
		if xcKind(err) != Unavailable || !strings.Contains(err.Error(), "cannot read its client secret") {
			t.Errorf("got %v", err)
		}
		if f.hits.Load() != before {
			t.Error("a request was sent without a secret")
		}
		if ep.State() != "closed" {
			t.Errorf("a secret problem counted against the server: %s", ep.State())
		}
	})
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		sec := xcSecret()
		good, loose := filepath.Join(dir, "good"), filepath.Join(dir, "loose")
		if err := os.WriteFile(good, []byte(sec+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(loose, []byte(sec), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(loose, 0o644); err != nil {
			t.Fatal(err)
		}
		var gotSecret atomic.Value
		f.set(func(w http.ResponseWriter, r *http.Request) {
			_, p, _ := r.BasicAuth()
			gotSecret.Store(p)
			xcIssue(60)(w, r)
		})
		ep := f.endpoint(t, "", func(c *TokenEndpointConfig) { c.ClientSecret = ClientSecretFile(good) })
		if _, err := ep.request(context.Background(), "op", url.Values{}, false); err != nil {
			t.Fatal(err)
		}
		if gotSecret.Load() != url.QueryEscape(sec) {
			t.Error("the file's trimmed secret was not sent")
		}
		ep = f.endpoint(t, "", func(c *TokenEndpointConfig) { c.ClientSecret = ClientSecretFile(loose) })
		_, err := ep.request(context.Background(), "op", url.Values{}, false)
		if xcKind(err) != Unavailable || strings.Contains(err.Error(), sec) {
			t.Errorf("loose file: %v", err)
		}
	})
}

func TestTokenEndpointBreaker(t *testing.T) {
	f := xcNewFakeAS(t, xcJSON(503, nil))
	logs := &xcLogs{}
	ep := f.endpoint(t, xcSecret(), func(c *TokenEndpointConfig) {
		c.BreakerFailures = 3
		c.BreakerOpenTimeout = 150 * time.Millisecond
		c.Logger = logs.Logger()
	})
	call := func() error {
		_, err := ep.request(context.Background(), "op", url.Values{"grant_type": {"client_credentials"}}, false)
		return err
	}
	for i := range 3 {
		if err := call(); xcKind(err) != Unavailable {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if ep.State() != "open" || f.hits.Load() != 3 {
		t.Fatalf("after 3 failures: state %s, %d requests", ep.State(), f.hits.Load())
	}
	for range 5 {
		err := call()
		if xcKind(err) != Unavailable || err.(*Error).Message != "the authorization server is unavailable (circuit open); try again later" {
			t.Fatalf("open circuit: %v", err)
		}
	}
	if f.hits.Load() != 3 {
		t.Fatalf("the open circuit let %d requests through", f.hits.Load()-3)
	}

	// Half-open: one trial; a failure opens it again.
	time.Sleep(200 * time.Millisecond)
	if ep.State() != "half-open" {
		t.Fatalf("state %s, want half-open", ep.State())
	}
	if err := call(); xcKind(err) != Unavailable || f.hits.Load() != 4 || ep.State() != "open" {
		t.Fatalf("failed trial: %v, %d requests, state %s", err, f.hits.Load(), ep.State())
	}

	// Half-open again; a success closes it.
	time.Sleep(200 * time.Millisecond)
	f.set(xcIssue(60))
	if err := call(); err != nil || ep.State() != "closed" || f.hits.Load() != 5 {
		t.Fatalf("successful trial: %v, state %s, %d requests", err, ep.State(), f.hits.Load())
	}
	if !strings.Contains(logs.String(), "to=open") || !strings.Contains(logs.String(), "to=closed") {
		t.Errorf("state changes not logged: %s", logs.String())
	}

	// Refusals prove the server is up: they never open the circuit.
	f.set(xcJSON(400, map[string]string{"error": "invalid_scope"}))
	for i := range 10 {
		if err := call(); !IsDenied(err) {
			t.Fatalf("refusal %d: %v", i, err)
		}
	}
	if ep.State() != "closed" || f.hits.Load() != 15 {
		t.Errorf("after 10 refusals: state %s, %d requests", ep.State(), f.hits.Load())
	}

	// A caller that gives up does not count either.
	f.set(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	for range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(20 * time.Millisecond); cancel() }()
		_, err := ep.request(ctx, "op", url.Values{}, false)
		if xcKind(err) != Unavailable {
			t.Fatalf("canceled: %v", err)
		}
	}
	if ep.State() != "closed" {
		t.Errorf("canceled calls opened the circuit")
	}
}

func TestTokenEndpointDiscovery(t *testing.T) {
	t.Run("devauth", func(t *testing.T) {
		a := xcNewAS(t)
		ep := a.endpoint(t, func(c *TokenEndpointConfig) { c.TokenURL = ""; c.Issuer = a.issuer })
		for range 3 {
			if _, err := ep.request(context.Background(), "op",
				url.Values{"grant_type": {"client_credentials"}, "resource": {xcUpstreamRes}}, false); err != nil {
				t.Fatal(err)
			}
		}
		if a.metadata.Load() != 1 || a.posts.Load() != 3 {
			t.Errorf("%d metadata fetches, %d token requests; want 1, 3", a.metadata.Load(), a.posts.Load())
		}
	})

	// A fake server with an issuer path: probes in order, issuer check.
	type doc struct {
		status int
		issuer string
	}
	for _, tt := range []struct {
		name     string
		rfc8414  doc
		oidc     doc
		wantErr  bool
		wantHits []string
	}{
		{name: "rfc8414", rfc8414: doc{200, "self"}, oidc: doc{500, ""},
			wantHits: []string{"/.well-known/oauth-authorization-server/tenant", "/token"}},
		{name: "oidc fallback", rfc8414: doc{404, ""}, oidc: doc{200, "self"},
			wantHits: []string{"/.well-known/oauth-authorization-server/tenant", "/tenant/.well-known/openid-configuration", "/token"}},
		{name: "issuer mismatch", rfc8414: doc{200, "https://evil.example.test/tenant"}, oidc: doc{200, "self/"}, wantErr: true,
			wantHits: []string{"/.well-known/oauth-authorization-server/tenant", "/tenant/.well-known/openid-configuration"}},
		{name: "both fail", rfc8414: doc{500, ""}, oidc: doc{404, ""}, wantErr: true,
			wantHits: []string{"/.well-known/oauth-authorization-server/tenant", "/tenant/.well-known/openid-configuration"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var hits []string
			var issuer string
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hits = append(hits, r.URL.Path)
				mu.Unlock()
				serve := func(d doc) {
					iss := strings.Replace(d.issuer, "self", issuer, 1)
					xcJSON(d.status, map[string]string{"issuer": iss, "token_endpoint": "http://" + r.Host + "/token"})(w, r)
				}
				switch r.URL.Path {
				case "/.well-known/oauth-authorization-server/tenant":
					serve(tt.rfc8414)
				case "/tenant/.well-known/openid-configuration":
					serve(tt.oidc)
				default:
					xcIssue(60)(w, r)
				}
			}))
			defer ts.Close()
			issuer = ts.URL + "/tenant"
			ep, err := NewTokenEndpoint(TokenEndpointConfig{Issuer: issuer, ClientID: "c",
				ClientSecret: func() ([]byte, error) { return []byte("x"), nil }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = ep.request(context.Background(), "op", url.Values{}, false)
			if tt.wantErr != (err != nil) {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if err != nil && (xcKind(err) != Unavailable || !strings.Contains(err.Error(), "cannot be discovered")) {
				t.Errorf("err %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if strings.Join(hits, " ") != strings.Join(tt.wantHits, " ") {
				t.Errorf("requests %v, want %v", hits, tt.wantHits)
			}
		})
	}

	t.Run("http token endpoint for an https issuer", func(t *testing.T) {
		var issuer string
		ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			xcJSON(200, map[string]string{"issuer": issuer, "token_endpoint": "http://" + r.Host + "/token"})(w, r)
		}))
		defer ts.Close()
		issuer = ts.URL
		ep, err := NewTokenEndpoint(TokenEndpointConfig{Issuer: issuer, ClientID: "c", HTTPClient: ts.Client(),
			ClientSecret: func() ([]byte, error) { return []byte("x"), nil }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ep.request(context.Background(), "op", url.Values{}, false); xcKind(err) != Unavailable {
			t.Errorf("got %v", err)
		}
	})
}

// TestTokenEndpointNoLeaks: an authorization server echoing everything
// it was sent, in its answers, never gets a secret or token into an error
// or a log line.
func TestTokenEndpointNoLeaks(t *testing.T) {
	sec, subject := xcSecret(), xcFakeToken()
	issued := xcFakeToken()
	var status atomic.Int64
	status.Store(400)
	f := xcNewFakeAS(t, func(w http.ResponseWriter, r *http.Request) {
		echo := r.Header.Get("Authorization") + " " + r.PostForm.Encode()
		switch s := int(status.Load()); s {
		case 200:
			xcJSON(200, map[string]any{"access_token": issued, "token_type": "Bearer", "expires_in": 60, "echo": echo})(w, r)
		default:
			xcJSON(s, map[string]any{"error": "invalid_request", "error_description": echo, "error_uri": echo})(w, r)
		}
	})
	for _, method := range []string{AuthClientSecretBasic, AuthClientSecretPost} {
		logs := &xcLogs{}
		ep := f.endpoint(t, sec, func(c *TokenEndpointConfig) { c.AuthMethod = method; c.Logger = logs.Logger() })
		var errs []string
		for _, s := range []int64{400, 401, 500, 200} {
			status.Store(s)
			_, err := ep.request(context.Background(), "token exchange", url.Values{"subject_token": {subject}}, true)
			if err != nil {
				errs = append(errs, err.Error())
			}
		}
		if len(errs) != 3 {
			t.Fatalf("errors %v", errs)
		}
		out := strings.Join(errs, "\n") + logs.String()
		if !strings.Contains(logs.String(), "token_id="+shortHash(issued)) {
			t.Errorf("the issued token is not identified by its hash in the logs: %s", logs.String())
		}
		for _, leak := range []string{sec, url.QueryEscape(sec), subject, issued, "Basic "} {
			if strings.Contains(out, leak) {
				t.Errorf("%s: output contains a secret (%.8s…): %s", method, leak, out)
			}
		}
	}
}
