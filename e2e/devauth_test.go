package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/devauth"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// devAuthEnv is the development authorization server, a go-sdk MCP server
// and mcpgate in front of it, on loopback.
type devAuthEnv struct {
	idp      *devauth.Server
	endpoint string // the route
}

func newDevAuthEnv(t *testing.T) *devAuthEnv {
	t.Helper()
	idpL := listen(t)
	gwL := listen(t)
	gwBase := "http://" + gwL.Addr().String()
	endpoint := gwBase + "/servers/notes/mcp"
	idp, err := devauth.New(devauth.Config{
		Issuer:    "http://" + idpL.Addr().String(),
		Users:     []devauth.User{{Username: "alice", Password: "pw-alice", Subject: "alice"}},
		Clients:   []devauth.Client{{ID: "svc", Secret: "svc-secret", Name: "service", GrantTypes: []string{devauth.GrantClientCredentials}}},
		Resources: []string{endpoint},
		Scopes:    []string{"notes:read"},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: idp.Handler()}
	go func() { _ = srv.Serve(idpL) }()
	t.Cleanup(func() { srv.Close() })

	up := mcp.NewServer(&mcp.Implementation{Name: "notes", Version: "1"}, nil)
	mcp.AddTool(up, &mcp.Tool{Name: "read_notes"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "the notes"}}}, nil, nil
	})
	upL := listen(t)
	upSrv := &http.Server{Handler: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil)}
	go func() { _ = upSrv.Serve(upL) }()
	t.Cleanup(func() { upSrv.Close() })

	startGatewayOn(t, gwL, "http", func(base string) *config.Config {
		return &config.Config{
			Server:               config.Server{PublicBaseURL: base},
			AuthorizationServers: []config.AuthorizationServer{{Issuer: idp.Issuer(), Algorithms: []string{"ES256"}}},
			Routes: []config.Route{{
				Name: "notes", Path: "/servers/notes/mcp",
				Upstream:       config.Upstream{URL: "http://" + upL.Addr().String() + "/mcp"},
				RequiredScopes: []string{"notes:read"},
				Tools:          map[string]config.ItemRule{"read_notes": {}},
			}},
			Limits:      config.Limits{RatePerIP: config.Rate{RequestsPerSecond: -1}},
			Development: config.Development{InsecureAllowHTTPLoopback: true},
		}
	})
	return &devAuthEnv{idp: idp, endpoint: endpoint}
}

// TestAuthorizationCodeFlowThroughGateway: go-sdk's client, knowing only
// the MCP endpoint, gets a 401 from mcpgate, discovers the protected
// resource metadata and the authorization server's metadata, registers
// dynamically, runs authorization code + PKCE with the resource parameter
// (logging in through the development server's login form), and calls a
// tool through mcpgate.
func TestAuthorizationCodeFlowThroughGateway(t *testing.T) {
	env := newDevAuthEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var authURL *url.URL
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "e2e agent", RedirectURIs: []string{"http://127.0.0.1/callback"}, TokenEndpointAuthMethod: "none",
		}},
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			authURL, _ = url.Parse(args.URL)
			redirect, err := env.idp.Login(ctx, args.URL, "alice", "pw-alice")
			if err != nil {
				return nil, err
			}
			q := redirect.Query()
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "e2e-agent", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: env.endpoint, OAuthHandler: h, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_notes", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("call: %v %+v", err, res)
	}
	q := authURL.Query()
	if q.Get("resource") != env.endpoint || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("scope") != "notes:read" {
		t.Errorf("authorization request %v: want resource=%s, S256 PKCE and the challenged scope", q, env.endpoint)
	}
	ts, _ := h.TokenSource(ctx)
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if aud := claim(t, tok.AccessToken, "aud"); !strings.Contains(string(aud), env.endpoint) {
		t.Errorf("token aud = %s, want %s", aud, env.endpoint)
	}
}

// TestClientCredentialsThroughGateway: a service's client-credentials token
// with the route's resource works through mcpgate; one without the scope
// the route needs gets 403.
func TestClientCredentialsThroughGateway(t *testing.T) {
	env := newDevAuthEnv(t)
	token := func(scope string) string {
		form := url.Values{"grant_type": {"client_credentials"}, "resource": {env.endpoint}}
		if scope != "" {
			form.Set("scope", scope)
		}
		req, _ := http.NewRequest("POST", env.idp.Issuer()+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("svc", "svc-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("token request: %d %v", resp.StatusCode, err)
		}
		return out.AccessToken
	}
	for _, tc := range []struct {
		scope string
		want  int
	}{{"notes:read", http.StatusOK}, {"openid", http.StatusForbidden}} {
		req, _ := http.NewRequest("POST", env.endpoint, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"svc","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+token(tc.scope))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("scope %q: status %d, want %d", tc.scope, resp.StatusCode, tc.want)
		}
	}
}

// claim returns one claim of a JWT, raw, without verifying it (display and
// assertions only).
func claim(t *testing.T, tok, name string) json.RawMessage {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m[name]
}
