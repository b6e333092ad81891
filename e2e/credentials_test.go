package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/devauth"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// credEnv is the development authorization server, one echoing go-sdk MCP
// upstream per credential mode, and mcpgate in front of them with its logs
// and audit records captured.
type credEnv struct {
	idp       *devauth.Server
	gwBase    string
	ups       map[string]*echoUpstream // by route (= mode)
	logs      *lockedBuffer
	audit     *auditRecorder
	staticVal string
}

// echoUpstream records every request and answers tools/call "echo" with
// the headers and arguments it received.
type echoUpstream struct {
	url  string
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func (u *echoUpstream) seen() ([]*http.Request, [][]byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.reqs), slices.Clone(u.body)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var credModes = []string{"none", "mint", "exchange", "client_credentials", "static"}

func newCredEnv(t *testing.T) *credEnv {
	t.Helper()
	idpL, gwL := listen(t), listen(t)
	gwBase := "http://" + gwL.Addr().String()
	env := &credEnv{gwBase: gwBase, ups: map[string]*echoUpstream{}, logs: &lockedBuffer{}, audit: newAuditRecorder()}

	// The upstreams' listeners first: their URLs are resources at the
	// authorization server (exchange, client_credentials).
	upLs := map[string]net.Listener{}
	resources := []string{}
	for _, m := range credModes {
		l := listen(t)
		upLs[m] = l
		env.ups[m] = &echoUpstream{url: "http://" + l.Addr().String() + "/mcp"}
		resources = append(resources, env.ups[m].url, gwBase+"/servers/"+m+"/mcp")
	}
	gwSecret := "gw-" + randomHex(t, 16)
	idp, err := devauth.New(devauth.Config{
		Issuer: "http://" + idpL.Addr().String(),
		Users:  []devauth.User{{Username: "alice", Password: "pw-alice", Subject: "alice"}},
		Clients: []devauth.Client{
			{ID: "agent", Name: "agent", RedirectURIs: []string{"http://127.0.0.1/callback"}},
			{ID: "mcpgate", Secret: gwSecret, GrantTypes: []string{devauth.GrantClientCredentials, devauth.GrantTokenExchange}},
		},
		Resources: resources,
		Scopes:    []string{"echo:read", "echo:write", "backend:read"},
	})
	if err != nil {
		t.Fatal(err)
	}
	env.idp = idp
	idpSrv := &http.Server{Handler: idp.Handler()}
	go func() { _ = idpSrv.Serve(idpL) }()
	t.Cleanup(func() { idpSrv.Close() })

	dir := t.TempDir()
	secretFile := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env.staticVal = "static-" + randomHex(t, 20)

	for _, m := range credModes {
		u := env.ups[m]
		srv := mcp.NewServer(&mcp.Implementation{Name: m, Version: "1"}, nil)
		mcp.AddTool(srv, &mcp.Tool{Name: "echo", Description: "echoes what it received"},
			func(ctx context.Context, req *mcp.CallToolRequest, args map[string]any) (*mcp.CallToolResult, any, error) {
				a, _ := json.Marshal(args)
				text := fmt.Sprintf("authorization=%s\nx-api-key=%s\narguments=%s",
					req.Extra.Header.Get("Authorization"), req.Extra.Header.Get("X-Api-Key"), a)
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
			})
		var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
		if m == "mint" {
			// A real resource server: it verifies the minted token against
			// mcpgate's published JWKS, its issuer and its own audience.
			h = auth.RequireBearerToken(jwksVerifier(gwBase, u.url), &auth.RequireBearerTokenOptions{})(h)
		}
		rec := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			u.mu.Lock()
			u.reqs, u.body = append(u.reqs, r.Clone(context.Background())), append(u.body, b)
			u.mu.Unlock()
			// An upstream that echoes its Authorization header back.
			w.Header().Set("X-Echo-Authorization", r.Header.Get("Authorization"))
			h.ServeHTTP(w, r)
		})
		s := &http.Server{Handler: rec}
		l := upLs[m]
		go func() { _ = s.Serve(l) }()
		t.Cleanup(func() { s.Close() })
	}

	logger := slog.New(slog.NewJSONHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := &config.Config{
		Server:               config.Server{PublicBaseURL: gwBase, Listen: gwL.Addr().String()},
		AuthorizationServers: []config.AuthorizationServer{{Issuer: idp.Issuer(), Algorithms: []string{"ES256"}}},
		Limits:               config.Limits{RatePerIP: config.Rate{RequestsPerSecond: -1}},
		Development:          config.Development{InsecureAllowHTTPLoopback: true},
	}
	for _, m := range credModes {
		rc := config.RouteCredentials{Mode: m}
		switch m {
		case "mint":
			rc.Scopes = []string{"echo:read", "backend:read"}
			rc.Lifetime = config.Duration(2 * time.Minute)
		case "exchange":
			rc.ClientID, rc.ClientSecretFile, rc.Scopes = "mcpgate", secretFile("gw-secret", gwSecret), []string{"echo:read"}
		case "client_credentials":
			rc.ClientID, rc.ClientSecretFile, rc.Scopes = "mcpgate", secretFile("gw-secret-cc", gwSecret), []string{"backend:read"}
		case "static":
			rc.Header, rc.ValueFile = "X-Api-Key", secretFile("static", env.staticVal)
		}
		cfg.Routes = append(cfg.Routes, config.Route{
			Name: strings.ReplaceAll(m, "_", "-"), Path: "/servers/" + m + "/mcp",
			Upstream:       config.Upstream{URL: env.ups[m].url},
			RequiredScopes: []string{"echo:read"},
			Tools:          map[string]config.ItemRule{"echo": {}},
			Credentials:    rc,
		})
	}
	cfg.ApplyDefaults()
	g, err := gateway.New(cfg, gateway.Deps{Logger: logger, Audit: env.audit})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, gwL) }()
	t.Cleanup(func() {
		cancel()
		<-done
		g.Close()
	})
	waitListening(t, gwL.Addr().String())
	return env
}

