package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
)

// adminClient calls the admin API with the bearer secret.
type adminClient struct {
	t      *testing.T
	url    string
	secret string
}

func newAdminClient(t *testing.T, h *harness, secret string) *adminClient {
	srv := httptest.NewServer(h.gw.AdminHandler())
	t.Cleanup(srv.Close)
	return &adminClient{t: t, url: srv.URL, secret: secret}
}

func (a *adminClient) do(method, path string, body any) (int, []byte) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+a.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func adminSecret(t *testing.T) (file, value string) {
	value = "admin-" + randomAlnum(24)
	file = filepath.Join(t.TempDir(), "admin")
	if err := os.WriteFile(file, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, value
}

// TestRevocation: a revocation made through the admin API is refused on
// the very next request — by jti, by subject before a not-before time, by
// client — while other tokens keep working; removing it restores access.
func TestRevocation(t *testing.T) {
	file, secret := adminSecret(t)
	h := newHarness(t, harnessOptions{configure: func(c *config.Config) { c.Admin.BearerTokenFile = file }})
	adm := newAdminClient(t, h, secret)
	iss := h.iss.URL()
	mint := func(sub, client, jti string, iat time.Time) string {
		c := h.claims("docs", "docs:read", time.Now().Add(time.Hour))
		c.Subject, c.ClientID, c.JTI, c.IssuedAt = sub, client, jti, iat
		return h.iss.Mint(c)
	}
	past := time.Now().Add(-time.Minute)
	tokA := mint("alice", "agent-1", "jti-a", past)
	tokB := mint("bob", "agent-1", "jti-b", past)
	tokC := mint("carol", "agent-2", "jti-c", past)
	status := func(tok string) int { return h.do(rawReq{token: tok}).status }
	for _, tok := range []string{tokA, tokB, tokC} {
		if s := status(tok); s != http.StatusOK {
			t.Fatalf("before any revocation: %d", s)
		}
	}
	if code, b := adm.do(http.MethodPost, "/admin/revocations", map[string]any{"kind": "jti", "issuer": iss, "value": "jti-a", "reason": "laptop stolen"}); code != http.StatusCreated {
		t.Fatalf("revoke jti: %d %s", code, b)
	}
	resp := h.do(rawReq{token: tokA})
	if resp.status != http.StatusUnauthorized || !strings.Contains(resp.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("revoked jti on the next request: %d %q", resp.status, resp.header.Get("WWW-Authenticate"))
	}
	if status(tokB) != http.StatusOK {
		t.Fatal("another token was refused")
	}
	// Subject: tokens issued before not_before are refused, later ones not.
	adm.do(http.MethodPost, "/admin/revocations", map[string]any{"kind": "subject", "issuer": iss, "value": "bob", "not_before": time.Now().Format(time.RFC3339Nano)})
	if status(tokB) != http.StatusUnauthorized {
		t.Fatal("bob's old token still works")
	}
	if s := status(mint("bob", "agent-1", "jti-b2", time.Now().Add(2*time.Second))); s != http.StatusOK {
		t.Fatalf("bob's new token: %d", s)
	}
	// Client.
	adm.do(http.MethodPost, "/admin/revocations", map[string]any{"kind": "client", "issuer": iss, "value": "agent-2"})
	if status(tokC) != http.StatusUnauthorized {
		t.Fatal("the revoked client's token still works")
	}
	// Listing and removal.
	code, b := adm.do(http.MethodGet, "/admin/revocations", nil)
	if code != http.StatusOK || !strings.Contains(string(b), "laptop stolen") || strings.Count(string(b), `"kind"`) != 3 {
		t.Fatalf("list: %d %s", code, b)
	}
	if code, _ := adm.do(http.MethodDelete, "/admin/revocations?kind=jti&issuer="+iss+"&value=jti-a", nil); code != http.StatusNoContent {
		t.Fatalf("remove: %d", code)
	}
	if status(tokA) != http.StatusOK {
		t.Fatal("a removed revocation still refuses")
	}
	// Bad input, and an issuer that is not configured (it would match
	// nothing while seeming to work).
	for _, body := range []any{map[string]any{"kind": "everyone", "issuer": iss, "value": "x"}, map[string]any{"kind": "jti", "value": "x"}, "not an object",
		map[string]any{"kind": "jti", "issuer": iss + "/", "value": "x"}} {
		if code, _ := adm.do(http.MethodPost, "/admin/revocations", body); code != http.StatusBadRequest {
			t.Errorf("bad revocation %v: %d, want 400", body, code)
		}
	}
	h.assertNoTokenLeak(tokA)
}

// TestRevocationEndsStreams: a revocation closes that token's open SSE
// stream at once; another user's stream stays open.
func TestRevocationEndsStreams(t *testing.T) {
	file, secret := adminSecret(t)
	h := newHarness(t, harnessOptions{configure: func(c *config.Config) { c.Admin.BearerTokenFile = file }})
	adm := newAdminClient(t, h, secret)
	ca := h.claims("docs", "docs:read", time.Now().Add(time.Hour))
	ca.JTI = "jti-stream"
	alice := h.iss.Mint(ca)
	bob := h.mint("docs", "bob", "agent-1", "docs:read")
	sa, sb := h.initSession(t, "docs", alice), h.initSession(t, "docs", bob)
	streamA := h.open(t, rawReq{method: http.MethodGet, token: alice, session: sa})
	streamB := h.open(t, rawReq{method: http.MethodGet, token: bob, session: sb})
	defer streamB.Body.Close()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, streamA.Body)
		done <- err
	}()
	adm.do(http.MethodPost, "/admin/revocations", map[string]any{"kind": "jti", "issuer": h.iss.URL(), "value": "jti-stream"})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the revoked token's stream stayed open")
	}
	if o := h.outcomeOf(t, streamA.Header.Get("X-Request-Id")); o.Reason != "token_revoked" {
		t.Errorf("outcome %+v, want reason token_revoked", o)
	}
	if h.gw.streams.Open() != 1 {
		t.Errorf("open streams %d, want bob's 1", h.gw.streams.Open())
	}
}

