// This file implements OAuth 2.0 Dynamic Client Registration (RFC 7591),
// which zitadel's op package does not provide.
// See https://www.rfc-editor.org/rfc/rfc7591.

package devauth

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// maxRegistrationBytes bounds a registration request body.
const maxRegistrationBytes = 16 << 10

// RFC 7591 §3.2.2 error codes.
const (
	errInvalidRedirectURI    = "invalid_redirect_uri"
	errInvalidClientMetadata = "invalid_client_metadata"
)

// registration is the client metadata this server reads; any other member
// is ignored (RFC 7591 §2).
type registration struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name"`
	Scope                   string   `json:"scope"`
}

// registered is the RFC 7591 §3.2.1 response.
type registered struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
}

// registrationError is an RFC 7591 §3.2.2 error.
type registrationError struct{ code, desc string }

func (e *registrationError) Error() string { return e.code + ": " + e.desc }

func (s *Server) serveRegister(w http.ResponseWriter, r *http.Request) {
	reg, err := decodeRegistration(w, r)
	if err == nil {
		err = s.validateRegistration(reg)
	}
	var re *registrationError
	switch {
	case errors.As(err, &re):
		writeOAuthError(w, http.StatusBadRequest, re.code, re.desc)
		return
	case errors.Is(err, errTooLarge):
		writeOAuthError(w, http.StatusRequestEntityTooLarge, errInvalidClientMetadata, "registration request too large")
		return
	}
	resp, ok := s.register(reg)
	if !ok {
		writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable",
			fmt.Sprintf("registration limit reached (%d clients): restart the development server", MaxRegisteredClients))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(resp)
}

var errTooLarge = errors.New("request too large")

// decodeRegistration reads one JSON object of at most maxRegistrationBytes.
func decodeRegistration(w http.ResponseWriter, r *http.Request) (*registration, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, &registrationError{errInvalidClientMetadata, "the request must be application/json"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistrationBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, &registrationError{errInvalidClientMetadata, "the request body could not be read"}
	}
	return parseRegistration(body)
}

// parseRegistration decodes the registration body: a single JSON object
// with the member types of RFC 7591.
func parseRegistration(body []byte) (*registration, error) {
	var reg registration
	if t := bytes.TrimSpace(body); !utf8.Valid(body) || len(t) == 0 || t[0] != '{' {
		return nil, &registrationError{errInvalidClientMetadata, "the request body must be a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&reg); err != nil {
		return nil, &registrationError{errInvalidClientMetadata, "malformed JSON or a member of the wrong type"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &registrationError{errInvalidClientMetadata, "trailing data after the JSON object"}
	}
	return &reg, nil
}

// validateRegistration applies defaults (RFC 7591 §2) and checks every
// member this server uses.
func (s *Server) validateRegistration(reg *registration) error {
	for i, ru := range reg.RedirectURIs {
		if err := validateRedirectURI(ru); err != nil {
			return &registrationError{errInvalidRedirectURI, fmt.Sprintf("redirect_uris[%d]: %v", i, err)}
		}
	}
	switch reg.TokenEndpointAuthMethod {
	case "":
		reg.TokenEndpointAuthMethod = string(oidc.AuthMethodBasic)
	case string(oidc.AuthMethodNone), string(oidc.AuthMethodBasic), string(oidc.AuthMethodPost):
	default:
		return &registrationError{errInvalidClientMetadata,
			"token_endpoint_auth_method must be none, client_secret_basic or client_secret_post"}
	}
	if reg.GrantTypes == nil {
		reg.GrantTypes = []string{GrantAuthorizationCode}
	}
	for _, g := range reg.GrantTypes {
		if g != GrantAuthorizationCode && g != GrantRefreshToken && g != GrantClientCredentials {
			return &registrationError{errInvalidClientMetadata,
				"grant_types may contain only authorization_code, refresh_token and client_credentials"}
		}
	}
	reg.GrantTypes = slices.Compact(slices.Sorted(slices.Values(reg.GrantTypes)))
	code := slices.Contains(reg.GrantTypes, GrantAuthorizationCode)
	if reg.ResponseTypes == nil && code {
		reg.ResponseTypes = []string{string(oidc.ResponseTypeCode)}
	}
	for _, rt := range reg.ResponseTypes {
		if rt != string(oidc.ResponseTypeCode) {
			return &registrationError{errInvalidClientMetadata, "response_types may contain only code"}
		}
	}
	reg.ResponseTypes = slices.Compact(reg.ResponseTypes)
	if code != (len(reg.ResponseTypes) > 0) {
		return &registrationError{errInvalidClientMetadata,
			"response_types must be [code] exactly when grant_types includes authorization_code"}
	}
	if code && len(reg.RedirectURIs) == 0 {
		return &registrationError{errInvalidRedirectURI, "redirect_uris is required for the authorization_code grant"}
	}
	if slices.Contains(reg.GrantTypes, GrantClientCredentials) && reg.TokenEndpointAuthMethod == string(oidc.AuthMethodNone) {
		return &registrationError{errInvalidClientMetadata, "client_credentials needs a client secret (token_endpoint_auth_method other than none)"}
	}
	if utf8.RuneCountInString(reg.ClientName) > 200 || !isPrintable(reg.ClientName) {
		return &registrationError{errInvalidClientMetadata, "client_name must be printable and at most 200 characters"}
	}
	for _, sc := range strings.Fields(reg.Scope) {
		if !s.scopes[sc] {
			return &registrationError{errInvalidClientMetadata, "scope contains a scope this server does not know"}
		}
	}
	reg.Scope = strings.Join(strings.Fields(reg.Scope), " ")
	return nil
}

// register stores a validated registration; it reports false when the
// limit is reached.
func (s *Server) register(reg *registration) (*registered, bool) {
	id := "dcr_" + rand.Text()
	var secret string
	if reg.TokenEndpointAuthMethod != string(oidc.AuthMethodNone) {
		secret = rand.Text() + rand.Text()
	}
	var scopes []string
	if reg.Scope != "" {
		scopes = strings.Fields(reg.Scope)
	}
	name := reg.ClientName
	if name == "" {
		name = id
	}
	c := s.newClient(id, name, secret, oidc.AuthMethod(reg.TokenEndpointAuthMethod), reg.RedirectURIs, reg.GrantTypes, scopes)
	now := s.now()
	st := s.store
	st.mu.Lock()
	if st.registered >= MaxRegisteredClients {
		st.mu.Unlock()
		return nil, false
	}
	st.registered++
	st.clients[id] = c
	st.mu.Unlock()
	s.log.Info("devauth: client registered", "client_id", id, "client_name", name,
		"auth_method", reg.TokenEndpointAuthMethod, "grant_types", strings.Join(reg.GrantTypes, " "))

	resp := &registered{
		ClientID: id, ClientSecret: secret, ClientIDIssuedAt: now.Unix(),
		RedirectURIs: reg.RedirectURIs, TokenEndpointAuthMethod: reg.TokenEndpointAuthMethod,
		GrantTypes: reg.GrantTypes, ResponseTypes: reg.ResponseTypes, ClientName: reg.ClientName, Scope: reg.Scope,
	}
	if secret != "" {
		never := int64(0)
		resp.ClientSecretExpiresAt = &never
	}
	if resp.ResponseTypes == nil {
		resp.ResponseTypes = []string{}
	}
	if resp.RedirectURIs == nil {
		resp.RedirectURIs = []string{}
	}
	return resp, true
}
