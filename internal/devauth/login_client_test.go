package devauth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestLoginHelperErrors(t *testing.T) {
	e := newEnv(t, nil)
	_, c := pkce()
	good := e.authURL(publicApp, publicRedir, c, nil)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name, authURL, user, password string
		ctx                           context.Context
		want                          string
		redirect                      bool // an error redirect is returned too
	}{
		{name: "another host", authURL: strings.Replace(good, "127.0.0.1", "localhost", 1), want: "not this server's authorization endpoint"},
		{name: "another path", authURL: strings.Replace(good, "/authorize", "/login", 1), want: "not this server's authorization endpoint"},
		{name: "not a url", authURL: "http://[::1", want: "authorization url"},
		{name: "wrong password", authURL: good, user: alice, password: "wrong", want: "wrong username or password"},
		{name: "unknown user", authURL: good, user: "mallory", password: "x", want: "wrong username or password"},
		{name: "refused without redirect", authURL: e.authURL("nobody", publicRedir, c, nil), user: alice, want: "answered 400"},
		{name: "error redirect", authURL: e.authURL(publicApp, publicRedir, c, map[string]string{"resource": ""}), user: alice,
			want: "invalid_target", redirect: true},
		{name: "canceled", authURL: good, user: alice, ctx: canceled, want: "canceled"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			pw := tt.password
			if pw == "" {
				pw = e.pw[tt.user]
			}
			redirect, err := e.srv.Login(ctx, tt.authURL, tt.user, pw)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
			var ae *AuthorizationError
			if got := redirect != nil && errors.As(err, &ae); got != tt.redirect {
				t.Errorf("redirect %v (%v), want one: %v", redirect, err, tt.redirect)
			}
		})
	}
}

type countingTransport struct{ n int }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n++
	return http.DefaultTransport.RoundTrip(r)
}

func TestLoginUsesConfiguredTransport(t *testing.T) {
	rt := &countingTransport{}
	e := newEnv(t, func(c *Config) { c.HTTPClient = &http.Client{Transport: rt, Timeout: 5 * time.Second} })
	_, c := pkce()
	e.code(t, e.authURL(publicApp, publicRedir, c, nil), alice)
	if rt.n != 3 { // authorize, login page, login form
		t.Errorf("%d requests through the configured transport, want 3", rt.n)
	}
}