// jwksVerifier verifies mcpgate-minted tokens the way an upstream would:
// signature against the JWKS at the gateway, iss, aud, exp, typ.
func jwksVerifier(gwBase, audience string) auth.TokenVerifier {
	return func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		resp, err := http.Get(gwBase + gateway.JWKSPath)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var set jose.JSONWebKeySet
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			return nil, err
		}
		claims := jwt.MapClaims{}
		_, err = jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
			if t.Header["typ"] != "at+jwt" {
				return nil, errors.New("typ is not at+jwt")
			}
			kid, _ := t.Header["kid"].(string)
			keys := set.Key(kid)
			if len(keys) != 1 {
				return nil, fmt.Errorf("unknown kid %q", kid)
			}
			return keys[0].Key, nil
		}, jwt.WithValidMethods([]string{"ES256", "EdDSA"}), jwt.WithIssuer(gwBase), jwt.WithAudience(audience), jwt.WithExpirationRequired())
		if err != nil {
			return nil, fmt.Errorf("%w: %v", auth.ErrInvalidToken, err)
		}
		exp, _ := claims.GetExpirationTime()
		return &auth.TokenInfo{Expiration: exp.Time}, nil
	}
}

// userToken runs authorization code + PKCE at the development server for
// alice and returns her access token for resource.
func (env *credEnv) userToken(t *testing.T, resource, scope string) string {
	t.Helper()
	ctx := context.Background()
	verifier := randomHex(t, 32)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {"agent"}, "redirect_uri": {"http://127.0.0.1/callback"},
		"scope": {scope}, "state": {"s"}, "resource": {resource}, "code_challenge_method": {"S256"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}}
	var md struct {
		Authorization string `json:"authorization_endpoint"`
		Token         string `json:"token_endpoint"`
	}
	resp, err := http.Get(env.idp.Issuer() + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	redirect, err := env.idp.Login(ctx, md.Authorization+"?"+q.Encode(), "alice", "pw-alice")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {redirect.Query().Get("code")}, "client_id": {"agent"},
		"redirect_uri": {"http://127.0.0.1/callback"}, "code_verifier": {verifier}, "resource": {resource}}
	resp, err = http.PostForm(md.Token, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

// jwtClaims decodes a JWT's payload without verifying it.
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestUpstreamCredentials calls an echoing upstream through mcpgate in
// every credential mode and checks the exact credential the upstream
// received, that the client's token reached nothing upstream and appears in
// no log or audit record, and that the upstream's echo of its credential
// never reaches the client.
func TestUpstreamCredentials(t *testing.T) {
	env := newCredEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, mode := range credModes {
		t.Run(mode, func(t *testing.T) {
			endpoint := env.gwBase + "/servers/" + mode + "/mcp"
			token := env.userToken(t, endpoint, "echo:read echo:write")
			inboundExp := int64(jwtClaims(t, token)["exp"].(float64))
			c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
			tap := headerTap{token: token, mu: &sync.Mutex{}, got: http.Header{}}
			cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, MaxRetries: -1, DisableStandaloneSSE: true,
				HTTPClient: &http.Client{Transport: tap}}, nil)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer cs.Close()
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"q": "hello"}})
			if err != nil || res.IsError {
				t.Fatalf("call: %v %+v", err, res)
			}
			out := res.Content[0].(*mcp.TextContent).Text

			reqs, bodies := env.ups[mode].seen()
			if len(reqs) == 0 {
				t.Fatal("the upstream received nothing")
			}
			last := reqs[len(reqs)-1]
			authz := last.Header.Get("Authorization")
			var credential string
			switch mode {
			case "none":
				if authz != "" || last.Header.Get("X-Api-Key") != "" {
					t.Errorf("mode none: the upstream received a credential")
				}
			case "mint", "exchange", "client_credentials":
				credential = strings.TrimPrefix(authz, "Bearer ")
				if credential == authz || credential == "" {
					t.Fatalf("Authorization = %q, want a bearer token", authz)
				}
				checkUpstreamToken(t, mode, jwtClaims(t, credential), env, inboundExp)
			case "static":
				if got := last.Header.Get("X-Api-Key"); got != env.staticVal {
					t.Errorf("X-Api-Key = %q, want the secret file's value", got)
				}
				if authz != "" {
					t.Errorf("static: Authorization = %q, want none", authz)
				}
				credential = env.staticVal
			}
			// The client's token reached nothing upstream.
			for i, r := range reqs {
				for k, vs := range r.Header {
					if slices.ContainsFunc(vs, func(v string) bool { return strings.Contains(v, token) }) {
						t.Errorf("upstream request %d carried the client's token in %s", i, k)
					}
				}
				if bytes.Contains(bodies[i], []byte(token)) {
					t.Errorf("upstream request %d carried the client's token in its body", i)
				}
			}
			// The upstream's echo of its credential reached the client only redacted.
			if credential != "" {
				if strings.Contains(out, credential) {
					t.Errorf("the tool result handed the upstream's credential to the client: %q", out)
				}
				if !strings.Contains(out, "[REDACTED:live_credential]") {
					t.Errorf("the echoed credential was not replaced by the redaction marker: %q", out)
				}
				tap.mu.Lock()
				echoed := tap.got.Clone()
				tap.mu.Unlock()
				for k, vs := range echoed {
					if slices.ContainsFunc(vs, func(v string) bool { return strings.Contains(v, credential) }) {
						t.Errorf("response header %s handed the upstream's credential to the client", k)
					}
				}
			}
			// Nothing in logs or audit.
			for what, s := range map[string]string{"logs": env.logs.String(), "audit": env.audit.String()} {
				if strings.Contains(s, token) {
					t.Errorf("the client's token appears in the %s", what)
				}
				if credential != "" && strings.Contains(s, credential) {
					t.Errorf("the upstream credential appears in the %s", what)
				}
			}
			ev := env.audit.wait(t, "the echo call", func(e *audit.Event) bool {
				return e.Decision == audit.Allow && e.Tool == "echo" && e.Route == strings.ReplaceAll(mode, "_", "-")
			})
			if ev.CredentialMode != mode || (mode != "none" && ev.CredentialID == "") {
				t.Errorf("audit credential = %q/%q, want mode %s with an id", ev.CredentialMode, ev.CredentialID, mode)
			}
			if mode == "mint" && ev.CredentialID != jwtClaims(t, credential)["jti"] {
				t.Errorf("audit credential id %q is not the minted jti", ev.CredentialID)
			}
		})
	}
}

