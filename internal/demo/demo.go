// Package demo runs mcpgate's whole story on one machine with nothing
// installed: the embedded development authorization server, two sample MCP
// servers ("docs", holding private documents, and "mail", which sends
// messages out) and mcpgate in front of both, in one process. A scripted
// agent (a go-sdk MCP client) then plays the story step by step, printing
// each request's outcome and the audit records it produced, and checking
// every outcome: Run fails when a step does not behave as it must, so the
// demo doubles as a smoke test.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/devauth"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Options configures a demo run.
type Options struct {
	// Out receives the story. Required.
	Out io.Writer
	// Serve keeps everything running after the story (until ctx is done)
	// and prints how to connect an MCP client and get a token with curl.
	Serve bool
	// GatewayAddr and IdPAddr are the listen addresses. "" → 127.0.0.1 on
	// a free port.
	GatewayAddr, IdPAddr string
	// Logger receives the components' operational logs. nil → discard.
	Logger *slog.Logger
	// InsecureSkipAudienceCheck turns off mcpgate's audience check. Tests
	// only: it proves that the story checks outcomes (the audience step
	// must then fail).
	InsecureSkipAudienceCheck bool
}

// Development credentials, printed by the demo. They protect nothing.
const (
	demoUser      = "alice"
	demoPassword  = "alice-dev-password"
	agentClientID = "demo-agent"
	agentRedirect = "http://127.0.0.1/callback"
	cliClientID   = "demo-cli"
	cliSecret     = "demo-cli-secret"
)

// env is the running demo.
type env struct {
	out      io.Writer
	idp      *devauth.Server
	gateway  string // base URL
	docsURL  string // the docs route (its resource URI)
	mailURL  string
	records  *recorder
	docs     *docsGuard // the docs server's view of the tokens it receives
	auditDir string     // the audit trail and its keys
	auditPub string     // the public key that verifies the trail's checkpoints
	planted  string     // the secret planted in a docs document
	shutdown []func()
}

// Run starts the demo, plays the story and, with Options.Serve, keeps
// running until ctx is done. It returns an error if any step failed.
func Run(ctx context.Context, opts Options) error {
	if opts.Out == nil {
		return errors.New("demo: Options.Out is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e, err := start(ctx, opts, log)
	defer e.stop()
	if err != nil {
		return err
	}
	fmt.Fprint(opts.Out, e.idp.Banner())
	storyErr := e.story(ctx)
	if storyErr != nil {
		fmt.Fprintf(opts.Out, "\nThe demo FAILED: %v\n", storyErr)
	} else {
		fmt.Fprintln(opts.Out, "\nEvery step behaved as it must.")
	}
	if opts.Serve {
		e.printServeHelp()
		<-ctx.Done()
	}
	return storyErr
}

// start brings up the authorization server, the two MCP servers and the
// gateway.
func start(ctx context.Context, opts Options, log *slog.Logger) (*env, error) {
	e := &env{out: opts.Out, records: &recorder{}}
	gwL, err := listen(opts.GatewayAddr)
	if err != nil {
		return e, err
	}
	idpL, err := listen(opts.IdPAddr)
	if err != nil {
		gwL.Close()
		return e, err
	}
	e.gateway = "http://" + gwL.Addr().String()
	e.docsURL = e.gateway + "/servers/docs/mcp"
	e.mailURL = e.gateway + "/servers/mail/mcp"

	if err := e.openAudit(log); err != nil {
		gwL.Close()
		idpL.Close()
		return e, err
	}

	e.idp, err = devauth.New(devauth.Config{
		Issuer: "http://" + idpL.Addr().String(),
		Users: []devauth.User{{Username: demoUser, Password: demoPassword, Subject: "alice",
			Name: "Alice Example", Email: "alice@example.com"}},
		Clients: []devauth.Client{
			{ID: agentClientID, Name: "Demo agent", RedirectURIs: []string{agentRedirect},
				GrantTypes: []string{devauth.GrantAuthorizationCode, devauth.GrantRefreshToken}},
			{ID: cliClientID, Secret: cliSecret, Name: "Demo command line",
				GrantTypes: []string{devauth.GrantClientCredentials}},
		},
		Resources: []string{e.docsURL, e.mailURL},
		Scopes:    []string{"docs:read", "docs:write", "mail:send"},
		Logger:    log,
	})
	if err != nil {
		gwL.Close()
		idpL.Close()
		return e, fmt.Errorf("demo: authorization server: %w", err)
	}
	e.serve(idpL, e.idp.Handler())

	e.planted = plantedKey()
	docsL, err := listen("")
	if err != nil {
		return e, err
	}
	docsUp := "http://" + docsL.Addr().String() + "/mcp"
	e.docs = &docsGuard{gateway: e.gateway, audience: docsUp}
	docsSrv := newDocsServer(e.planted)
	e.serve(docsL, e.docs.wrap(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return docsSrv }, nil)))
	mailUp, err := e.serveMCP(newMailServer())
	if err != nil {
		return e, err
	}

	cfg := gatewayConfig(e.gateway, e.idp.Issuer(), docsUp, mailUp)
	cfg.Server.ShutdownTimeout = config.Duration(2 * time.Second)
	if err := gateway.Check(cfg); err != nil {
		return e, fmt.Errorf("demo: gateway configuration: %w", err)
	}
	g, err := gateway.New(cfg, gateway.Deps{Logger: log, Audit: e.records,
		InsecureSkipAudienceCheck: opts.InsecureSkipAudienceCheck})
	if err != nil {
		return e, fmt.Errorf("demo: gateway: %w", err)
	}
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Run(gctx, gwL) }()
	e.shutdown = append(e.shutdown, func() { cancel(); <-done; g.Close() })
	return e, nil
}

