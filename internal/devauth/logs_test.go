package devauth

import (
	"bytes"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoSecretsInLogs runs every grant, a failed login, a registration, an
// introspection and a revocation, with the server's logger and op's (the
// process default) both captured at debug level, and looks for every
// password, secret, code and token in them.
func TestNoSecretsInLogs(t *testing.T) {
	var ours, theirs syncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&theirs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	e := newEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&ours, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})

	secrets := []string{e.pw[alice], e.pw[bob]}
	for _, s := range e.secrets {
		secrets = append(secrets, s)
	}
	tokens := grantTokens(t, e)
	for _, tok := range tokens {
		secrets = append(secrets, tok)
	}
	v, c := pkce()
	authURL := e.authURL(webApp, webRedir, c, map[string]string{"scope": "openid docs:read offline_access"})
	if _, err := e.srv.Login(t.Context(), authURL, alice, "wrong-"+e.pw[alice]); err == nil {
		t.Fatal("wrong password accepted")
	}
	code := e.code(t, authURL, alice)
	_, body := e.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedir},
		"code_verifier": {v}}, webApp, e.secrets[webApp])
	_, reused := e.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedir},
		"code_verifier": {v}}, webApp, e.secrets[webApp])
	if reused["error"] == nil {
		t.Fatal("code reused")
	}
	_, reg := e.register(t, "application/json", `{"redirect_uris":["https://app.example.test/cb"]}`)
	e.introspect(t, str(body, "access_token"))
	e.post(t, "/revoke", url.Values{"token": {str(body, "refresh_token")}}, webApp, e.secrets[webApp])
	e.token(t, refreshForm(str(body, "refresh_token")), webApp, e.secrets[webApp])
	secrets = append(secrets, code, v, str(body, "access_token"), str(body, "refresh_token"), str(body, "id_token"),
		str(reg, "client_secret"))

	logs := ours.String() + theirs.String()
	if !strings.Contains(ours.String(), "access token issued") {
		t.Fatalf("nothing logged: %q", ours.String())
	}
	for i, s := range secrets {
		if s == "" {
			t.Fatalf("secret %d is empty", i)
		}
		if strings.Contains(logs, s) {
			t.Errorf("secret %d (%.6s…) appears in the logs", i, s)
		}
	}
}