// checkUpstreamToken asserts the claims of the token an upstream received.
func checkUpstreamToken(t *testing.T, mode string, c map[string]any, env *credEnv, inboundExp int64) {
	t.Helper()
	up := env.ups[mode].url
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	switch mode {
	case "mint":
		want := map[string]any{"iss": env.gwBase, "aud": up, "sub": "alice", "client_id": "agent", "scope": "echo:read",
			"act": map[string]any{"sub": env.gwBase}}
		for k, v := range want {
			if fmt.Sprint(c[k]) != fmt.Sprint(v) {
				t.Errorf("minted %s = %v, want %v", k, c[k], v)
			}
		}
		if exp-iat > 120 || int64(exp) > inboundExp {
			t.Errorf("minted lifetime %vs (exp %v, client token exp %d): want ≤ 2m and never beyond the client token", exp-iat, exp, inboundExp)
		}
		if c["jti"] == "" || c["jti"] == nil {
			t.Error("minted token has no jti")
		}
	case "exchange":
		if c["iss"] != env.idp.Issuer() || fmt.Sprint(c["aud"]) != fmt.Sprint([]any{up}) && c["aud"] != up || c["sub"] != "alice" || c["scope"] != "echo:read" {
			t.Errorf("exchanged token claims %v: want iss %s, aud %s, sub alice, scope echo:read", c, env.idp.Issuer(), up)
		}
		if act, _ := c["act"].(map[string]any); act["sub"] != "mcpgate" {
			t.Errorf("exchanged token act = %v, want mcpgate as actor", c["act"])
		}
	case "client_credentials":
		if c["iss"] != env.idp.Issuer() || fmt.Sprint(c["aud"]) != fmt.Sprint([]any{up}) && c["aud"] != up || c["sub"] != "mcpgate" || c["scope"] != "backend:read" {
			t.Errorf("service token claims %v: want aud %s, sub mcpgate, scope backend:read", c, up)
		}
	}
}

// headerTap adds the bearer token and keeps every response header.
type headerTap struct {
	token string
	mu    *sync.Mutex
	got   http.Header
}

func (h headerTap) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		h.mu.Lock()
		for k, vs := range resp.Header {
			h.got[k] = append(h.got[k], vs...)
		}
		h.mu.Unlock()
	}
	return resp, err
}

// String returns every record as JSON lines, for leak checks.
func (a *auditRecorder) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var b strings.Builder
	for _, e := range a.events {
		j, _ := json.Marshal(e)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}
