package devauth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Defaults and limits.
const (
	DefaultAccessTokenTTL  = 10 * time.Minute
	DefaultRefreshTokenTTL = 24 * time.Hour
	// CodeTTL is how long an authorization code can be redeemed.
	CodeTTL = time.Minute
	// AuthRequestTTL is how long a user has to complete the login page.
	AuthRequestTTL = 10 * time.Minute
	// MaxRegisteredClients bounds dynamic client registration.
	MaxRegisteredClients = 1000
	// MaxPendingAuthRequests bounds authorization requests awaiting login.
	MaxPendingAuthRequests = 10000
	// maxLoginFailures ends an authorization request with access_denied.
	maxLoginFailures = 5
)

// Grant types a client may be given.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// Protocol scopes the server always knows, whatever Config.Scopes says:
// openid (ID tokens), offline_access (a refresh token in the code flow),
// profile and email (ID token and userinfo claims). They are exempt from
// User.Scopes and Client.Scopes restrictions, except that offline_access is
// granted only to clients allowed the refresh_token grant.
var protocolScopes = []string{"openid", "offline_access", "profile", "email"}

// Config configures a Server. It is validated by New.
type Config struct {
	// Issuer is the absolute URL the server is reached at, for example
	// http://127.0.0.1:9400 (http is allowed: development only). All
	// endpoints are under it; [Server.Handler] must be mounted at the root
	// of its origin. No query, fragment or trailing slash. Required.
	Issuer string
	// Users are the development users of the login page. nil → nobody can
	// log in (client credentials still work).
	Users []User
	// Clients are pre-registered clients. nil → only registered ones.
	Clients []Client
	// Resources are the RFC 8707 resource indicators tokens may be issued
	// for (absolute http or https URLs, no query or fragment); a request
	// for another is refused with invalid_target. Required, non-empty.
	Resources []string
	// Scopes are the scopes the server knows besides the protocol scopes
	// (openid, offline_access, profile, email); a request for another is
	// refused with invalid_scope. nil → protocol scopes only.
	Scopes []string
	// AccessTokenTTL is the access token lifetime. 0 → 10m.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the refresh token lifetime, renewed at each
	// rotation. 0 → 24h.
	RefreshTokenTTL time.Duration
	// DisableRegistration turns off dynamic client registration (RFC 7591).
	// Default false: registration is open, bounded by MaxRegisteredClients.
	DisableRegistration bool
	// Logger receives one line per issued token, login and registration,
	// never a secret, password or token. nil → discard. (zitadel's op
	// package logs its own request errors through slog.Default.)
	Logger *slog.Logger
	// HTTPClient is used by [Server.Login] only; its Transport is reused
	// with a fresh cookie jar and no redirect following. nil → a client
	// with a 10s timeout on http.DefaultTransport.
	HTTPClient *http.Client
	// Now is the clock for codes, tokens and login pages. nil → time.Now.
	Now func() time.Time
}

// User is a development user.
type User struct {
	// Username and Password are what the login page checks. Required.
	Username, Password string
	// Subject is the token's sub. "" → Username.
	Subject string
	// Name and Email are returned as ID token and userinfo claims when the
	// profile and email scopes are granted. Optional.
	Name, Email string
	// Scopes are the scopes this user may be granted. nil → all.
	Scopes []string
}

// Client is a pre-registered client.
type Client struct {
	// ID is the client_id. Required, unique.
	ID string
	// Secret authenticates a confidential client (client_secret_basic or
	// client_secret_post). "" → a public client (auth method none).
	Secret string
	// Name is shown on the login page. "" → ID.
	Name string
	// RedirectURIs are matched exactly: https, or http on localhost,
	// 127.0.0.1 or [::1]; no fragment. Required for authorization_code.
	RedirectURIs []string
	// GrantTypes are the grants this client may use (the Grant constants).
	// nil → authorization_code and refresh_token, plus client_credentials
	// when Secret != "". client_credentials and token exchange need a
	// Secret.
	GrantTypes []string
	// Scopes are the scopes this client may be granted. nil → all.
	Scopes []string
}

