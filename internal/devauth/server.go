package devauth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// Paths of the endpoints this package adds to op's, relative to the issuer.
const (
	loginPath    = "/login"
	registerPath = "/register"
)

// maxBodyBytes bounds every request body (registration has its own, lower
// bound).
const maxBodyBytes = 64 << 10

// Server is the development authorization server. It is safe for
// concurrent use.
type Server struct {
	cfg      Config // normalized
	issuer   string
	prefix   string // the issuer's path, "" at the root
	log      *slog.Logger
	now      func() time.Time
	key      *signingKey
	csrfKey  []byte
	scopes   map[string]bool // every known scope
	byName   map[string]*User
	bySub    map[string]*User
	store    *store
	provider *op.Provider
	metadata []byte // the discovery document, served at every well-known URL
	handler  http.Handler
}

// New validates cfg, reporting every problem at once, generates the
// signing key and builds the server. It starts nothing: serve Handler.
func New(cfg Config) (*Server, error) {
	if err := cfg.normalize(); err != nil {
		return nil, errors.Join(errors.New("devauth: invalid config"), err)
	}
	key, err := newSigningKey()
	if err != nil {
		return nil, fmt.Errorf("devauth: %w", err)
	}
	u, _ := url.Parse(cfg.Issuer) // validated
	s := &Server{
		cfg: cfg, issuer: cfg.Issuer, prefix: u.Path, log: cfg.Logger, now: cfg.Now, key: key,
		csrfKey: []byte(rand.Text() + rand.Text()),
		scopes:  map[string]bool{}, byName: map[string]*User{}, bySub: map[string]*User{},
	}
	for _, sc := range append(cfg.Scopes, protocolScopes...) {
		s.scopes[sc] = true
	}
	for i := range s.cfg.Users {
		u := &s.cfg.Users[i]
		s.byName[u.Username], s.bySub[u.Subject] = u, u
	}
	s.store = newStore(s)

	opts := []op.Option{
		op.WithCrypto(tokenCrypto{s}),
		op.WithHttpInterceptors(s.interceptor),
		op.WithCORSOptions(nil), // cors below covers every endpoint
		op.WithAccessTokenVerifierOpts(op.WithSupportedAccessTokenSigningAlgorithms("ES256")),
	}
	if u.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure())
	}
	var cryptoKey [32]byte // unused (WithCrypto replaces op's crypto), random anyway
	_, _ = rand.Read(cryptoKey[:])
	s.provider, err = op.NewProvider(&op.Config{
		CryptoKey:             cryptoKey,
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedScopes:       s.scopeList(),
	}, s.store, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("devauth: %w", err)
	}
	if s.metadata, err = s.buildMetadata(); err != nil {
		return nil, fmt.Errorf("devauth: %w", err)
	}
	s.handler = s.routes()
	return s, nil
}

// Handler serves every endpoint: discovery (OIDC and RFC 8414), authorize,
// the login and consent page, token, introspection, revocation, userinfo,
// keys and, unless disabled, registration. Its paths derive from Issuer,
// so it must be mounted at the root of the issuer's origin.
func (s *Server) Handler() http.Handler { return s.handler }

// Issuer returns the issuer identifier, exactly Config.Issuer.
func (s *Server) Issuer() string { return s.issuer }

// Banner is the warning the CLI prints when it starts the server.
func (s *Server) Banner() string {
	const rule = "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
	registration := "and client registration is open"
	if s.cfg.DisableRegistration {
		registration = "and clients are fixed at startup"
	}
	return rule +
		"!!  DEVELOPMENT ONLY: mcpgate's embedded authorization server.\n" +
		"!!  Issuer " + s.issuer + "\n" +
		"!!  Users, clients, codes and tokens live in memory; the signing key is\n" +
		"!!  new at every start; plain http is allowed; passwords are set in clear\n" +
		"!!  " + registration + ". Do not expose it beyond your machine,\n" +
		"!!  and never trust its tokens in production: use a real identity provider.\n" +
		rule
}

// routes mounts op's endpoints that this server serves, and its own.
// Anything else op would serve (its login callback, end_session, device
// authorization, health) is not mounted.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	p := s.prefix
	var opH http.Handler = s.provider
	if p != "" {
		opH = http.StripPrefix(p, s.provider)
	}
	meta := http.HandlerFunc(s.serveMetadata)
	mux.Handle("GET "+p+"/.well-known/openid-configuration", meta)
	mux.Handle("GET /.well-known/oauth-authorization-server"+p, meta)
	if p != "" {
		mux.Handle("GET /.well-known/openid-configuration"+p, meta)
	}
	e := s.provider.Endpoints()
	mux.Handle("GET "+p+e.Authorization.Relative(), opH)
	mux.Handle("POST "+p+e.Authorization.Relative(), opH)
	mux.Handle("POST "+p+e.Token.Relative(), opH)
	mux.Handle("POST "+p+e.Introspection.Relative(), opH)
	mux.Handle("POST "+p+e.Revocation.Relative(), opH)
	mux.Handle("GET "+p+e.Userinfo.Relative(), opH)
	mux.Handle("POST "+p+e.Userinfo.Relative(), opH)
	mux.Handle("GET "+p+e.JwksURI.Relative(), opH)
	mux.HandleFunc("GET "+p+loginPath, s.serveLoginPage)
	mux.HandleFunc("POST "+p+loginPath, s.serveLoginSubmit)
	if !s.cfg.DisableRegistration {
		mux.HandleFunc("POST "+p+registerPath, s.serveRegister)
	}
	login := p + loginPath
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		}
		// CORS for browser-based clients (the MCP Inspector, say): any
		// origin, no credentials. Not on the login page.
		if r.Header.Get("Origin") != "" && r.URL.Path != login {
			w.Header().Set("Access-Control-Allow-Origin", "*")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
				w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version")
				w.Header().Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) scopeList() []string {
	out := append([]string(nil), protocolScopes...)
	for _, sc := range s.cfg.Scopes {
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out
}

func (s *Server) userBySubject(sub string) (*User, bool) {
	u, ok := s.bySub[sub]
	return u, ok
}
