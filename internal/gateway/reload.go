package gateway

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"

	"github.com/mcpgate/mcpgate/internal/config"
)

// runState is what Run started, shared by the gateways a Reload builds.
type runState struct {
	mu         sync.Mutex
	ctx        context.Context // Run's background context; nil when not running
	stopAuthn  context.CancelFunc
	reloadLock sync.Mutex // one reload at a time
}

// Reload validates cfg in full and, if it is valid, swaps in a gateway
// built from it: requests already in flight finish on the configuration
// they started with, new ones get the new one. Sessions, histories and
// budgets, revocations, tool pins, the audit trail and metrics carry over;
// so do the authorization servers' keys, mcpgate's signing keys and the
// anomaly baselines when their settings did not change. An invalid
// configuration, or one that changes a setting only a restart can apply,
// keeps the current one and says why.
func (g *Gateway) Reload(cfg *config.Config) error {
	g.run.reloadLock.Lock()
	defer g.run.reloadLock.Unlock()
	cur := g.live.Load()
	next, err := New(cfg, Deps{prev: cur})
	if err != nil {
		g.metrics.ObserveReload(err, g.now())
		g.log.Error("configuration reload refused; the current configuration stays in force", slog.String("error", err.Error()))
		return err
	}
	// Swapped under run.mu, so that Run, starting, either sees the new
	// gateway or has already set the context this starts it with.
	g.run.mu.Lock()
	if next.authn != cur.authn && g.run.ctx != nil {
		if g.run.stopAuthn != nil {
			g.run.stopAuthn()
		}
		var actx context.Context
		actx, g.run.stopAuthn = context.WithCancel(g.run.ctx)
		go next.authn.Run(actx)
	}
	g.live.Store(next)
	g.run.mu.Unlock()
	for _, f := range cur.ungauge {
		f()
	}
	g.metrics.ObserveReload(nil, g.now())
	g.log.Info("configuration reloaded", slog.Int("routes", len(next.routes)))
	return nil
}

// restartNeeded refuses a reload that changes what a running process
// cannot change: its listeners, its audit trail and the stores that hold
// state across configurations.
func restartNeeded(old, cfg *config.Config) error {
	var changed []string
	for _, c := range []struct {
		name     string
		old, new any
	}{
		{"server.listen", old.Server.Listen, cfg.Server.Listen},
		{"server.tls", old.Server.TLS, cfg.Server.TLS},
		{"server timeouts and max_header_bytes", []any{old.Server.ReadHeaderTimeout, old.Server.IdleTimeout, old.Server.MaxHeaderBytes, old.Server.ShutdownTimeout},
			[]any{cfg.Server.ReadHeaderTimeout, cfg.Server.IdleTimeout, cfg.Server.MaxHeaderBytes, cfg.Server.ShutdownTimeout}},
		{"admin", old.Admin, cfg.Admin},
		{"audit", old.Audit, cfg.Audit},
		{"log", old.Log, cfg.Log},
		{"tool_pins_file", old.ToolPinsFile, cfg.ToolPinsFile},
		{"revocation", old.Revocation, cfg.Revocation},
		{"store", old.Store, cfg.Store},
		{"sequence.history", old.Sequence.History, cfg.Sequence.History},
		{"limits on sessions and streams", []any{old.Limits.MaxSessions, old.Limits.MaxSessionsPerPrincipal, old.Limits.SessionIdleTimeout, old.Limits.MaxStreamsPerPrincipal},
			[]any{cfg.Limits.MaxSessions, cfg.Limits.MaxSessionsPerPrincipal, cfg.Limits.SessionIdleTimeout, cfg.Limits.MaxStreamsPerPrincipal}},
	} {
		if !reflect.DeepEqual(c.old, c.new) {
			changed = append(changed, c.name)
		}
	}
	if len(changed) > 0 {
		return errors.New("these settings take effect only after a restart: " + strings.Join(changed, ", "))
	}
	return nil
}

// sameAuthn reports whether the authorization-server settings are
// unchanged, so the authenticator (its keys and caches) carries over.
func sameAuthn(old, cfg *config.Config) bool {
	return reflect.DeepEqual(old.AuthorizationServers, cfg.AuthorizationServers) &&
		old.Limits.MaxTokenBytes == cfg.Limits.MaxTokenBytes &&
		old.Development.InsecureAllowHTTPLoopback == cfg.Development.InsecureAllowHTTPLoopback
}

// ReloadFrom is Reload with a configuration still to be read: a file that
// cannot be read or parsed is a refused reload too, counted and logged.
func (g *Gateway) ReloadFrom(load func() (*config.Config, error)) error {
	cfg, err := load()
	if err != nil {
		g.metrics.ObserveReload(err, g.now())
		g.log.Error("configuration reload refused; the current configuration stays in force", slog.String("error", err.Error()))
		return err
	}
	return g.Reload(cfg)
}
