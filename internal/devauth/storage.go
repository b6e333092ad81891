// This file implements the client and authorization-request side of the
// storage, where PKCE (RFC 7636) is required, with S256, of every client.
// See https://www.rfc-editor.org/rfc/rfc7636.

package devauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// store is the server's in-memory op.Storage: clients, authorization
// requests and codes (this file), access and refresh tokens (tokens.go),
// token exchange (exchange.go). It never trusts what op passes besides ids:
// every decision is taken on its own records, with the server's clock.
type store struct {
	s *Server

	mu         sync.Mutex               // guards the fields below
	clients    map[string]*client       // pre-registered and registered, by client_id
	registered int                      // dynamically registered clients
	authReqs   map[string]*authRequest  // by id
	codes      map[string]string        // code → authorization request id
	access     map[string]*accessToken  // by jti
	refresh    map[string]*refreshToken // by refreshKey(token)
	revoked    map[string]time.Time     // revoked grant id → when to forget it
	lastSweep  time.Time
}

var (
	_ op.Storage                   = (*store)(nil)
	_ op.ClientCredentialsStorage  = (*store)(nil)
	_ op.TokenExchangeStorage      = (*store)(nil)
	_ op.CanSetUserinfoFromRequest = (*store)(nil)
)

func newStore(s *Server) *store {
	st := &store{
		s:        s,
		clients:  map[string]*client{},
		authReqs: map[string]*authRequest{},
		codes:    map[string]string{},
		access:   map[string]*accessToken{},
		refresh:  map[string]*refreshToken{},
		revoked:  map[string]time.Time{},
	}
	for _, c := range s.cfg.Clients {
		st.clients[c.ID] = s.newClient(c.ID, c.Name, c.Secret, authMethodFor(c.Secret), c.RedirectURIs, c.GrantTypes, c.Scopes)
	}
	return st
}

func authMethodFor(secret string) oidc.AuthMethod {
	if secret == "" {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

// authRequest is an authorization request awaiting login, then its code.
// op gets copies (clone), never the stored record.
type authRequest struct {
	id, clientID, redirectURI, state, nonce string
	responseMode                            oidc.ResponseMode
	requested                               []string // scopes requested ∩ client's
	granted                                 []string // requested ∩ user's, set at login
	resource                                string
	challenge                               string // S256
	created                                 time.Time
	subject                                 string
	authTime                                time.Time
	done                                    bool
	code                                    string
	codeIssued                              time.Time
	redeemed                                bool
	failures                                int
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) clone() *authRequest {
	c := *a
	c.requested = slices.Clone(a.requested)
	c.granted = slices.Clone(a.granted)
	return &c
}

func (a *authRequest) GetID() string          { return a.id }
func (a *authRequest) GetACR() string         { return "" }
func (a *authRequest) GetAudience() []string  { return []string{a.clientID} } // the ID token's
func (a *authRequest) GetAuthTime() time.Time { return a.authTime }
func (a *authRequest) GetClientID() string    { return a.clientID }
func (a *authRequest) GetNonce() string       { return a.nonce }
func (a *authRequest) GetRedirectURI() string { return a.redirectURI }
func (a *authRequest) GetState() string       { return a.state }
func (a *authRequest) GetSubject() string     { return a.subject }
func (a *authRequest) Done() bool             { return a.done }
func (a *authRequest) GetResponseType() oidc.ResponseType {
	return oidc.ResponseTypeCode
}
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.responseMode }
func (a *authRequest) GetAMR() []string {
	if a.done {
		return []string{"pwd"}
	}
	return nil
}
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	return &oidc.CodeChallenge{Challenge: a.challenge, Method: oidc.CodeChallengeMethodS256}
}
func (a *authRequest) GetScopes() []string {
	if a.done {
		return a.granted
	}
	return a.requested
}

// CreateAuthRequest stores a validated authorization request. op has
// checked the client, the exact redirect URI and the response type; this
// adds what MCP needs: PKCE S256, a resource, known scopes.
func (st *store) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s := st.s
	switch {
	case req.ResponseMode != "" && req.ResponseMode != oidc.ResponseModeQuery:
		return nil, oidc.ErrInvalidRequest().WithDescription("only the query response mode is supported")
	case slices.Contains(req.Prompt, oidc.PromptNone):
		return nil, oidc.ErrLoginRequired().WithDescription("this server has no sessions: the user must log in")
	case req.CodeChallenge == "":
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge is required (PKCE with S256)")
	case req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case !isS256Challenge(req.CodeChallenge):
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge must be a base64url SHA-256 digest (43 characters)")
	}
	resource, err := s.requireResource(requestedResources(ctx))
	if err != nil {
		return nil, err
	}
	c, err := st.client(req.ClientID)
	if err != nil {
		return nil, err
	}
	scopes, err := s.grantableScopes(req.Scopes, c)
	if err != nil {
		return nil, err
	}
	now := s.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sweep(now)
	if len(st.authReqs) >= MaxPendingAuthRequests {
		return nil, &oidc.Error{ErrorType: "temporarily_unavailable", Description: "too many pending authorization requests"}
	}
	ar := &authRequest{
		id: authRequestPrefix + rand.Text(), clientID: c.id, redirectURI: req.RedirectURI,
		state: req.State, nonce: req.Nonce, responseMode: req.ResponseMode, requested: scopes,
		resource: resource, challenge: req.CodeChallenge, created: now,
	}
	st.authReqs[ar.id] = ar
	return ar.clone(), nil
}

