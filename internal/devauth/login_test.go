package devauth

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t  testing.TB
	hc *http.Client
}

func (e *env) browser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	hc := *e.ts.Client()
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, hc: &hc}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values, header http.Header) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	return b.do(req)
}

// open starts an authorization request and loads its login page; it
// returns the page response and the form's hidden fields.
func (e *env) open(t testing.TB, b *browser, clientID, redirect string) (*http.Response, string, url.Values) {
	t.Helper()
	_, c := pkce()
	resp, _ := b.get(e.authURL(clientID, redirect, c, map[string]string{"state": "st-1"}))
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("authorize: %d %v", resp.StatusCode, err)
	}
	resp, page := b.get(loc.String())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login page: %d", resp.StatusCode)
	}
	fields, err := hiddenFields([]byte(page))
	if err != nil {
		t.Fatal(err)
	}
	return resp, page, fields
}

func (e *env) loginForm(fields url.Values, user, password, action string) url.Values {
	return url.Values{"id": {fields.Get("id")}, "csrf": {fields.Get("csrf")}, "username": {user},
		"password": {password}, "action": {action}}
}

func TestLoginPageHeaders(t *testing.T) {
	e := newEnv(t, nil)
	resp, page, _ := e.open(t, e.browser(t), publicApp, publicRedir)
	h := resp.Header
	if h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("X-Frame-Options %q", h.Get("X-Frame-Options"))
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'",
		"form-action 'self' http://127.0.0.1:9999", "style-src 'sha256-"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for k, want := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
		"Referrer-Policy": "no-referrer", "Content-Type": "text/html; charset=utf-8"} {
		if h.Get(k) != want {
			t.Errorf("%s %q, want %q", k, h.Get(k), want)
		}
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode || cookies[0].Path != "/login" {
		t.Errorf("csrf cookie %+v", cookies)
	}
	for _, want := range []string{"Public App", docsRes, "docs:read", "127.0.0.1:9999", "DEVELOPMENT ONLY"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestLoginPageEscapes(t *testing.T) {
	e := newEnv(t, nil)
	_, reg := e.register(t, "application/json",
		`{"redirect_uris":["http://127.0.0.1:4000/cb"],"token_endpoint_auth_method":"none","client_name":"<script>alert(1)</script>\"'"}`)
	_, page, _ := e.open(t, e.browser(t), str(reg, "client_id"), "http://127.0.0.1:4000/cb")
	if strings.Contains(page, "<script>") || !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;") {
		t.Errorf("client name not escaped:\n%s", page)
	}
}

func TestLoginCSRF(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		name   string
		tamper func(t *testing.T, b *browser, form url.Values) (*browser, url.Values, http.Header)
	}{
		{"missing token", func(_ *testing.T, b *browser, f url.Values) (*browser, url.Values, http.Header) {
			f.Del("csrf")
			return b, f, nil
		}},
		{"wrong token", func(_ *testing.T, b *browser, f url.Values) (*browser, url.Values, http.Header) {
			f.Set("csrf", strings.Repeat("A", 43))
			return b, f, nil
		}},
		{"token of another authorization request", func(t *testing.T, b *browser, f url.Values) (*browser, url.Values, http.Header) {
			_, _, other := e.open(t, b, publicApp, publicRedir)
			f.Set("csrf", other.Get("csrf"))
			return b, f, nil
		}},
		{"no cookie (another browser)", func(_ *testing.T, _ *browser, f url.Values) (*browser, url.Values, http.Header) {
			return e.browser(t), f, nil
		}},
		{"another browser's cookie", func(t *testing.T, _ *browser, f url.Values) (*browser, url.Values, http.Header) {
			b2 := e.browser(t)
			e.open(t, b2, publicApp, publicRedir)
			return b2, f, nil
		}},
		{"cross-origin post", func(_ *testing.T, b *browser, f url.Values) (*browser, url.Values, http.Header) {
			return b, f, http.Header{"Origin": {"https://evil.example.test"}}
		}},
		{"cross-site fetch metadata", func(_ *testing.T, b *browser, f url.Values) (*browser, url.Values, http.Header) {
			return b, f, http.Header{"Sec-Fetch-Site": {"cross-site"}}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := e.browser(t)
			_, _, fields := e.open(t, b, publicApp, publicRedir)
			b2, form, header := tt.tamper(t, b, e.loginForm(fields, alice, e.pw[alice], "approve"))
			resp, page := b2.post(e.srv.Issuer()+"/login", form, header)
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Frame-Options") != "DENY" {
				t.Fatalf("got %d, want 403 with anti-framing headers", resp.StatusCode)
			}
			if strings.Contains(page, "code=") {
				t.Error("page carries a code")
			}
			// The genuine form still works afterwards.
			resp, _ = b.post(e.srv.Issuer()+"/login", e.loginForm(fields, alice, e.pw[alice], "approve"),
				http.Header{"Origin": {e.srv.Issuer()}, "Sec-Fetch-Site": {"same-origin"}})
			if loc, _ := resp.Location(); resp.StatusCode != http.StatusSeeOther || loc.Query().Get("code") == "" {
				t.Errorf("genuine submit: %d %v", resp.StatusCode, loc)
			}
		})
	}
}

