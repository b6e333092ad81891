package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/internal/demo"
	"github.com/mcpgate/mcpgate/internal/devauth"
)

// demoCmd runs `mcpgate demo [--serve]`.
func demoCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serve := fs.Bool("serve", false, "keep everything running after the story and print how to connect")
	gwAddr := fs.String("gateway-addr", "", "mcpgate's listen address (default: a free port on 127.0.0.1; with --serve 127.0.0.1:8080)")
	idpAddr := fs.String("idp-addr", "", "the authorization server's listen address (default: a free port on 127.0.0.1; with --serve 127.0.0.1:8081)")
	verbose := fs.Bool("v", false, "also print the components' logs")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *serve {
		if *gwAddr == "" {
			*gwAddr = "127.0.0.1:8080"
		}
		if *idpAddr == "" {
			*idpAddr = "127.0.0.1:8081"
		}
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := demo.Run(ctx, demo.Options{Out: stdout, Serve: *serve, GatewayAddr: *gwAddr, IdPAddr: *idpAddr, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "mcpgate demo: %v\n", err)
		return 1
	}
	return 0
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// devIdPCmd runs `mcpgate dev-idp`: the development authorization server on
// its own, for trying mcpgate with your own MCP servers.
func devIdPCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev-idp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("listen", "127.0.0.1:8081", "listen address (loopback only unless you know why)")
	issuer := fs.String("issuer", "", "issuer URL (default http://LISTEN)")
	var resources, scopes, users, clients listFlag
	fs.Var(&resources, "resource", "resource URI tokens may be issued for, i.e. an mcpgate route URL (repeatable, required)")
	fs.Var(&scopes, "scope", "scope the server knows (repeatable)")
	fs.Var(&users, "user", "development user as name:password (repeatable; default alice with a random password)")
	fs.Var(&clients, "client", "pre-registered confidential client as id:secret, for client credentials (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if len(resources) == 0 {
		fmt.Fprintln(stderr, "mcpgate dev-idp: at least one --resource is required (the URL of an mcpgate route, e.g. http://127.0.0.1:8080/servers/docs/mcp)")
		return 2
	}
	if *issuer == "" {
		*issuer = "http://" + *addr
	}
	cfg := devauth.Config{Issuer: *issuer, Resources: resources, Scopes: scopes}
	if len(users) == 0 {
		users = append(users, "alice:"+randomPassword())
	}
	for _, u := range users {
		name, pw, ok := strings.Cut(u, ":")
		if !ok || name == "" || pw == "" {
			fmt.Fprintf(stderr, "mcpgate dev-idp: --user %q must be name:password\n", u)
			return 2
		}
		cfg.Users = append(cfg.Users, devauth.User{Username: name, Password: pw, Subject: name})
	}
	for _, c := range clients {
		id, secret, ok := strings.Cut(c, ":")
		if !ok || id == "" || secret == "" {
			fmt.Fprintf(stderr, "mcpgate dev-idp: --client %q must be id:secret\n", c)
			return 2
		}
		cfg.Clients = append(cfg.Clients, devauth.Client{ID: id, Secret: secret, Name: id,
			GrantTypes: []string{"client_credentials"}})
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := devauth.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "mcpgate dev-idp: %v\n", err)
		return 1
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "mcpgate dev-idp: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, srv.Banner())
	fmt.Fprintf(stdout, "issuer %s\n", srv.Issuer())
	for _, u := range users {
		name, pw, _ := strings.Cut(u, ":")
		fmt.Fprintf(stdout, "user   %s / %s\n", name, pw)
	}
	fmt.Fprintf(stdout, "\nIn mcpgate.yaml:\n  authorization_servers:\n    - issuer: %s\n      algorithms: [ES256]\n  development:\n    insecure_allow_http_loopback: true\n", srv.Issuer())

	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "mcpgate dev-idp: %v\n", err)
		return 1
	}
	return 0
}

// randomPassword returns a password for the default development user.
func randomPassword() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
