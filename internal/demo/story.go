package demo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// story plays the scripted agent. Each step prints what happened and checks
// it; the first step that does not behave as it must ends the story with an
// error.
func (e *env) story(ctx context.Context) error {
	fmt.Fprintf(e.out, "\nmcpgate protects two MCP servers:\n  docs  %s  (private documents)\n  mail  %s  (sends messages out)\n", e.docsURL, e.mailURL)
	fmt.Fprintf(e.out, "The development authorization server is %s; the agent logs in as %q.\n", e.idp.Issuer(), demoUser)

	tr := &tracer{out: e.out, base: http.DefaultTransport, names: map[string]string{
		hostOf(e.gateway): "mcpgate", hostOf(e.idp.Issuer()): "auth server",
	}}
	client := &http.Client{Transport: tr}
	defer client.CloseIdleConnections()

	var docs *agentConn
	steps := []struct {
		title string
		run   func() error
	}{
		{"No token: mcpgate answers 401 with a challenge that says where to authorize", func() error {
			return e.expectChallenge(ctx, client)
		}},
		{"The agent discovers the metadata and completes authorization code + PKCE, with the resource parameter", func() error {
			c, err := e.connect(ctx, client, e.docsURL)
			if err != nil {
				return err
			}
			docs = c
			claims, err := docs.tokenClaims(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.out, "    token: aud=%v scope=%q typ=%s\n", claims["aud"], claims["scope"], claims["__typ"])
			if !audContains(claims["aud"], e.docsURL) {
				return fmt.Errorf("the token's audience is %v, want %s", claims["aud"], e.docsURL)
			}
			return nil
		}},
		{"An allowed tool call succeeds", func() error {
			out, err := docs.call(ctx, "read_document", map[string]any{"name": "roadmap"})
			if err != nil {
				return fmt.Errorf("read_document: %w", err)
			}
			fmt.Fprintf(e.out, "    read_document(roadmap) → %q\n", out)
			return nil
		}},
		{"The docs server received a token mcpgate minted for it, never the agent's", func() error {
			return e.expectMintedToken(ctx, docs)
		}},
		{"A credential planted in a document reaches the agent redacted", func() error {
			out, err := docs.call(ctx, "read_document", map[string]any{"name": "deploy-notes"})
			if err != nil {
				return fmt.Errorf("read_document: %w", err)
			}
			fmt.Fprintf(e.out, "    read_document(deploy-notes) → %q\n", out)
			if strings.Contains(out, e.planted) {
				return errors.New("the planted AWS key reached the agent")
			}
			if !strings.Contains(out, "[REDACTED:aws_access_key]") {
				return errors.New("the planted AWS key was not replaced by the redaction marker")
			}
			return nil
		}},
		{"The docs token is useless at the mail server (audience binding)", func() error {
			return e.expectWrongAudience(ctx, client, docs)
		}},
		{"A call that needs more scope gets 403 insufficient_scope; the agent steps up and succeeds", func() error {
			out, err := docs.call(ctx, "update_document", map[string]any{"name": "handbook", "text": "Be kind."})
			if err != nil {
				return fmt.Errorf("update_document after step-up: %w", err)
			}
			fmt.Fprintf(e.out, "    update_document(handbook) → %q\n", out)
			if !slices.ContainsFunc(e.records.all(), func(ev audit.Event) bool { return ev.Decision == audit.StepUp && ev.Tool == "update_document" }) {
				return errors.New("no step-up was recorded: the call should first have been refused with 403 insufficient_scope")
			}
			claims, err := docs.tokenClaims(ctx)
			if err != nil {
				return err
			}
			if !strings.Contains(fmt.Sprint(claims["scope"]), "docs:write") {
				return fmt.Errorf("the stepped-up token's scope is %q, want docs:write in it", claims["scope"])
			}
			fmt.Fprintf(e.out, "    new token: scope=%q\n", claims["scope"])
			return nil
		}},
		{"Sequence policy: after reading private documents, mailing them out of the company is denied; the agent sends internally", func() error {
			mail, err := e.connect(ctx, client, e.mailURL)
			if err != nil {
				return err
			}
			defer mail.session.Close()
			_, err = mail.call(ctx, "send_message", map[string]any{"to": "rival@competitor.example", "subject": "roadmap", "body": "Q4: acquire Initech"})
			if err == nil {
				return errors.New("mailing the private roadmap outside the company was allowed")
			}
			fmt.Fprintf(e.out, "    send_message(rival@competitor.example) → %v\n", err)
			if !strings.Contains(err.Error(), "@example.com") {
				return fmt.Errorf("the refusal does not tell the agent what it may do instead: %v", err)
			}
			out, err := mail.call(ctx, "send_message", map[string]any{"to": "ceo@example.com", "subject": "roadmap", "body": "Q4: acquire Initech"})
			if err != nil {
				return fmt.Errorf("the internal send was refused: %w", err)
			}
			fmt.Fprintf(e.out, "    send_message(ceo@example.com) → %q\n", out)
			return nil
		}},
		{"The audit trail proves itself whole, and an altered record is caught", func() error {
			return e.expectAuditIntact()
		}},
	}
	defer func() {
		if docs != nil {
			docs.session.Close()
		}
	}()
	for i, s := range steps {
		fmt.Fprintf(e.out, "\n[%d] %s\n", i+1, s.title)
		err := s.run()
		e.printAudit()
		if err != nil {
			fmt.Fprintf(e.out, "    ✗ %v\n", err)
			return fmt.Errorf("step %d (%s): %w", i+1, s.title, err)
		}
		fmt.Fprintln(e.out, "    ✓ as expected")
	}
	return nil
}

