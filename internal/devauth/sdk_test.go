package devauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/mcpgate/mcpgate/internal/authn"
	"github.com/mcpgate/mcpgate/internal/egress"
)

// TestGoSDKClient runs go-sdk's OAuth client (protected resource metadata,
// authorization server discovery, dynamic registration, PKCE, resource,
// refresh-token request) against this server, the login page played by
// Login, up to a tool call on an MCP server that validates the token with
// mcpgate's authn.
func TestGoSDKClient(t *testing.T) {
	rs := httptest.NewUnstartedServer(nil)
	resource := "http://" + rs.Listener.Addr().String() + "/mcp"
	e := newEnv(t, func(c *Config) { c.Resources = append(c.Resources, resource) })

	hc, err := egress.New(egress.Config{AllowHTTPLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	a, err := authn.New(authn.Config{Issuers: []authn.IssuerConfig{{Issuer: e.srv.Issuer(), Algorithms: []string{"ES256"}, HTTP: hc}}},
		authn.Deps{Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(ctx context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		id, err := a.Authenticate(ctx, authn.Request{Header: r.Header, Resource: resource})
		if err != nil {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{Scopes: id.Scopes, Expiration: id.Expiry, UserID: id.Subject}, nil
	}
	server := mcp.NewServer(&mcp.Implementation{Name: "docs", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "whoami"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: req.Extra.TokenInfo.UserID}}}, nil, nil
	})
	prm := "http://" + rs.Listener.Addr().String() + "/.well-known/oauth-protected-resource/mcp"
	mux := http.NewServeMux()
	mux.Handle("/.well-known/oauth-protected-resource/mcp", auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
		Resource: resource, AuthorizationServers: []string{e.srv.Issuer()}, ScopesSupported: []string{"docs:read"},
	}))
	mux.Handle("/mcp", auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{ResourceMetadataURL: prm, Scopes: []string{"docs:read"}})(
		mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)))
	rs.Config.Handler = mux
	rs.Start()
	t.Cleanup(rs.Close)

	var sawRefresh bool
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "sdk test", RedirectURIs: []string{"http://127.0.0.1/callback"},
			TokenEndpointAuthMethod: "none", GrantTypes: []string{"authorization_code", "refresh_token"},
		}},
		RequestRefreshToken: true,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			redirect, err := e.srv.Login(ctx, args.URL, alice, e.pw[alice])
			if err != nil {
				return nil, err
			}
			q := redirect.Query()
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state")}, nil
		},
		NewTokenSource: func(ctx context.Context, cfg *oauth2.Config, tok *oauth2.Token) (oauth2.TokenSource, error) {
			sawRefresh = tok.RefreshToken != ""
			return cfg.TokenSource(ctx, tok), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "sdk-test", Version: "1"}, nil)
	session, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: resource, OAuthHandler: h, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer session.Close()
	res, err := session.CallTool(t.Context(), &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != aliceSubject {
		t.Errorf("whoami %q, want %q", got, aliceSubject)
	}
	if !sawRefresh {
		t.Error("no refresh token issued to a client that asked for offline_access")
	}
}
