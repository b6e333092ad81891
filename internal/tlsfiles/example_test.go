package tlsfiles_test

import (
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/mcpgate/mcpgate/internal/tlsfiles"
)

// The listener reloads its certificate when the files change; the upstream
// client pins a CA and presents a client certificate.
func Example() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	pair, err := tlsfiles.NewPair(tlsfiles.PairConfig{
		CertFile: "/etc/mcpgate/tls/tls.crt",
		KeyFile:  "/etc/mcpgate/tls/tls.key",
		Logger:   logger,
	})
	if err != nil {
		logger.Error("listener tls", "error", err)
		return
	}
	srv := &http.Server{
		Addr:              ":8443",
		TLSConfig:         tlsfiles.ServerConfig(pair, 0),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.ListenAndServeTLS("", "") }() // files come from TLSConfig

	upstreamTLS, err := tlsfiles.ClientConfig(tlsfiles.ClientConfigOptions{
		CAFile:   "/etc/mcpgate/upstreams/docs/ca.crt",
		CertFile: "/etc/mcpgate/upstreams/docs/tls.crt",
		KeyFile:  "/etc/mcpgate/upstreams/docs/tls.key",
	}, logger)
	if err != nil {
		logger.Error("upstream tls", "error", err)
		return
	}
	_ = &http.Transport{TLSClientConfig: upstreamTLS, ForceAttemptHTTP2: true}
}