// normalize validates cfg and applies defaults, reporting every problem.
func (cfg *Config) normalize() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if err := validateIssuer(cfg.Issuer); err != nil {
		add("issuer: %w", err)
	}
	scopes := map[string]bool{}
	for _, s := range protocolScopes {
		scopes[s] = true
	}
	for _, s := range cfg.Scopes {
		if !isScopeToken(s) {
			add("scope %q: not a valid scope token (RFC 6749 §3.3)", s)
		}
		scopes[s] = true
	}
	checkScopes := func(what string, list []string) {
		for _, s := range list {
			if !scopes[s] {
				add("%s: scope %q is not in Scopes", what, s)
			}
		}
	}
	if len(cfg.Resources) == 0 {
		add("resources: at least one resource is required")
	}
	seenRes := map[string]bool{}
	for _, r := range cfg.Resources {
		if err := validateResource(r); err != nil {
			add("resource %q: %w", r, err)
		}
		if k := strings.TrimSuffix(r, "/"); seenRes[k] {
			add("resource %q: configured twice", r)
		} else {
			seenRes[k] = true
		}
	}
	if cfg.AccessTokenTTL < 0 {
		add("access token ttl must not be negative")
	}
	if cfg.RefreshTokenTTL < 0 {
		add("refresh token ttl must not be negative")
	}

	users := make([]User, len(cfg.Users))
	seenUser, seenSub := map[string]bool{}, map[string]bool{}
	for i, u := range cfg.Users {
		if u.Username == "" {
			add("user %d: username is required", i)
		} else if seenUser[u.Username] {
			add("user %q: configured twice", u.Username)
		}
		seenUser[u.Username] = true
		if u.Password == "" {
			add("user %q: password is required", u.Username)
		}
		if u.Subject == "" {
			u.Subject = u.Username
		}
		if seenSub[u.Subject] {
			add("user %q: subject %q is another user's", u.Username, u.Subject)
		}
		seenSub[u.Subject] = true
		checkScopes(fmt.Sprintf("user %q", u.Username), u.Scopes)
		users[i] = u
	}

	clients := make([]Client, len(cfg.Clients))
	seenClient := map[string]bool{}
	for i, c := range cfg.Clients {
		if c.ID == "" || !isPrintable(c.ID) {
			add("client %d: id is required and must be printable", i)
		} else if seenClient[c.ID] {
			add("client %q: configured twice", c.ID)
		}
		seenClient[c.ID] = true
		if c.Name == "" {
			c.Name = c.ID
		}
		if c.GrantTypes == nil {
			c.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
			if c.Secret != "" {
				c.GrantTypes = append(c.GrantTypes, GrantClientCredentials)
			}
		}
		for _, err := range validateGrants(c.GrantTypes, c.Secret != "", len(c.RedirectURIs) > 0) {
			add("client %q: %w", c.ID, err)
		}
		for _, ru := range c.RedirectURIs {
			if err := validateRedirectURI(ru); err != nil {
				add("client %q: redirect uri %q: %w", c.ID, ru, err)
			}
		}
		checkScopes(fmt.Sprintf("client %q", c.ID), c.Scopes)
		clients[i] = c
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	cfg.Users, cfg.Clients = users, clients
	if cfg.AccessTokenTTL == 0 {
		cfg.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if cfg.RefreshTokenTTL == 0 {
		cfg.RefreshTokenTTL = DefaultRefreshTokenTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return nil
}

// validateGrants checks a client's grant types; it returns every problem.
func validateGrants(grants []string, confidential, hasRedirects bool) []error {
	var errs []error
	if len(grants) == 0 {
		errs = append(errs, errors.New("at least one grant type is required"))
	}
	for _, g := range grants {
		switch g {
		case GrantAuthorizationCode:
			if !hasRedirects {
				errs = append(errs, errors.New("authorization_code needs at least one redirect uri"))
			}
		case GrantRefreshToken:
		case GrantClientCredentials, GrantTokenExchange:
			if !confidential {
				errs = append(errs, fmt.Errorf("grant type %s needs a client secret", g))
			}
		default:
			errs = append(errs, fmt.Errorf("grant type %q is not supported", g))
		}
	}
	return errs
}

func validateIssuer(raw string) error {
	if raw == "" {
		return errors.New("required")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("not a valid url")
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("scheme must be https or http")
	case u.Host == "" || u.Opaque != "":
		return errors.New("must be an absolute url with a host")
	case u.User != nil || u.RawQuery != "" || strings.Contains(raw, "?") || strings.Contains(raw, "#"):
		return errors.New("must not contain user information, a query or a fragment")
	case strings.HasSuffix(raw, "/"):
		return errors.New("must not end with a slash")
	case u.RawPath != "" || strings.ContainsFunc(u.Path, func(r rune) bool { return !isPathChar(r) }):
		return errors.New("path may contain only letters, digits, '-', '.', '_', '~' and '/'")
	case strings.Contains(u.Path, "//") || strings.Contains(u.Path, "/./") || strings.Contains(u.Path, "/../") ||
		strings.HasSuffix(u.Path, "/.") || strings.HasSuffix(u.Path, "/.."):
		return errors.New("path must be clean")
	}
	return nil
}

func isPathChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '-' || r == '.' || r == '_' || r == '~' || r == '/'
}

// validateResource checks a configured resource indicator (RFC 8707 §2).
func validateResource(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("not a valid url")
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("scheme must be https or http")
	case u.Host == "" || u.Opaque != "":
		return errors.New("must be an absolute url with a host")
	case strings.Contains(raw, "#"):
		return errors.New("must not contain a fragment")
	case u.User != nil || strings.Contains(raw, "?"):
		return errors.New("must not contain user information or a query")
	}
	return nil
}

// validateRedirectURI checks a redirect URI for a pre-registered or
// dynamically registered client: https, or http on a loopback host, with no
// fragment or user information.
func validateRedirectURI(raw string) error {
	if len(raw) > 2048 {
		return errors.New("longer than 2048 bytes")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid url")
	}
	switch {
	case u.Host == "" || u.Opaque != "" || !u.IsAbs():
		return errors.New("must be an absolute url with a host")
	case strings.Contains(raw, "#"):
		return errors.New("must not contain a fragment")
	case u.User != nil:
		return errors.New("must not contain user information")
	case !isPrintable(raw) || strings.ContainsAny(raw, " <>\"\\`"):
		return errors.New("contains characters not allowed in a url")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http":
		if !slices.Contains([]string{"localhost", "127.0.0.1", "::1"}, u.Hostname()) {
			return errors.New("http is allowed only for localhost, 127.0.0.1 and [::1]")
		}
		return nil
	}
	return errors.New("scheme must be https (or http for a loopback host)")
}

// isScopeToken reports whether s is an RFC 6749 §3.3 scope-token:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func isScopeToken(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// isPrintable reports whether s has no control characters and is valid
// UTF-8 without replacement characters.
func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}
