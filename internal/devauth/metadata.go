// This file implements authorization server metadata: RFC 8414 (with the
// issuer-path insertion rule of §3.1) and OpenID Connect Discovery 1.0.
// See https://www.rfc-editor.org/rfc/rfc8414 and
// https://openid.net/specs/openid-connect-discovery-1_0.html.
//
// op serves its own discovery document, but it advertises what op could do
// (implicit, JWT bearer, id_token response types) rather than what this
// server does, and knows neither registration nor RFC 8414. One document,
// built at startup, is served at every well-known location.

package devauth

import (
	"encoding/json"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

type metadata struct {
	Issuer                                    string   `json:"issuer"`
	AuthorizationEndpoint                     string   `json:"authorization_endpoint"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	JWKSURI                                   string   `json:"jwks_uri"`
	RegistrationEndpoint                      string   `json:"registration_endpoint,omitempty"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	UserinfoEndpoint                          string   `json:"userinfo_endpoint"`
	ScopesSupported                           []string `json:"scopes_supported"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	ResponseModesSupported                    []string `json:"response_modes_supported"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported             []string `json:"code_challenge_methods_supported"`
	SubjectTypesSupported                     []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported          []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                           []string `json:"claims_supported"`
}

func (s *Server) buildMetadata() ([]byte, error) {
	e := s.provider.Endpoints()
	md := metadata{
		Issuer:                            s.issuer,
		AuthorizationEndpoint:             e.Authorization.Absolute(s.issuer),
		TokenEndpoint:                     e.Token.Absolute(s.issuer),
		JWKSURI:                           e.JwksURI.Absolute(s.issuer),
		IntrospectionEndpoint:             e.Introspection.Absolute(s.issuer),
		RevocationEndpoint:                e.Revocation.Absolute(s.issuer),
		UserinfoEndpoint:                  e.Userinfo.Absolute(s.issuer),
		ScopesSupported:                   s.scopeList(),
		ResponseTypesSupported:            []string{string(oidc.ResponseTypeCode)},
		ResponseModesSupported:            []string{string(oidc.ResponseModeQuery)},
		GrantTypesSupported:               []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantTokenExchange},
		TokenEndpointAuthMethodsSupported: []string{"none", "client_secret_basic", "client_secret_post"},
		IntrospectionEndpointAuthMethodsSupported: []string{"client_secret_basic"},
		RevocationEndpointAuthMethodsSupported:    []string{"none", "client_secret_basic", "client_secret_post"},
		CodeChallengeMethodsSupported:             []string{string(oidc.CodeChallengeMethodS256)},
		SubjectTypesSupported:                     []string{"public"},
		IDTokenSigningAlgValuesSupported:          []string{"ES256"},
		ClaimsSupported: []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "auth_time",
			"act", "name", "preferred_username", "email"},
	}
	if !s.cfg.DisableRegistration {
		md.RegistrationEndpoint = s.issuer + registerPath
	}
	return json.Marshal(md)
}

func (s *Server) serveMetadata(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(s.metadata)
}
