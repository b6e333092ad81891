package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/mcpgate/mcpgate/internal/tlsfiles"
)

// Server returns the client-facing HTTP server: bounded header reads and
// sizes, no whole-request read timeout (bodies have their own deadline, and
// an SSE stream must not be cut by one), and TLS from reloadable files when
// configured.
func (g *Gateway) Server() (*http.Server, error) {
	s := g.cfg.Server
	srv := &http.Server{
		Addr:              s.Listen,
		Handler:           g,
		ReadHeaderTimeout: s.ReadHeaderTimeout.D(),
		IdleTimeout:       s.IdleTimeout.D(),
		MaxHeaderBytes:    int(s.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	if t := s.TLS; t != nil {
		pair, err := tlsfiles.NewPair(tlsfiles.PairConfig{CertFile: t.CertFile, KeyFile: t.KeyFile, Logger: g.log})
		if err != nil {
			return nil, fmt.Errorf("listener tls: %w", err)
		}
		srv.TLSConfig = tlsfiles.ServerConfig(pair, tlsMinVersion(t.MinVersion))
	}
	return srv, nil
}

// Run serves on l until ctx is done, then shuts down gracefully: it stops
// accepting, lets requests finish for up to half the shutdown timeout,
// then ends the remaining streams and waits for the rest of it.
func (g *Gateway) Run(ctx context.Context, l net.Listener) error {
	srv, err := g.Server()
	if err != nil {
		return err
	}
	base, cancelStreams := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelStreams()
	srv.BaseContext = func(net.Listener) context.Context { return base }

	authCtx, stopAuth := context.WithCancel(ctx)
	defer stopAuth()
	g.run.mu.Lock()
	actx, stopAuthn := context.WithCancel(authCtx)
	g.run.ctx, g.run.stopAuthn = authCtx, stopAuthn
	go g.live.Load().authn.Run(actx)
	g.run.mu.Unlock()
	go g.watchPins(authCtx)
	go g.watchRevocations(authCtx)

	useTLS := srv.TLSConfig != nil // read before Serve, which may set it
	errc := make(chan error, 1)
	go func() {
		if useTLS {
			errc <- srv.ServeTLS(l, "", "") // certificates come from TLSConfig.GetCertificate
			return
		}
		errc <- srv.Serve(l)
	}()
	g.log.Info("mcpgate serving", slog.String("address", l.Addr().String()), slog.Int("routes", len(g.routes)),
		slog.Bool("tls", useTLS))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	timeout := g.cfg.Server.ShutdownTimeout.D()
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	drain := time.AfterFunc(timeout/2, cancelStreams)
	defer drain.Stop()
	err = srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	g.log.Info("mcpgate stopped")
	return err
}
