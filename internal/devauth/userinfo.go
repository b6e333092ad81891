package devauth

import (
	"context"
	"errors"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// SetUserinfoFromToken answers the userinfo endpoint for an active token.
func (st *store) SetUserinfoFromToken(_ context.Context, ui *oidc.UserInfo, id, _, _ string) error {
	at, ok := st.activeAccessToken(id)
	if !ok {
		return errors.New("token not active")
	}
	ui.Subject = at.subject
	st.s.setUserClaims(ui, at.subject, at.scopes)
	return nil
}

// SetUserinfoFromRequest fills the ID token's subject (op replaces the
// token's sub with this UserInfo's) and its profile and email claims.
func (st *store) SetUserinfoFromRequest(_ context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	ui.Subject = req.GetSubject()
	st.s.setUserClaims(ui, req.GetSubject(), scopes)
	return nil
}

func (s *Server) setUserClaims(ui *oidc.UserInfo, subject string, scopes []string) {
	u, ok := s.userBySubject(subject)
	if !ok {
		return
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		ui.Name, ui.PreferredUsername = u.Name, u.Username
	}
	if slices.Contains(scopes, oidc.ScopeEmail) && u.Email != "" {
		ui.Email = u.Email
	}
}

func (st *store) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil // deprecated by op in favour of SetUserinfoFromRequest
}

func (st *store) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil // access tokens are minted by tokenCrypto, not op
}