// isS256Challenge reports whether c looks like base64url(SHA-256(verifier))
// without padding: 43 characters of the base64url alphabet.
func isS256Challenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// pendingAuthRequest returns a copy of an authorization request that is
// still waiting for its user.
func (st *store) pendingAuthRequest(id string) (*authRequest, bool) {
	now := st.s.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	ar, ok := st.authReqs[id]
	if !ok || ar.done || now.Sub(ar.created) >= AuthRequestTTL {
		return nil, false
	}
	return ar.clone(), true
}

// completeAuthRequest records the user's approval.
func (st *store) completeAuthRequest(id, subject string, granted []string) (*authRequest, bool) {
	now := st.s.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	ar, ok := st.authReqs[id]
	if !ok || ar.done || now.Sub(ar.created) >= AuthRequestTTL {
		return nil, false
	}
	ar.done, ar.subject, ar.granted, ar.authTime = true, subject, granted, now
	return ar.clone(), true
}

// failLogin counts a wrong password; it reports whether the request may
// still be tried.
func (st *store) failLogin(id string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	ar, ok := st.authReqs[id]
	if !ok {
		return false
	}
	ar.failures++
	return ar.failures < maxLoginFailures
}

// dropAuthRequest forgets a request that was denied.
func (st *store) dropAuthRequest(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.authReqs, id)
}

func (st *store) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ar, ok := st.authReqs[id]
	if !ok {
		return nil, errors.New("unknown authorization request")
	}
	return ar.clone(), nil
}

// SaveAuthCode binds the one code of a completed request.
func (st *store) SaveAuthCode(_ context.Context, id, code string) error {
	now := st.s.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	ar, ok := st.authReqs[id]
	if !ok || !ar.done || ar.code != "" {
		return oidc.ErrInvalidRequest().WithDescription("authorization request is not awaiting a code")
	}
	ar.code, ar.codeIssued = code, now
	st.codes[code] = id
	return nil
}

// AuthRequestByCode redeems a code: it works once, within CodeTTL. A second
// use revokes every token issued from it (RFC 6749 §4.1.2).
func (st *store) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	now := st.s.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	ar, ok := st.authReqs[st.codes[code]]
	switch {
	case !ok:
		return nil, errors.New("unknown code")
	case now.Sub(ar.codeIssued) >= CodeTTL:
		return nil, errors.New("code expired")
	case ar.redeemed:
		st.revokeGrantLocked(ar.id, now)
		st.s.log.Warn("devauth: authorization code reused; tokens issued from it revoked", "client_id", ar.clientID)
		return nil, errors.New("code already used")
	}
	ar.redeemed = true
	return ar.clone(), nil
}

// DeleteAuthRequest is called by op once the code's tokens are issued. The
// record stays (redeemed) until it expires, to detect a replayed code.
func (st *store) DeleteAuthRequest(context.Context, string) error { return nil }

// client is a pre-registered or registered client; immutable once stored.
type client struct {
	id, name     string
	secretHash   [32]byte // SHA-256 of the secret; zero for public clients
	authMethod   oidc.AuthMethod
	redirectURIs []string
	grantTypes   []oidc.GrantType
	scopes       []string // nil → all
	loginURL     string
	idTokenTTL   time.Duration
}

var _ op.Client = (*client)(nil)

func (s *Server) newClient(id, name, secret string, method oidc.AuthMethod, redirects, grants, scopes []string) *client {
	c := &client{
		id: id, name: name, authMethod: method, redirectURIs: slices.Clone(redirects),
		scopes: slices.Clone(scopes), loginURL: s.issuer + loginPath, idTokenTTL: s.cfg.AccessTokenTTL,
	}
	if secret != "" {
		c.secretHash = sha256.Sum256([]byte(secret))
	}
	for _, g := range grants {
		c.grantTypes = append(c.grantTypes, oidc.GrantType(g))
	}
	return c
}

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return c.redirectURIs }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return c.authMethod }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType         { return c.grantTypes }
func (c *client) LoginURL(id string) string            { return c.loginURL + "?id=" + id }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer } // see token.go
func (c *client) IDTokenLifetime() time.Duration       { return c.idTokenTTL }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }

// DevMode lets op accept the http loopback redirect URIs that New and
// registration validated; matching stays exact.
func (c *client) DevMode() bool { return true }

// IsScopeAllowed keeps every scope in the request: CreateAuthRequest
// refuses unknown ones and narrows to the client's.
func (c *client) IsScopeAllowed(string) bool { return true }

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) confidential() bool { return c.authMethod != oidc.AuthMethodNone }

func (c *client) hasGrant(g string) bool { return slices.Contains(c.grantTypes, oidc.GrantType(g)) }

func (st *store) client(id string) (*client, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	c, ok := st.clients[id]
	if !ok {
		return nil, errors.New("unknown client")
	}
	return c, nil
}

func (st *store) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	return st.client(id)
}

// AuthorizeClientIDSecret authenticates a confidential client; public
// clients cannot authenticate.
func (st *store) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, err := st.client(id)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(secret))
	if !c.confidential() || subtle.ConstantTimeCompare(sum[:], c.secretHash[:]) != 1 {
		return errors.New("client authentication failed")
	}
	return nil
}

func (st *store) SigningKey(context.Context) (op.SigningKey, error) { return st.s.key, nil }
func (st *store) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}
func (st *store) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{st.s.key}}, nil
}

func (st *store) Health(context.Context) error                           { return nil }
func (st *store) TerminateSession(context.Context, string, string) error { return nil }

// The JWT profile grant (RFC 7523) is not served: no client keys.
func (st *store) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("jwt profile not supported")
}
func (st *store) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("jwt profile not supported")
}