func TestLoginDecisions(t *testing.T) {
	e := newEnv(t, nil)
	post := func(b *browser, form url.Values) (*http.Response, string) {
		return b.post(e.srv.Issuer()+"/login", form, nil)
	}
	t.Run("deny", func(t *testing.T) {
		b := e.browser(t)
		_, _, f := e.open(t, b, publicApp, publicRedir)
		resp, _ := post(b, e.loginForm(f, "", "", "deny"))
		loc, _ := resp.Location()
		if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("error") != "access_denied" ||
			loc.Query().Get("state") != "st-1" || loc.Query().Get("code") != "" || !strings.HasPrefix(loc.String(), publicRedir+"?") {
			t.Errorf("got %d %v", resp.StatusCode, loc)
		}
		if resp, _ := post(b, e.loginForm(f, alice, e.pw[alice], "approve")); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("approve after deny: %d, want 400", resp.StatusCode)
		}
	})
	t.Run("wrong password then right", func(t *testing.T) {
		b := e.browser(t)
		_, _, f := e.open(t, b, publicApp, publicRedir)
		for _, creds := range [][2]string{{alice, "wrong"}, {"nobody", e.pw[alice]}, {alice, ""}, {bob, e.pw[alice]}} {
			resp, page := post(b, e.loginForm(f, creds[0], creds[1], "approve"))
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Wrong username or password") {
				t.Fatalf("%s: %d", creds[0], resp.StatusCode)
			}
		}
		resp, _ := post(b, e.loginForm(f, alice, e.pw[alice], "approve"))
		if loc, _ := resp.Location(); resp.StatusCode != http.StatusSeeOther || loc.Query().Get("code") == "" {
			t.Errorf("right password: %d %v", resp.StatusCode, loc)
		}
		if resp, _ := post(b, e.loginForm(f, alice, e.pw[alice], "approve")); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("second approval of the same request: %d, want 400", resp.StatusCode)
		}
	})
	t.Run("too many failures end the request", func(t *testing.T) {
		b := e.browser(t)
		_, _, f := e.open(t, b, publicApp, publicRedir)
		var resp *http.Response
		for range maxLoginFailures {
			resp, _ = post(b, e.loginForm(f, alice, "wrong", "approve"))
		}
		if loc, _ := resp.Location(); resp.StatusCode != http.StatusSeeOther || loc.Query().Get("error") != "access_denied" {
			t.Errorf("after %d failures: %d %v", maxLoginFailures, resp.StatusCode, loc)
		}
	})
	t.Run("unknown action", func(t *testing.T) {
		b := e.browser(t)
		_, _, f := e.open(t, b, publicApp, publicRedir)
		if resp, _ := post(b, e.loginForm(f, alice, e.pw[alice], "maybe")); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("got %d", resp.StatusCode)
		}
	})
	t.Run("expired request", func(t *testing.T) {
		b := e.browser(t)
		resp, _, f := e.open(t, b, publicApp, publicRedir)
		e.clock.advance(AuthRequestTTL)
		if resp, _ := post(b, e.loginForm(f, alice, e.pw[alice], "approve")); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("post: %d, want 400", resp.StatusCode)
		}
		if resp, _ := b.get(resp.Request.URL.String()); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("get: %d, want 400", resp.StatusCode)
		}
	})
	t.Run("unknown request", func(t *testing.T) {
		resp, page := e.browser(t).get(e.srv.Issuer() + "/login?id=ar_nope")
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(page, "expired") {
			t.Errorf("got %d", resp.StatusCode)
		}
	})
}

// TestOpCallbackNotMounted: op's own login callback would hand out a new
// code for a completed request; this server does not mount it, nor the
// endpoints it does not serve.
func TestUnservedEndpoints(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range []string{"/authorize/callback?id=x", "/end_session", "/device_authorization", "/healthz", "/ready"} {
		resp, _ := e.browser(t).get(e.srv.Issuer() + p)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
	for _, grant := range []string{"urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:device_code",
		"implicit", "password", ""} {
		status, body := e.token(t, url.Values{"grant_type": {grant}}, gatewayApp, e.secrets[gatewayApp])
		if status != http.StatusBadRequest || (body["error"] != "unsupported_grant_type" && body["error"] != "invalid_request") {
			t.Errorf("grant %q: %d %v", grant, status, body)
		}
	}
	resp, _ := e.browser(t).get(e.srv.Issuer() + "/oauth/token?grant_type=client_credentials")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET token: %d, want 405", resp.StatusCode)
	}
}