// gatewayConfig is the configuration mcpgate runs with in the demo; `demo
// --serve` prints it too.
func gatewayConfig(base, issuer, docsUpstream, mailUpstream string) *config.Config {
	cfg := &config.Config{
		// The MCP Inspector's web UI, for `demo --serve`.
		Server: config.Server{PublicBaseURL: base, AllowedOrigins: []string{"http://localhost:6274", "http://127.0.0.1:6274"}},
		AuthorizationServers: []config.AuthorizationServer{{
			Issuer: issuer, Algorithms: []string{"ES256"},
		}},
		Scopes: config.Scopes{Implies: map[string][]string{"docs:write": {"docs:read"}}},
		Routes: []config.Route{
			{
				Name: "docs", Path: "/servers/docs/mcp", ResourceName: "Private documents",
				Upstream:       config.Upstream{URL: docsUpstream},
				RequiredScopes: []string{"docs:read"},
				// The docs server gets a short-lived token minted by
				// mcpgate for it, never the agent's.
				Credentials: config.RouteCredentials{Mode: "mint", Scopes: []string{"docs:read", "docs:write"}},
				Tools: map[string]config.ItemRule{
					"list_documents":  {},
					"read_document":   {Labels: []string{"private_data"}},
					"update_document": {Scopes: []string{"docs:write"}},
				},
			},
			{
				Name: "mail", Path: "/servers/mail/mcp", ResourceName: "Outbound mail",
				Upstream:       config.Upstream{URL: mailUpstream},
				RequiredScopes: []string{"mail:send"},
				Tools: map[string]config.ItemRule{
					"send_message": {Labels: []string{"egress"}},
					"list_outbox":  {},
				},
			},
		},
		// The agent's run spans both routes: reading private documents
		// on docs, then mailing them out of the company on mail, is a
		// chain no single call shows.
		Sequence: config.Sequence{Rules: []config.SequenceRule{{
			ID:          "no-external-mail-after-private-read",
			Description: "Private data must not leave the company by mail.",
			When: `call.tool == "send_message" && "private_data" in session.taint && ` +
				`(!string(call.args.to).matches('^[A-Za-z0-9._%+-]+@example\\.com$') || has(call.args.cc) || has(call.args.bcc))`,
			Message: "this run has read private documents, so mail may only go to @example.com addresses; " +
				"send it internally instead",
		}}},
		// The development authorization server speaks plain http on
		// loopback; production issuers must use https.
		Development: config.Development{InsecureAllowHTTPLoopback: true},
	}
	cfg.ApplyDefaults()
	return cfg
}

func listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo: listen on %s: %w", addr, err)
	}
	return l, nil
}

// serve runs h on l until the demo stops.
func (e *env) serve(l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	e.shutdown = append(e.shutdown, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	})
}

// serveMCP serves an MCP server over Streamable HTTP on loopback and
// returns its endpoint URL.
func (e *env) serveMCP(s *mcp.Server) (string, error) {
	l, err := listen("")
	if err != nil {
		return "", err
	}
	e.serve(l, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	return "http://" + l.Addr().String() + "/mcp", nil
}

func (e *env) stop() {
	for i := len(e.shutdown) - 1; i >= 0; i-- {
		e.shutdown[i]()
	}
}

// recorder is the demo's audit sink: it keeps every record so the story can
// show what each step produced.
type recorder struct {
	file *audit.FileSink // the durable, chained trail the demo verifies at the end

	mu   sync.Mutex // guards the fields below
	evs  []audit.Event
	seen int       // records already shown
	tail io.Writer // after the story, records are also written here
}

func (r *recorder) Write(ctx context.Context, e *audit.Event) error {
	if r.file != nil {
		if err := r.file.Write(ctx, e); err != nil {
			return err // not recorded: the gateway does not carry the decision out
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tail != nil {
		return audit.NewWriter(r.tail).Write(ctx, e)
	}
	r.evs = append(r.evs, *e)
	return nil
}

// follow writes every later record to w as a JSON line, instead of keeping
// it.
func (r *recorder) follow(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tail = w
}

func (r *recorder) Close() error {
	if r.file != nil {
		return r.file.Close()
	}
	return nil
}

// drain returns the records written since the last call.
func (r *recorder) drain() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]audit.Event(nil), r.evs[r.seen:]...)
	r.seen = len(r.evs)
	return out
}

// all returns every record so far.
func (r *recorder) all() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Event(nil), r.evs...)
}
