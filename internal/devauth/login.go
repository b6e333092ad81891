package devauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The login and consent page. op redirects the browser here (the client's
// LoginURL) with the authorization request id; the form posts back here;
// on approval this handler has op build the code response and redirects
// straight to the client (op's own callback endpoint is not mounted).
//
// CSRF: the form carries HMAC(server key, request id, cookie nonce), the
// nonce living in an HttpOnly SameSite=Lax cookie. A POST needs both, for
// that very authorization request. Lax rather than Strict: the page is
// reached through a cross-site redirect, on which a Strict cookie would not
// be sent, so every such visit would replace the cookie and break a login
// pending in another tab; a cross-site POST carries neither.

const csrfCookie = "devauth_csrf"

const pageStyle = `body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;color:#222}` +
	`.warn{background:#b00020;color:#fff;padding:.5rem;font-weight:bold}` +
	`.error{color:#b00020;font-weight:bold}dt{font-weight:bold}dd{margin:0 0 .5rem 0}` +
	`label{display:block;margin:.5rem 0}input{display:block;width:100%;padding:.3rem}` +
	`button{margin:.8rem .5rem 0 0;padding:.4rem 1rem}`

// styleSource is the CSP source expression of pageStyle.
var styleSource = func() string {
	sum := sha256.Sum256([]byte(pageStyle))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

var pageTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in - mcpgate development authorization server</title>
<style>{{.Style}}</style></head>
<body><main>
<p class="warn">DEVELOPMENT ONLY: mcpgate's development authorization server</p>
{{if .Fatal}}<h1>Cannot sign in</h1><p class="error" role="alert">{{.Fatal}}</p>{{else}}
<h1>Sign in to authorize {{.ClientName}}</h1>
<dl>
<dt>Application</dt><dd>{{.ClientName}} (<code>{{.ClientID}}</code>)</dd>
<dt>Resource</dt><dd><code>{{.Resource}}</code></dd>
<dt>Scopes requested</dt><dd>{{range .Scopes}}<code>{{.}}</code> {{else}}none{{end}}</dd>
<dt>You will return to</dt><dd><code>{{.RedirectHost}}</code></dd>
</dl>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="id" value="{{.ID}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label>Username <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit" name="action" value="approve">Sign in and approve</button>
<button type="submit" name="action" value="deny" formnovalidate>Deny</button>
</form>{{end}}
</main></body></html>
`))

type pageData struct {
	Style                                        template.CSS
	Fatal, Error                                 string
	ClientName, ClientID, Resource, RedirectHost string
	Scopes                                       []string
	Action, ID, CSRF                             string
}

// serveLoginPage shows the form for a pending authorization request.
func (s *Server) serveLoginPage(w http.ResponseWriter, r *http.Request) {
	ar, ok := s.store.pendingAuthRequest(r.URL.Query().Get("id"))
	if !ok {
		s.renderFatal(w, http.StatusBadRequest, "This sign-in request is unknown or has expired. Start again from the application.")
		return
	}
	nonce := ""
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		nonce = c.Value
	} else {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		nonce = base64.RawURLEncoding.EncodeToString(b)
	}
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: nonce, Path: s.prefix + loginPath, MaxAge: int(AuthRequestTTL.Seconds()),
		HttpOnly: true, Secure: strings.HasPrefix(s.issuer, "https://"), SameSite: http.SameSiteLaxMode,
	})
	s.renderForm(w, http.StatusOK, ar, s.csrfToken(ar.id, nonce), "")
}

// serveLoginSubmit checks the CSRF token and then the user's decision.
func (s *Server) serveLoginSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.renderFatal(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	id := r.PostForm.Get("id")
	c, err := r.Cookie(csrfCookie)
	if err != nil || !s.sameOrigin(r) ||
		!hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(s.csrfToken(id, c.Value))) {
		s.log.Warn("devauth: login refused: csrf check failed")
		s.renderFatal(w, http.StatusForbidden, "The form expired or was not sent by this page (CSRF check failed). Start again from the application.")
		return
	}
	ar, ok := s.store.pendingAuthRequest(id)
	if !ok {
		s.renderFatal(w, http.StatusBadRequest, "This sign-in request is unknown or has expired. Start again from the application.")
		return
	}
	switch r.PostForm.Get("action") {
	case "deny":
		s.store.dropAuthRequest(id)
		s.log.Info("devauth: authorization denied by the user", "client_id", ar.clientID)
		s.redirectError(w, r, ar, "the user denied the request")
		return
	case "approve":
	default:
		s.renderFatal(w, http.StatusBadRequest, "Choose approve or deny.")
		return
	}
	u := s.checkPassword(r.PostForm.Get("username"), r.PostForm.Get("password"))
	if u == nil {
		if s.store.failLogin(id) {
			s.log.Info("devauth: login failed", "client_id", ar.clientID)
			s.renderForm(w, http.StatusUnauthorized, ar, r.PostForm.Get("csrf"), "Wrong username or password.")
			return
		}
		s.store.dropAuthRequest(id)
		s.log.Warn("devauth: too many failed logins; authorization request ended", "client_id", ar.clientID)
		s.redirectError(w, r, ar, "too many failed sign-in attempts")
		return
	}
	done, ok := s.store.completeAuthRequest(id, u.Subject, userScopes(u, ar.requested))
	if !ok {
		s.renderFatal(w, http.StatusBadRequest, "This sign-in request is unknown or has expired. Start again from the application.")
		return
	}
	target, err := op.BuildAuthResponseCallbackURL(r.Context(), done, s.provider)
	if err != nil {
		s.renderFatal(w, http.StatusInternalServerError, "The authorization response could not be built.")
		return
	}
	s.log.Info("devauth: login succeeded", "sub", u.Subject, "client_id", done.clientID,
		"aud", done.resource, "scope", strings.Join(done.granted, " "))
	s.securityHeaders(w, done.redirectURI)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// checkPassword returns the user whose credentials these are, comparing in
// constant time.
func (s *Server) checkPassword(username, password string) *User {
	u, ok := s.byName[username]
	want := "\x00" // never equal to a hash below
	if ok {
		sum := sha256.Sum256([]byte(u.Password))
		want = string(sum[:])
	}
	got := sha256.Sum256([]byte(password))
	if subtle.ConstantTimeCompare(got[:], []byte(want)) != 1 {
		return nil
	}
	return u
}

// userScopes narrows requested scopes to the user's (protocol scopes are
// always allowed).
func userScopes(u *User, requested []string) []string {
	var out []string
	for _, sc := range requested {
		if u.Scopes == nil || slices.Contains(u.Scopes, sc) || slices.Contains(protocolScopes, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// csrfToken binds the form to one authorization request and one browser.
func (s *Server) csrfToken(authRequestID, nonce string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte("devauth login\x00" + authRequestID + "\x00" + nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sameOrigin refuses a POST a browser marks as coming from elsewhere.
func (s *Server) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, _ := url.Parse(s.issuer)
		return o == u.Scheme+"://"+u.Host
	}
	return true
}

// redirectError sends the browser back to the client with access_denied.
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, ar *authRequest, desc string) {
	e := oidc.ErrAccessDenied().WithDescription("%s", desc)
	e.State = ar.state
	target, err := op.AuthResponseURL(ar.redirectURI, oidc.ResponseTypeCode, ar.responseMode, e, s.provider.Encoder())
	if err != nil {
		s.renderFatal(w, http.StatusInternalServerError, "The authorization response could not be built.")
		return
	}
	s.securityHeaders(w, ar.redirectURI)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func (s *Server) renderForm(w http.ResponseWriter, status int, ar *authRequest, csrf, msg string) {
	name, id := ar.clientID, ar.clientID
	if c, err := s.store.client(ar.clientID); err == nil {
		name = c.name
	}
	host := ar.redirectURI
	if u, err := url.Parse(ar.redirectURI); err == nil {
		host = u.Host
	}
	s.render(w, status, ar.redirectURI, pageData{
		ClientName: name, ClientID: id, Resource: ar.resource, RedirectHost: host, Scopes: ar.requested,
		Action: s.prefix + loginPath, ID: ar.id, CSRF: csrf, Error: msg,
	})
}

func (s *Server) renderFatal(w http.ResponseWriter, status int, msg string) {
	s.render(w, status, "", pageData{Fatal: msg})
}

func (s *Server) render(w http.ResponseWriter, status int, redirectURI string, d pageData) {
	d.Style = template.CSS(pageStyle)
	s.securityHeaders(w, redirectURI)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, d)
}

// securityHeaders forbid framing, caching and everything the page does not
// need. form-action must also allow the client's origin: browsers apply it
// to the redirect that follows the form's submission.
func (s *Server) securityHeaders(w http.ResponseWriter, redirectURI string) {
	formAction := "'self'"
	if u, err := url.Parse(redirectURI); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		formAction += " " + u.Scheme + "://" + u.Host
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+styleSource+"; form-action "+formAction+
		"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}