// expectMintedToken shows the token the docs server accepted: minted by
// mcpgate for the docs server, naming the user, the agent and mcpgate as
// actor, short-lived — and not the agent's token.
func (e *env) expectMintedToken(ctx context.Context, docs *agentConn) error {
	agentTok, err := docs.token(ctx)
	if err != nil {
		return err
	}
	tok, c, seen := e.docs.last()
	if tok == "" {
		return errors.New("the docs server accepted no token")
	}
	for _, h := range seen {
		if strings.Contains(h, agentTok) {
			return errors.New("the agent's token reached the docs server")
		}
	}
	act, _ := c["act"].(map[string]any)
	exp, _ := c.GetExpirationTime()
	iat, _ := c.GetIssuedAt()
	fmt.Fprintf(e.out, "    docs server received: iss=%v aud=%v sub=%v client_id=%v act.sub=%v scope=%q lifetime=%s\n",
		c["iss"], c["aud"], c["sub"], c["client_id"], act["sub"], c["scope"], exp.Sub(iat.Time))
	fmt.Fprintln(e.out, "    (verified by the docs server against "+e.gateway+"/.well-known/jwks.json; the agent's token is not among the", len(seen), "it received)")
	switch {
	case c["iss"] != e.gateway || act["sub"] != e.gateway:
		return fmt.Errorf("the docs server's token was not minted by mcpgate (iss %v)", c["iss"])
	case c["sub"] != "alice" || c["client_id"] != agentClientID:
		return fmt.Errorf("the minted token names %v/%v, want alice/%s", c["sub"], c["client_id"], agentClientID)
	case tok == agentTok:
		return errors.New("the docs server received the agent's own token")
	}
	return nil
}

// expectChallenge sends an initialize without a token and checks the RFC
// 9728 / RFC 6750 challenge.
func (e *env) expectChallenge(ctx context.Context, client *http.Client) error {
	resp, err := postJSON(ctx, client, e.docsURL, "", initializeBody)
	if err != nil {
		return err
	}
	ch := resp.Header.Get("WWW-Authenticate")
	fmt.Fprintf(e.out, "    WWW-Authenticate: %s\n", ch)
	md := e.gateway + "/.well-known/oauth-protected-resource/servers/docs/mcp"
	switch {
	case resp.StatusCode != http.StatusUnauthorized:
		return fmt.Errorf("status %d, want 401", resp.StatusCode)
	case !strings.Contains(ch, `resource_metadata="`+md+`"`):
		return fmt.Errorf("the challenge does not point at %s", md)
	case strings.Contains(ch, "error="):
		return errors.New("a request without a token must get a challenge without error= (RFC 6750 §3.1)")
	}
	return nil
}

