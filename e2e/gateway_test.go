package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/gateway"
)

// startGateway runs mcpgate on a loopback listener, the way `mcpgate serve`
// does, with the configuration build returns for the listener's base URL.
// It returns that base URL.
func startGateway(t *testing.T, build func(base string) *config.Config) string {
	t.Helper()
	return startGatewayScheme(t, "http", build)
}

func startGatewayScheme(t *testing.T, scheme string, build func(base string) *config.Config) string {
	t.Helper()
	return startGatewayOn(t, listen(t), scheme, build)
}

// startGatewayOn runs the gateway on l, its audit records discarded.
func startGatewayOn(t *testing.T, l net.Listener, scheme string, build func(base string) *config.Config) string {
	t.Helper()
	return startGatewayAudited(t, l, scheme, audit.NewWriter(discard{}), build)
}

// startGatewayAudited runs the gateway on l, recording into sink.
func startGatewayAudited(t *testing.T, l net.Listener, scheme string, sink audit.Sink, build func(base string) *config.Config) string {
	t.Helper()
	base := scheme + "://" + l.Addr().String()
	cfg := build(base)
	cfg.Server.Listen = l.Addr().String()
	cfg.ApplyDefaults()
	logLevel := slog.LevelWarn
	if testing.Verbose() {
		logLevel = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))
	g, err := gateway.New(cfg, gateway.Deps{Logger: log, Audit: sink})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("gateway stopped with %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("gateway did not stop")
		}
		g.Close()
	})
	waitListening(t, l.Addr().String())
	return base
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
