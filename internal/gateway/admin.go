package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/secret"
	"github.com/mcpgate/mcpgate/internal/tlsfiles"
)

// admin serves the admin listener: /healthz and /readyz for probes,
// /metrics for Prometheus, and the admin API under /admin/, which needs
// its own credential (a bearer secret from a file, or a client
// certificate when the listener does mutual TLS). It never shares an
// address with the MCP endpoints.
type admin struct {
	g      *Gateway
	mux    *http.ServeMux
	bearer *secret.File // nil: no bearer credential configured
	mtls   bool         // client certificates are verified and accepted as credentials
	tls    *tls.Config  // nil: plain http
}

func newAdmin(g *Gateway) (*admin, error) {
	a := &admin{g: g, mux: http.NewServeMux()}
	c := g.cfg.Admin
	if c.BearerTokenFile != "" {
		f, err := secret.Watch(c.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin.bearer_token_file: %w", err)
		}
		if v, _ := f.Value(); len(v) < 16 {
			return nil, errors.New("admin.bearer_token_file: the secret must be at least 16 bytes")
		}
		a.bearer = f
	}
	a.mtls = c.TLS != nil && c.TLS.ClientCAFile != ""
	if t := c.TLS; t != nil {
		// Loaded now, so that a bad certificate stops mcpgate at start
		// rather than leaving an admin listener that never serves.
		pair, err := tlsfiles.NewPair(tlsfiles.PairConfig{CertFile: t.CertFile, KeyFile: t.KeyFile, Logger: g.log})
		if err != nil {
			return nil, fmt.Errorf("admin.tls: %w", err)
		}
		a.tls = tlsfiles.ServerConfig(pair, tls.VersionTLS12)
		if t.ClientCAFile != "" {
			pool, err := loadPool(t.ClientCAFile)
			if err != nil {
				return nil, fmt.Errorf("admin.tls: %w", err)
			}
			// Verified when given: probes and Prometheus need no
			// certificate, the admin API accepts a verified one.
			a.tls.ClientCAs = pool
			a.tls.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.Handle("GET /metrics", g.metrics.Handler())
	a.mux.Handle("GET /admin/status", a.authorized(http.HandlerFunc(a.status)))
	a.mux.Handle("/admin/revocations", a.authorized(http.HandlerFunc(a.revocationsAPI)))
	if g.cfg.Admin.Profiling {
		a.mux.Handle("GET /debug/pprof/", a.authorized(http.HandlerFunc(pprof.Index)))
		a.mux.Handle("GET /debug/pprof/cmdline", a.authorized(http.HandlerFunc(pprof.Cmdline)))
		a.mux.Handle("GET /debug/pprof/profile", a.authorized(http.HandlerFunc(pprof.Profile)))
		a.mux.Handle("GET /debug/pprof/symbol", a.authorized(http.HandlerFunc(pprof.Symbol)))
		a.mux.Handle("GET /debug/pprof/trace", a.authorized(http.HandlerFunc(pprof.Trace)))
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found"})
	})
	return a, nil
}

// readyz is ready only once every issuer's keys (or introspection) are
// usable: a load balancer sends no traffic to a gateway that would answer
// 503 to every token.
func (a *admin) readyz(w http.ResponseWriter, r *http.Request) {
	if !a.g.Ready() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not_ready",
			"reason": "the keys of every authorization server are not loaded yet"})
		return
	}
	if a.g.redis != nil {
		if err := a.g.redis.Ping(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not_ready",
				"reason": "the shared store (Redis) does not answer"})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// authorized requires the admin credential: a verified client certificate
// (mutual TLS), or the bearer secret compared in constant time. Without
// either configured, the admin API is refused outright.
func (a *admin) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.mtls && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			next.ServeHTTP(w, r)
			return
		}
		if a.bearer == nil {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden",
				"error_description": "the admin API needs admin.bearer_token_file or admin.tls.client_ca_file"})
			return
		}
		want, err := a.bearer.Value()
		if err == nil && len(want) < 16 {
			err = errors.New("the admin secret is shorter than 16 bytes")
		}
		if err != nil {
			a.g.log.Error("admin credential unreadable; refusing the admin API", slog.String("error", err.Error()))
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable"})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		// Equal-length digests: the comparison takes the same time
		// whatever the presented value.
		gs, ws := sha256.Sum256([]byte(got)), sha256.Sum256(want)
		if !ok || subtle.ConstantTimeCompare(gs[:], ws[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mcpgate-admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// status reports what an operator checks first.
func (a *admin) status(w http.ResponseWriter, r *http.Request) {
	g := a.g
	routes := make([]string, 0, len(g.routes))
	for _, rt := range g.routes {
		routes = append(routes, rt.name)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ready":              g.Ready(),
		"routes":             routes,
		"audit_records_lost": g.auditLost.Load(),
		"revocations":        g.revoked.Len(),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// AdminHandler is the admin listener's handler (of the gateway serving
// now, after any Reload).
func (g *Gateway) AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.live.Load().admin.mux.ServeHTTP(w, r) })
}

// ServeAdmin serves the admin listener on l until ctx is done.
func (g *Gateway) ServeAdmin(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           g.AdminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	if t := g.live.Load().admin.tls; t != nil {
		srv.TLSConfig = t.Clone()
	}
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(l, "", "")
			return
		}
		errc <- srv.Serve(l)
	}()
	g.log.Info("mcpgate admin listener serving", slog.String("address", l.Addr().String()), slog.Bool("tls", srv.TLSConfig != nil))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
