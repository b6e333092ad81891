// This file implements the client credentials grant (RFC 6749 §4.4) for
// op's ClientCredentialsStorage: sub is the client, aud the resource.
// See https://www.rfc-editor.org/rfc/rfc6749#section-4.4.

package devauth

import (
	"context"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// clientCredentialsRequest is the op.TokenRequest of a client credentials
// grant: sub is the client.
type clientCredentialsRequest struct {
	clientID, resource string
	scopes             []string
}

func (r *clientCredentialsRequest) GetSubject() string    { return r.clientID }
func (r *clientCredentialsRequest) GetAudience() []string { return []string{r.resource} }
func (r *clientCredentialsRequest) GetScopes() []string   { return r.scopes }

// ClientCredentials authenticates a confidential client for the client
// credentials grant.
func (st *store) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	if err := st.AuthorizeClientIDSecret(ctx, id, secret); err != nil {
		return nil, err
	}
	return st.client(id)
}

// ClientCredentialsTokenRequest checks the target (required) and scopes.
func (st *store) ClientCredentialsTokenRequest(ctx context.Context, id string, scopes []string) (op.TokenRequest, error) {
	resource, err := st.s.requireResource(requestedResources(ctx))
	if err != nil {
		return nil, err
	}
	c, err := st.client(id)
	if err != nil {
		return nil, err
	}
	granted, err := st.s.grantableScopes(scopes, c)
	if err != nil {
		return nil, err
	}
	return &clientCredentialsRequest{clientID: id, resource: resource, scopes: granted}, nil
}

// grantableScopes refuses unknown scopes (invalid_scope) and narrows the
// rest to the client's: offline_access only with the refresh_token grant.
func (s *Server) grantableScopes(requested []string, c *client) ([]string, error) {
	var out []string
	for _, sc := range requested {
		if !s.scopes[sc] {
			return nil, oidc.ErrInvalidScope().WithDescription("a requested scope is not supported by this server")
		}
		switch {
		case slices.Contains(out, sc):
		case sc == oidc.ScopeOfflineAccess && !c.hasGrant(GrantRefreshToken):
		case c.scopes == nil || slices.Contains(c.scopes, sc) || slices.Contains(protocolScopes, sc):
			out = append(out, sc)
		}
	}
	return out, nil
}
