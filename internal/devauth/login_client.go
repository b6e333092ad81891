package devauth

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// AuthorizationError is an error response the server sent to the client's
// redirect URI (RFC 6749 §4.1.2.1), as Login saw it.
type AuthorizationError struct {
	Code        string // e.g. access_denied, invalid_target, invalid_request
	Description string
}

func (e *AuthorizationError) Error() string {
	if e.Description == "" {
		return "devauth: authorization refused: " + e.Code
	}
	return "devauth: authorization refused: " + e.Code + ": " + e.Description
}

// Login plays the user's browser through the authorization code flow,
// without a browser, for tests and the demo: it GETs authURL (an
// authorization request to this server, as a client builds it), follows
// the redirect to the login page, reads the form's CSRF field, posts the
// credentials with approval, and returns the redirect to the client's
// redirect URI carrying code and state. It does not follow that redirect.
//
// When the server answers with an error redirect instead (invalid_target,
// access_denied, …), Login returns it together with an *AuthorizationError.
// Wrong credentials, or a request the server refuses without redirecting
// (an unknown client or redirect URI), are plain errors. It talks to the
// server over HTTP at authURL's address, which must be this server's
// authorization endpoint; Config.HTTPClient's Transport is used.
func (s *Server) Login(ctx context.Context, authURL, username, password string) (*url.URL, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return nil, fmt.Errorf("devauth: login: authorization url: %w", err)
	}
	if u.Scheme+"://"+u.Host+u.Path != s.provider.Endpoints().Authorization.Absolute(s.issuer) {
		return nil, errors.New("devauth: login: the url is not this server's authorization endpoint")
	}
	hc := s.loginHTTPClient()

	resp, body, err := loginDo(ctx, hc, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("devauth: login: authorization endpoint answered %d: %s", resp.StatusCode, excerpt(body))
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("devauth: login: %w", err)
	}
	if loc.Scheme+"://"+loc.Host+loc.Path != s.issuer+loginPath {
		return clientRedirect(loc)
	}

	resp, body, err = loginDo(ctx, hc, http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("devauth: login: login page answered %d", resp.StatusCode)
	}
	form, err := hiddenFields(body)
	if err != nil {
		return nil, err
	}
	form.Set("username", username)
	form.Set("password", password)
	form.Set("action", "approve")

	resp, _, err = loginDo(ctx, hc, http.MethodPost, s.issuer+loginPath, form)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusSeeOther, http.StatusFound:
	case http.StatusUnauthorized:
		return nil, errors.New("devauth: login: wrong username or password")
	default:
		return nil, fmt.Errorf("devauth: login: login form answered %d", resp.StatusCode)
	}
	if loc, err = resp.Location(); err != nil {
		return nil, fmt.Errorf("devauth: login: %w", err)
	}
	return clientRedirect(loc)
}

func (s *Server) loginHTTPClient() *http.Client {
	jar, _ := cookiejar.New(nil) // never fails without options
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if s.cfg.HTTPClient != nil {
		hc.Transport = s.cfg.HTTPClient.Transport
		if s.cfg.HTTPClient.Timeout != 0 {
			hc.Timeout = s.cfg.HTTPClient.Timeout
		}
	}
	return hc
}

// loginDo sends one request and reads (at most 1 MiB of) the answer.
func loginDo(ctx context.Context, hc *http.Client, method, target string, form url.Values) (*http.Response, []byte, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, nil, fmt.Errorf("devauth: login: %w", err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("devauth: login: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("devauth: login: %w", err)
	}
	return resp, b, nil
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="(id|csrf)" value="([^"]*)">`)

// hiddenFields reads the login form's id and csrf fields.
func hiddenFields(page []byte) (url.Values, error) {
	form := url.Values{}
	for _, m := range hiddenField.FindAllSubmatch(page, -1) {
		form.Set(string(m[1]), html.UnescapeString(string(m[2])))
	}
	if form.Get("id") == "" || form.Get("csrf") == "" {
		return nil, errors.New("devauth: login: the login page has no form fields")
	}
	return form, nil
}

// clientRedirect checks the redirect to the client: a code, or an error
// (in the query, or in the fragment when the client asked for that mode).
func clientRedirect(loc *url.URL) (*url.URL, error) {
	q := loc.Query()
	if f, err := url.ParseQuery(loc.Fragment); err == nil && f.Get("error") != "" {
		q = f
	}
	if code := q.Get("error"); code != "" {
		return loc, &AuthorizationError{Code: code, Description: q.Get("error_description")}
	}
	if q.Get("code") == "" {
		return loc, errors.New("devauth: login: the redirect carries neither a code nor an error")
	}
	return loc, nil
}

func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Sprintf("%q", s)
}