// TestRevocationSharedFile: two gateways sharing revocation.file (two
// processes on one host): a revocation made at one is refused by the other
// once it notices the file changed (it checks every two seconds).
func TestRevocationSharedFile(t *testing.T) {
	file, secret := adminSecret(t)
	shared := filepath.Join(t.TempDir(), "revocations.json")
	cfgure := func(c *config.Config) { c.Admin.BearerTokenFile, c.Revocation.File = file, shared }
	a := newHarness(t, harnessOptions{configure: cfgure})
	// b trusts a's issuer: the same identity provider behind both.
	b := newHarness(t, harnessOptions{configure: cfgure, setup: func(h *harness, c *config.Config) {
		h.iss = a.iss
		c.AuthorizationServers[0].Issuer = a.iss.URL()
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.gw.watchRevocations(ctx)
	c := b.claims("docs", "docs:read", time.Now().Add(time.Hour))
	c.JTI = "jti-shared"
	tok := b.iss.Mint(c)
	if s := b.do(rawReq{token: tok}).status; s != http.StatusOK {
		t.Fatalf("before: %d", s)
	}
	adm := newAdminClient(t, a, secret)
	if code, body := adm.do(http.MethodPost, "/admin/revocations", map[string]any{"kind": "jti", "issuer": b.iss.URL(), "value": "jti-shared"}); code != http.StatusCreated {
		t.Fatalf("revoke at a: %d %s", code, body)
	}
	waitFor(t, "the other gateway to refuse the revoked token", func() bool {
		return b.do(rawReq{token: tok}).status == http.StatusUnauthorized
	})
}

// TestRevocationWhileStreamOpens: a token revoked while its stream request
// is on its way upstream still has that stream ended once it opens.
func TestRevocationWhileStreamOpens(t *testing.T) {
	file, secret := adminSecret(t)
	hold, arrived := make(chan struct{}), make(chan struct{}, 1)
	h := newHarness(t, harnessOptions{configure: func(c *config.Config) { c.Admin.BearerTokenFile = file },
		wrapUpstream: func(route string, next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					arrived <- struct{}{}
					<-hold
				}
				next.ServeHTTP(w, r)
			})
		}})
	adm := newAdminClient(t, h, secret)
	c := h.claims("docs", "docs:read", time.Now().Add(time.Hour))
	c.JTI = "jti-race"
	tok := h.iss.Mint(c)
	sid := h.initSession(t, "docs", tok)
	type result struct {
		resp *http.Response
		err  error
	}
	opened := make(chan result, 1)
	go func() {
		r, err := http.DefaultClient.Do(h.newRequest(rawReq{method: http.MethodGet, token: tok, session: sid}))
		opened <- result{r, err}
	}()
	<-arrived
	if code, b := adm.do(http.MethodPost, "/admin/revocations", map[string]any{"kind": "jti", "issuer": h.iss.URL(), "value": "jti-race"}); code != http.StatusCreated {
		t.Fatalf("revoke: %d %s", code, b)
	}
	close(hold)
	r := <-opened
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.resp.Body.Close()
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, r.resp.Body); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream of a token revoked while it opened stayed open")
	}
}
