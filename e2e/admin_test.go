package e2e

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/mcpgate/mcpgate/internal/testissuer"
)

// TestAdminMutualTLS serves the admin listener over TLS with a client CA:
// probes and metrics need no certificate, the admin API accepts a client
// certificate of that CA as its credential and refuses one of another CA.
func TestAdminMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, other := newCA(t, "admin-ca"), newCA(t, "other-ca")
	srvCert, srvKey := ca.issue(t, dir, "admin-server", false)
	cliCert, cliKey := ca.issue(t, dir, "operator", true)
	badCert, badKey := other.issue(t, dir, "intruder", true)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	iss := testissuer.New(t, testissuer.Options{})
	cfg := &config.Config{
		Server:               config.Server{PublicBaseURL: "http://127.0.0.1:1", Listen: "127.0.0.1:0"},
		AuthorizationServers: []config.AuthorizationServer{{Issuer: iss.URL()}},
		Routes:               []config.Route{{Name: "r", Path: "/servers/r/mcp", Upstream: config.Upstream{URL: "http://127.0.0.1:1/mcp"}}},
		Admin:                config.Admin{TLS: &config.AdminTLS{CertFile: srvCert, KeyFile: srvKey, ClientCAFile: caFile}},
		Development:          config.Development{InsecureAllowHTTPLoopback: true},
	}
	cfg.ApplyDefaults()
	g, err := gateway.New(cfg, gateway.Deps{Audit: audit.NewWriter(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	l := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.ServeAdmin(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	client := func(certFile, keyFile string) *http.Client {
		tc := &tls.Config{RootCAs: ca.pool()}
		if certFile != "" {
			pair, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	}
	base := "https://" + l.Addr().String()
	for _, tc := range []struct {
		name, path string
		c          *http.Client
		want       int
	}{
		{"probe without a certificate", "/healthz", client("", ""), 200},
		{"metrics without a certificate", "/metrics", client("", ""), 200},
		{"admin API with the operator's certificate", "/admin/status", client(cliCert, cliKey), 200},
		{"admin API without a certificate", "/admin/status", client("", ""), 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.c.Get(base + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	// A certificate of another CA is no credential: the handshake fails,
	// or (as Go's client does) it is not sent and the API refuses.
	if resp, err := client(badCert, badKey).Get(base + "/admin/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a foreign client certificate was accepted: %d", resp.StatusCode)
		}
	}
}
