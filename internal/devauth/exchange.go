// This file implements OAuth 2.0 Token Exchange (RFC 8693) for op's
// TokenExchangeStorage: an access token this server issued is exchanged
// for one whose aud is the requested resource (or audience) and whose act
// claim names the requesting client.
// See https://www.rfc-editor.org/rfc/rfc8693.

package devauth

import (
	"context"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// ValidateTokenExchangeRequest checks an exchange op has parsed (and whose
// client it has authenticated): a client allowed the grant, an active
// access token of ours as subject_token, no actor_token, an access token
// requested, one target, and scopes no wider than the subject token's.
func (st *store) ValidateTokenExchangeRequest(_ context.Context, req op.TokenExchangeRequest) error {
	c, err := st.client(req.GetClientID())
	if err != nil {
		return oidc.ErrInvalidClient()
	}
	if !c.hasGrant(GrantTokenExchange) {
		return oidc.ErrUnauthorizedClient().WithDescription("this client may not use token exchange")
	}
	if req.GetExchangeSubjectTokenType() != oidc.AccessTokenType {
		return oidc.ErrInvalidRequest().WithDescription("subject_token_type must be urn:ietf:params:oauth:token-type:access_token")
	}
	if req.GetExchangeActorTokenIDOrToken() != "" || req.GetExchangeActorTokenType() != "" {
		return oidc.ErrInvalidRequest().WithDescription("actor_token is not supported: act names the requesting client")
	}
	switch req.GetRequestedTokenType() {
	case "":
		req.SetRequestedTokenType(oidc.AccessTokenType)
	case oidc.AccessTokenType:
	default:
		return oidc.ErrInvalidRequest().WithDescription("requested_token_type must be urn:ietf:params:oauth:token-type:access_token")
	}
	subj, ok := st.activeAccessToken(req.GetExchangeSubjectTokenIDOrToken())
	if !ok {
		return oidc.ErrInvalidRequest().WithDescription("subject_token is not active")
	}
	if _, err := st.s.exchangeTarget(req); err != nil {
		return err
	}
	scopes := req.GetScopes()
	if len(scopes) == 0 {
		scopes = subj.scopes
	}
	for _, sc := range scopes {
		if !slices.Contains(subj.scopes, sc) {
			return oidc.ErrInvalidScope().WithDescription("requested scopes exceed the subject token's")
		}
	}
	granted, err := st.s.grantableScopes(scopes, c)
	if err != nil {
		return err
	}
	req.SetSubject(subj.subject)
	req.SetCurrentScopes(granted)
	return nil
}

// exchangeTarget resolves the resource and audience parameters, together,
// to exactly one configured resource.
func (s *Server) exchangeTarget(req op.TokenExchangeRequest) (string, error) {
	var target string
	for _, v := range append(slices.Clone(req.GetResourses()), req.GetAudience()...) {
		r, err := s.resolveResource([]string{v})
		if err != nil {
			return "", err
		}
		if target != "" && r != target {
			return "", invalidTarget("only one target (resource or audience) per request is supported")
		}
		target = r
	}
	if target == "" {
		return "", invalidTarget("a resource or audience parameter is required (RFC 8707, RFC 8693)")
	}
	return target, nil
}

// exchangeIssuance is the token an exchange yields. It belongs to the
// subject token's grant, so revoking that grant revokes it too.
func (st *store) exchangeIssuance(req op.TokenExchangeRequest) (issuance, error) {
	subj, ok := st.activeAccessToken(req.GetExchangeSubjectTokenIDOrToken())
	if !ok {
		return issuance{}, oidc.ErrInvalidRequest().WithDescription("subject_token is not active")
	}
	target, err := st.s.exchangeTarget(req)
	if err != nil {
		return issuance{}, err
	}
	return issuance{
		grantID: subj.grantID, clientID: req.GetClientID(), subject: subj.subject, audience: target,
		scopes: req.GetScopes(), authTime: subj.authTime,
		actor: &actorClaim{Subject: req.GetClientID(), Actor: subj.actor},
	}, nil
}

// CreateTokenExchangeRequest is called once the exchange is validated;
// nothing needs storing.
func (st *store) CreateTokenExchangeRequest(context.Context, op.TokenExchangeRequest) error {
	return nil
}

// GetPrivateClaimsFromTokenExchangeRequest is unused: tokenCrypto mints the
// access token, act claim included, from the storage's record.
func (st *store) GetPrivateClaimsFromTokenExchangeRequest(context.Context, op.TokenExchangeRequest) (map[string]any, error) {
	return nil, nil
}

// SetUserinfoFromTokenExchangeRequest is unused: only access tokens are
// issued by exchange.
func (st *store) SetUserinfoFromTokenExchangeRequest(context.Context, *oidc.UserInfo, op.TokenExchangeRequest) error {
	return nil
}
