package devauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test fixtures. Secrets and passwords are made at runtime.
const (
	docsRes = "https://gw.example.test/servers/docs/mcp"
	mailRes = "https://gw.example.test/servers/mail/mcp"

	publicApp    = "public-app"
	publicRedir  = "http://127.0.0.1:9999/callback"
	webApp       = "web-app"
	webRedir     = "https://app.example.test/cb"
	gatewayApp   = "gateway"
	limitedApp   = "limited"
	alice, bob   = "alice", "bob"
	aliceSubject = "user-alice"
)

// clock is a settable clock: real time plus an offset.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

type env struct {
	srv     *Server
	ts      *httptest.Server
	clock   *clock
	secrets map[string]string // client id → secret
	pw      map[string]string // username → password
}

// newEnv starts a server on a loopback httptest listener. mod may change
// the config before New.
func newEnv(t testing.TB, mod func(*Config)) *env {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	e := &env{
		ts: ts, clock: &clock{},
		secrets: map[string]string{webApp: "s-" + rand.Text(), gatewayApp: "s-" + rand.Text(), limitedApp: "s-" + rand.Text()},
		pw:      map[string]string{alice: "p-" + rand.Text(), bob: "p-" + rand.Text()},
	}
	cfg := Config{
		Issuer: "http://" + ts.Listener.Addr().String(),
		Users: []User{
			{Username: alice, Password: e.pw[alice], Subject: aliceSubject, Name: "Alice <Example>", Email: "alice@example.test"},
			{Username: bob, Password: e.pw[bob], Scopes: []string{"docs:read"}},
		},
		Clients: []Client{
			{ID: publicApp, Name: "Public App", RedirectURIs: []string{publicRedir}},
			{ID: webApp, Secret: e.secrets[webApp], RedirectURIs: []string{webRedir}},
			{ID: gatewayApp, Secret: e.secrets[gatewayApp], GrantTypes: []string{GrantClientCredentials, GrantTokenExchange}},
			{ID: limitedApp, Secret: e.secrets[limitedApp], GrantTypes: []string{GrantClientCredentials}, Scopes: []string{"docs:read"}},
		},
		Resources: []string{docsRes, mailRes},
		Scopes:    []string{"docs:read", "docs:write", "mail:send"},
		Now:       e.clock.now,
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.srv = srv
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	return e
}

func pkce() (verifier, challenge string) {
	verifier = strings.ReplaceAll(rand.Text()+rand.Text(), "=", "")
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authURL builds an authorization request; params override the defaults
// (an empty value removes a parameter).
func (e *env) authURL(clientID, redirect, challenge string, params map[string]string) string {
	q := url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"scope": {"docs:read"}, "state": {"st-" + rand.Text()}, "resource": {docsRes},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	for k, v := range params {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	return e.srv.Issuer() + "/authorize?" + q.Encode()
}

// code runs the authorization request through the login page as user and
// returns the code; it fails the test on any error.
func (e *env) code(t testing.TB, authURL, user string) string {
	t.Helper()
	redirect, err := e.srv.Login(context.Background(), authURL, user, e.pw[user])
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return redirect.Query().Get("code")
}

// post sends a form to path; clientID/secret use HTTP Basic when secret
// is set.
func (e *env) post(t testing.TB, path string, form url.Values, clientID, secret string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.Issuer()+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 && json.Unmarshal(b, &m) != nil {
		m = map[string]any{"raw": string(b)}
	}
	return resp.StatusCode, m
}

func (e *env) token(t testing.TB, form url.Values, clientID, secret string) (int, map[string]any) {
	t.Helper()
	return e.post(t, "/oauth/token", form, clientID, secret)
}

// codeTokens runs the whole code flow for a client and returns the token
// response.
func (e *env) codeTokens(t testing.TB, clientID, redirect, user string, params map[string]string) map[string]any {
	t.Helper()
	v, c := pkce()
	code := e.code(t, e.authURL(clientID, redirect, c, params), user)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"code_verifier": {v}, "client_id": {clientID}}
	status, body := e.token(t, form, clientID, e.secrets[clientID])
	if status != http.StatusOK {
		t.Fatalf("code exchange: %d %v", status, body)
	}
	return body
}

func (e *env) clientCredentials(t testing.TB, clientID, resource, scope string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	if resource != "" {
		form.Set("resource", resource)
	}
	return e.token(t, form, clientID, e.secrets[clientID])
}

// jwtParts decodes a compact JWS without verifying it.
func jwtParts(t testing.TB, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("decode part %d: %v", i, err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatalf("unmarshal part %d: %v", i, err)
		}
	}
	return header, claims
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}