// expectWrongAudience presents the docs token to the mail server.
func (e *env) expectWrongAudience(ctx context.Context, client *http.Client, docs *agentConn) error {
	tok, err := docs.token(ctx)
	if err != nil {
		return err
	}
	resp, err := postJSON(ctx, client, e.mailURL, tok, initializeBody)
	if err != nil {
		return err
	}
	ch := resp.Header.Get("WWW-Authenticate")
	fmt.Fprintf(e.out, "    WWW-Authenticate: %s\n", ch)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(ch, `error="invalid_token"`) {
		return fmt.Errorf("the mail server answered %d to a token minted for the docs server, want 401 invalid_token", resp.StatusCode)
	}
	return nil
}

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"demo-agent","version":"1.0.0"}}}`

func postJSON(ctx context.Context, client *http.Client, url, token, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// agentConn is the agent's MCP session with one server, authorized by the
// go-sdk's OAuth authorization-code handler.
type agentConn struct {
	session *mcp.ClientSession
	handler *auth.AuthorizationCodeHandler
}

// connect connects the agent to endpoint: the first request gets 401, and
// the go-sdk handler discovers the metadata, registers, and runs
// authorization code + PKCE with resource, logging in through the
// development server's login form as the demo user.
func (e *env) connect(ctx context.Context, client *http.Client, endpoint string) (*agentConn, error) {
	// The agent is pre-registered (a public client): the go-sdk handler
	// registers a new client on every authorization when it uses dynamic
	// registration, and a session belongs to (issuer, subject, client), so
	// a step-up under a new client id would lose the session.
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		PreregisteredClient: &oauthex.ClientCredentials{ClientID: agentClientID},
		RedirectURL:         agentRedirect,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			return e.login(ctx, args.URL)
		},
		Client: client,
	})
	if err != nil {
		return nil, err
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "demo-agent", Version: "1.0.0"}, nil)
	s, err := c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: endpoint, HTTPClient: client, OAuthHandler: h, DisableStandaloneSSE: true, MaxRetries: -1,
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	return &agentConn{session: s, handler: h}, nil
}

// login plays the user at the authorization server's login and consent
// page, as a browser would.
func (e *env) login(ctx context.Context, authURL string) (*auth.AuthorizationResult, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	fmt.Fprintf(e.out, "    authorize: client_id=%s scope=%q resource=%s code_challenge_method=%s\n",
		q.Get("client_id"), q.Get("scope"), q.Get("resource"), q.Get("code_challenge_method"))
	redirect, err := e.idp.Login(ctx, authURL, demoUser, demoPassword)
	if err != nil {
		return nil, fmt.Errorf("log in: %w", err)
	}
	rq := redirect.Query()
	if rq.Get("code") == "" {
		return nil, fmt.Errorf("the authorization server answered %s without a code", rq.Get("error"))
	}
	fmt.Fprintf(e.out, "    %s logged in and approved; the browser returns to the agent with a code\n", demoUser)
	return &auth.AuthorizationResult{Code: rq.Get("code"), State: rq.Get("state"), Iss: rq.Get("iss")}, nil
}

func (c *agentConn) call(ctx context.Context, tool string, args map[string]any) (string, error) {
	res, err := c.session.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, ct := range res.Content {
		if t, ok := ct.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	if res.IsError {
		return "", fmt.Errorf("tool error: %s", b.String())
	}
	return b.String(), nil
}

func (c *agentConn) token(ctx context.Context) (string, error) {
	ts, err := c.handler.TokenSource(ctx)
	if err != nil || ts == nil {
		return "", fmt.Errorf("no token: %v", err)
	}
	t, err := ts.Token()
	if err != nil {
		return "", err
	}
	return t.AccessToken, nil
}

// tokenClaims decodes the access token's payload for display. The agent
// does not rely on it: mcpgate verifies tokens, clients must not.
func (c *agentConn) tokenClaims(ctx context.Context) (map[string]any, error) {
	tok, err := c.token(ctx)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("the access token is not a JWT")
	}
	m := map[string]any{}
	for i, dst := range []string{"header", "payload"} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return nil, fmt.Errorf("decode token %s: %w", dst, err)
		}
		var part map[string]any
		if err := json.Unmarshal(b, &part); err != nil {
			return nil, fmt.Errorf("decode token %s: %w", dst, err)
		}
		if i == 0 {
			m["__typ"] = part["typ"]
			continue
		}
		for k, v := range part {
			m[k] = v
		}
	}
	return m, nil
}

func audContains(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, v := range a {
			if v == want {
				return true
			}
		}
	}
	return false
}

// printAudit shows the audit records the step produced.
func (e *env) printAudit() {
	for _, ev := range e.records.drain() {
		what := ev.Method
		if ev.Tool != "" {
			what += " " + ev.Tool
		}
		if what == "" {
			what = ev.HTTPMethod
		}
		line := fmt.Sprintf("    audit: %-8s %-8s %-9s %-26s", ev.Kind, ev.Route, ev.Decision, what)
		if ev.Reason != "" {
			line += " reason=" + ev.Reason
		}
		if ev.Decision == audit.Deny || ev.Decision == audit.StepUp {
			line += " rule=" + ev.Rule
		}
		if ev.Status != 0 {
			line += fmt.Sprintf(" status=%d", ev.Status)
		}
		if ev.Subject != "" {
			line += " sub=" + ev.Subject
		}
		if ev.CredentialMode != "" && ev.CredentialMode != "none" && ev.Kind == audit.KindDecision {
			line += " upstream_credential=" + ev.CredentialMode + ":" + ev.CredentialID
		}
		for _, f := range ev.Findings {
			line += fmt.Sprintf(" finding=%s:%s:%s", f.Where, f.Detector, f.Action)
		}
		fmt.Fprintln(e.out, strings.TrimRight(line, " "))
	}
}

// tracer prints every HTTP exchange the agent makes.
type tracer struct {
	out   io.Writer
	base  http.RoundTripper
	names map[string]string // host → label
}

func (t *tracer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	who := t.names[r.URL.Host]
	if who == "" {
		who = r.URL.Host
	}
	if err != nil {
		fmt.Fprintf(t.out, "    %-11s %-6s %s → %v\n", who, r.Method, r.URL.Path, err)
		return nil, err
	}
	fmt.Fprintf(t.out, "    %-11s %-6s %-52s → %d\n", who, r.Method, r.URL.Path, resp.StatusCode)
	return resp, nil
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}
