// Command mcpgate is the OAuth 2.1 authorization gateway for MCP servers.
//
//	mcpgate serve --config mcpgate.yaml
//	mcpgate check-config --config mcpgate.yaml
//	mcpgate demo [--serve]
//	mcpgate dev-idp --resource URL
//	mcpgate version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/gateway"
)

const usage = `mcpgate — OAuth 2.1 authorization gateway for MCP servers

Usage:
  mcpgate serve --config FILE          run the gateway
  mcpgate check-config --config FILE   report every configuration problem; exit 1 if any
  mcpgate demo [--serve]               the whole story on one machine: a development
                                       authorization server, two MCP servers, mcpgate
  mcpgate dev-idp --resource URL ...   the development authorization server alone
                                       (DEVELOPMENT ONLY)
  mcpgate policy test FILE...          run policy scenario files (no network)
  mcpgate pins list|approve ...        review and approve changed tool definitions
  mcpgate revoke jti|subject|client VALUE --issuer ISS --token-file F
                                       revoke tokens through the admin API
  mcpgate audit verify FILE... --key PUBKEY
                                       prove audit files whole (hash chain, signed
                                       checkpoints); exit 1 if tampered
  mcpgate version                      print the version

Documentation: docs/config.md, docs/security.md, docs/credentials.md, docs/audit.md
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "check-config":
		return checkConfig(args[1:], stdout, stderr)
	case "demo":
		return demoCmd(args[1:], stdout, stderr)
	case "dev-idp":
		return devIdPCmd(args[1:], stdout, stderr)
	case "policy":
		return policyCmd(args[1:], stdout, stderr)
	case "pins":
		return pinsCmd(args[1:], stdout, stderr)
	case "audit":
		return auditCmd(args[1:], stdout, stderr)
	case "revoke":
		return revokeCmd(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "mcpgate", version())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "mcpgate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func configFlag(name string, args []string, stderr io.Writer) (string, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "mcpgate.yaml", "configuration `file`")
	if err := fs.Parse(args); err != nil {
		return "", false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mcpgate %s: unexpected argument %q\n", name, fs.Arg(0))
		return "", false
	}
	return *path, true
}

// load decodes the file and reports every problem found by the config and
// by the stages (policy rules) at once.
func load(path string) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Decode(data)
	if err != nil {
		return nil, err
	}
	cfg.ApplyDefaults()
	if err := gateway.Check(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

func checkConfig(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("check-config", args, stderr)
	if !ok {
		return 2
	}
	if _, err := load(path); err != nil {
		fmt.Fprintf(stderr, "%s: configuration is invalid:\n", path)
		for _, line := range splitErrors(err) {
			fmt.Fprintf(stderr, "  - %s\n", line)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: configuration is valid\n", path)
	return 0
}

// splitErrors flattens joined errors into one message each.
func splitErrors(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		if e != nil {
			out = append(out, e.Error())
		}
	}
	walk(err)
	return out
}

func serve(args []string, stderr io.Writer) int {
	path, ok := configFlag("serve", args, stderr)
	if !ok {
		return 2
	}
	cfg, err := load(path)
	if err != nil {
		fmt.Fprintf(stderr, "mcpgate: %s: %v\n", path, err)
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	g, err := gateway.New(cfg, gateway.Deps{Logger: log})
	if err != nil {
		log.Error("cannot start", slog.String("error", err.Error()))
		return 1
	}
	defer func() {
		// Closing the audit sink writes the shutdown checkpoint.
		if err := g.Close(); err != nil {
			log.Error("audit trail not closed cleanly (no shutdown checkpoint)", slog.String("error", err.Error()))
		}
	}()
	l, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		log.Error("cannot listen", slog.String("error", err.Error()))
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	adminDone := make(chan error, 1)
	if cfg.Admin.Listen != "off" {
		al, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			l.Close()
			log.Error("cannot listen on the admin address", slog.String("error", err.Error()))
			return 1
		}
		go func() { adminDone <- g.ServeAdmin(ctx, al) }()
	}
	go watchConfig(ctx, path, g, log)
	runDone := make(chan error, 1)
	go func() { runDone <- g.Run(ctx, l) }()
	code := 0
	select {
	case err := <-adminDone:
		// The admin listener stopped first: without probes and metrics
		// the process is not fit to run; stop it and say why.
		if err != nil {
			log.Error("admin listener stopped with an error; stopping", slog.String("error", err.Error()))
			code = 1
		}
		stop()
		if err := <-runDone; err != nil && !errors.Is(err, context.Canceled) {
			log.Error("stopped with an error", slog.String("error", err.Error()))
			code = 1
		}
	case err := <-runDone:
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Error("stopped with an error", slog.String("error", err.Error()))
			code = 1
		}
		stop()
		if cfg.Admin.Listen != "off" {
			if err := <-adminDone; err != nil {
				log.Error("admin listener stopped with an error", slog.String("error", err.Error()))
				code = 1
			}
		}
	}
	return code
}

// watchConfig reloads the configuration on SIGHUP and when the file
// changes (checked every two seconds). A configuration that does not load
// or validate keeps the current one; the gateway logs why.
func watchConfig(ctx context.Context, path string, g *gateway.Gateway, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	modTime := func() time.Time {
		fi, err := os.Stat(path)
		if err != nil {
			return time.Time{}
		}
		return fi.ModTime()
	}
	last := modTime()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: reloading the configuration", slog.String("file", path))
		case <-t.C:
			m := modTime()
			if m.IsZero() || m.Equal(last) {
				continue
			}
			log.Info("the configuration file changed: reloading", slog.String("file", path))
		}
		last = modTime()
		_ = g.ReloadFrom(func() (*config.Config, error) { return load(path) })
	}
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		return v
	}
	return "(unknown)"
}
