package authn

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/egress"
	"github.com/mcpgate/mcpgate/internal/testissuer"
)

const resource = "https://gw.example.com/servers/docs/mcp"

// clock is a fake clock: nothing in these tests sleeps to pass time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// env is one test issuer and an Authenticator trusting it, on a fake clock,
// logging at debug level into logs.
type env struct {
	t    testing.TB
	clk  *clock
	iss  *testissuer.Issuer
	a    *Authenticator
	logs *logBuffer
}

type envOpts struct {
	issuer testissuer.Options
	cfg    func(*IssuerConfig)
	top    func(*Config)
	egress func(*egress.Config)
	deps   func(*Deps)
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	clk := newClock()
	o.issuer.Now = clk.Now
	iss := testissuer.New(t, o.issuer)
	ecfg := iss.EgressConfig()
	if o.egress != nil {
		o.egress(&ecfg)
	}
	hc, err := egress.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	ic := IssuerConfig{Issuer: iss.URL(), Algorithms: []string{"RS256", "ES256"}, HTTP: hc}
	if o.cfg != nil {
		o.cfg(&ic)
	}
	cfg := Config{Issuers: []IssuerConfig{ic}}
	if o.top != nil {
		o.top(&cfg)
	}
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	deps := Deps{Now: clk.Now, Logger: logger}
	if o.deps != nil {
		o.deps(&deps)
	}
	a, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, clk: clk, iss: iss, a: a, logs: logs}
}

// claims are valid claims for resource.
func (e *env) claims() testissuer.Claims {
	return testissuer.Claims{Subject: "alice", Audience: []string{resource}, ClientID: "client-1", Scope: "docs:read"}
}

func (e *env) mint(opts ...testissuer.MintOption) string {
	return e.iss.Mint(e.claims(), opts...)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func (e *env) auth(tok string) (*Identity, error) {
	return e.a.Authenticate(context.Background(), Request{Header: bearer(tok), Resource: resource})
}

func (e *env) mustAuth(tok string) *Identity {
	e.t.Helper()
	id, err := e.auth(tok)
	if err != nil {
		e.t.Fatalf("Authenticate: %v", err)
	}
	return id
}

// wantReject checks err is an *Error with this status, code and reason,
// and that neither its message nor its description holds token bytes.
func wantReject(t testing.TB, err error, status int, code, reason, tok string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *Error %s", err, err, reason)
	}
	if e.Status != status || e.Code != code || e.Reason != reason {
		t.Fatalf("got status %d code %q reason %q (%v), want %d %q %q", e.Status, e.Code, e.Reason, e.Err, status, code, reason)
	}
	noTokenBytes(t, tok, e.Error(), e.Description)
}

// noTokenBytes fails if any text holds the token or a segment of it.
func noTokenBytes(t testing.TB, tok string, texts ...string) {
	t.Helper()
	if tok == "" {
		return
	}
	parts := append(strings.Split(tok, "."), tok)
	for _, s := range texts {
		for _, p := range parts {
			if len(p) >= 8 && strings.Contains(s, p) {
				t.Fatalf("%q contains token bytes", s)
			}
		}
	}
}
