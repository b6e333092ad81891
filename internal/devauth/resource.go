// This file implements resource indicators (RFC 8707) on top of zitadel's
// op package, which reads `resource` only for token exchange.
// See https://www.rfc-editor.org/rfc/rfc8707.

package devauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// resourceKey is the context key of the request's resource parameters.
type resourceKey struct{}

// interceptor runs before every op endpoint (op.WithHttpInterceptors). It
// parses the form once, stores the `resource` values in the context for the
// storage (CreateAuthRequest and the token grants read them), and refuses
// the token grants op would otherwise serve but this server does not.
func (s *Server) interceptor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			writeOAuthError(w, http.StatusBadRequest, oidc.InvalidRequest, "the request body is not a valid form")
			return
		}
		if r.URL.Path == s.provider.TokenEndpoint().Relative() {
			switch r.PostForm.Get("grant_type") {
			case string(oidc.GrantTypeBearer), string(oidc.GrantTypeDeviceCode), string(oidc.GrantTypeImplicit):
				writeOAuthError(w, http.StatusBadRequest, oidc.UnsupportedGrantType, "grant type not supported by this server")
				return
			}
		}
		ctx := context.WithValue(r.Context(), resourceKey{}, r.Form["resource"])
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requestedResources returns the resource parameters of the request in ctx.
func requestedResources(ctx context.Context) []string {
	v, _ := ctx.Value(resourceKey{}).([]string)
	return v
}

// resolveResource maps the request's resource parameters to the configured
// resource they name: "" when there are none; invalid_target when there is
// more than one, when it is not an absolute URI without a fragment, or when
// it is not one of Config.Resources (a trailing-slash difference is
// tolerated; the configured form is returned).
func (s *Server) resolveResource(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", invalidTarget("only one resource per request is supported")
	}
	v := values[0]
	u, err := url.Parse(v)
	if err != nil || !u.IsAbs() || u.Host == "" || strings.Contains(v, "#") {
		return "", invalidTarget("resource must be an absolute URI without a fragment")
	}
	want := strings.TrimSuffix(v, "/")
	for _, r := range s.cfg.Resources {
		if strings.TrimSuffix(r, "/") == want {
			return r, nil
		}
	}
	return "", invalidTarget("resource is not served by this authorization server")
}

// requireResource is resolveResource for requests that must name a target.
func (s *Server) requireResource(values []string) (string, error) {
	r, err := s.resolveResource(values)
	if err == nil && r == "" {
		return "", invalidTarget("the resource parameter is required (RFC 8707)")
	}
	return r, err
}

// grantResource checks the resource of a code or refresh token request
// against the one the grant was authorized for: absent, or the same.
func (s *Server) grantResource(ctx context.Context, granted string) (string, error) {
	r, err := s.resolveResource(requestedResources(ctx))
	if err != nil {
		return "", err
	}
	if r != "" && r != granted {
		return "", invalidTarget("resource differs from the one this grant was authorized for")
	}
	return granted, nil
}

func invalidTarget(desc string) *oidc.Error {
	return &oidc.Error{ErrorType: oidc.InvalidTarget, Description: desc}
}

// writeOAuthError writes an RFC 6749 §5.2 error response.
func writeOAuthError(w http.ResponseWriter, status int, code any, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": code, "error_description": desc})
}
