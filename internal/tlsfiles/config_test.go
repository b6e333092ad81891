package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServerConfig(t *testing.T) {
	ca := newCA(t, "test ca")
	c, k := ca.issue(t, leafOpts{serial: 1})
	certFile, keyFile := pairFiles(t, c, k)
	p, err := NewPair(PairConfig{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		in, want uint16
	}{
		{0, tls.VersionTLS12},
		{tls.VersionTLS10, tls.VersionTLS12},
		{tls.VersionTLS11, tls.VersionTLS12},
		{tls.VersionTLS12, tls.VersionTLS12},
		{tls.VersionTLS13, tls.VersionTLS13},
	} {
		cfg := ServerConfig(p, tt.in)
		if cfg.MinVersion != tt.want {
			t.Errorf("ServerConfig(%x).MinVersion = %x, want %x", tt.in, cfg.MinVersion, tt.want)
		}
		if len(cfg.Certificates) != 0 || cfg.GetCertificate == nil {
			t.Errorf("certificates not from the pair: %d static, GetCertificate %v", len(cfg.Certificates), cfg.GetCertificate != nil)
		}
		if got := strings.Join(cfg.NextProtos, ","); got != "h2,http/1.1" {
			t.Errorf("NextProtos = %q", got)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("ServerConfig(nil) did not panic")
		}
	}()
	ServerConfig(nil, 0)
}

// upstream serves an https upstream with the given certificate, optionally
// requiring client certificates from clientCAs, and answers with the
// client certificate's common name.
func upstream(t *testing.T, leaf pemPair, clientCAs *x509.CertPool) string {
	t.Helper()
	cert, err := tls.X509KeyPair(leaf.cert, leaf.key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := "anonymous"
		if len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		_, _ = io.WriteString(w, cn)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCAs != nil {
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		srv.TLS.ClientCAs = clientCAs
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestClientConfigPinnedCA(t *testing.T) {
	pinned := newCA(t, "internal upstream ca")
	// Another CA, named like a public root: pinning must refuse it too.
	public := newCA(t, "ISRG Root X1")
	caFile := writeTemp(t, "ca.pem", pinned.pem)
	cfg, err := ClientConfig(ClientConfigOptions{CAFile: caFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.RootCAs.Equal(pool(pinned)) {
		t.Error("RootCAs holds more than the pinned CA")
	}
	if cfg.MinVersion != tls.VersionTLS12 || cfg.InsecureSkipVerify || cfg.GetClientCertificate != nil {
		t.Errorf("config = %+v", cfg)
	}

	good := upstream(t, pinned.pair(t, leafOpts{serial: 1, dns: []string{"localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}}), nil)
	if body, _, err := get(t, good, cfg); err != nil || body != "anonymous" {
		t.Errorf("pinned upstream: %q, %v", body, err)
	}
	bad := upstream(t, public.pair(t, leafOpts{serial: 1, dns: []string{"localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}}), nil)
	_, _, err = get(t, bad, cfg)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("upstream signed by another CA: %v, want x509.UnknownAuthorityError", err)
	}

	// No CA file: the system roots (nil), which do not know the test CA.
	sys, err := ClientConfig(ClientConfigOptions{}, nil)
	if err != nil || sys.RootCAs != nil {
		t.Fatalf("ClientConfig() = %+v, %v", sys, err)
	}
	if _, _, err := get(t, good, sys); !errors.As(err, &unknown) {
		t.Errorf("system roots accepted a test CA: %v", err)
	}
}

func TestClientConfigServerName(t *testing.T) {
	ca := newCA(t, "upstream ca")
	caFile := writeTemp(t, "ca.pem", ca.pem)
	// The certificate names only the upstream's internal name, not the
	// address mcpgate dials.
	url := upstream(t, ca.pair(t, leafOpts{serial: 1, dns: []string{"docs.internal"}}), nil)
	for _, tt := range []struct {
		serverName string
		ok         bool
	}{
		{"", false},
		{"docs.internal", true},
		{"mail.internal", false},
	} {
		t.Run("name="+tt.serverName, func(t *testing.T) {
			cfg, err := ClientConfig(ClientConfigOptions{CAFile: caFile, ServerName: tt.serverName}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, leaf, err := get(t, url, cfg)
			var hostErr x509.HostnameError
			switch {
			case tt.ok && (err != nil || leaf.DNSNames[0] != "docs.internal"):
				t.Errorf("get = %v", err)
			case !tt.ok && !errors.As(err, &hostErr):
				t.Errorf("get = %v, want x509.HostnameError", err)
			}
		})
	}
}

func TestClientConfigMutualTLS(t *testing.T) {
	serverCA, clientCA, otherCA := newCA(t, "upstream ca"), newCA(t, "client ca"), newCA(t, "other client ca")
	url := upstream(t, serverCA.pair(t, leafOpts{serial: 1}), pool(clientCA))
	caFile := writeTemp(t, "ca.pem", serverCA.pem)
	for _, tt := range []struct {
		name   string
		issuer *testCA // nil: no client certificate
		want   string  // body; "" when the upstream must refuse
	}{
		{"client certificate", clientCA, "mcpgate-route-docs"},
		{"no client certificate", nil, ""},
		{"certificate from another CA", otherCA, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := ClientConfigOptions{CAFile: caFile}
			if tt.issuer != nil {
				c, k := tt.issuer.issue(t, leafOpts{serial: 5, cn: "mcpgate-route-docs", client: true, ecdsa: true})
				opts.CertFile, opts.KeyFile = pairFiles(t, c, k)
			}
			cfg, err := ClientConfig(opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _, err := get(t, url, cfg)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("upstream answered %q", body)
				}
				return
			}
			if err != nil || body != tt.want {
				t.Errorf("upstream saw %q, %v; want %q", body, err, tt.want)
			}
		})
	}
}

func TestClientCertificateRotation(t *testing.T) {
	serverCA, clientCA := newCA(t, "upstream ca"), newCA(t, "client ca")
	url := upstream(t, serverCA.pair(t, leafOpts{serial: 1}), pool(clientCA))
	first := clientCA.pair(t, leafOpts{serial: 1, cn: "first", client: true})
	certFile, keyFile := pairFiles(t, first.cert, first.key)
	clock := newClock()
	logger, logs := newLogger()
	cfg, err := clientConfig(ClientConfigOptions{CAFile: writeTemp(t, "ca.pem", serverCA.pem), CertFile: certFile, KeyFile: keyFile}, logger, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	if body, _, err := get(t, url, cfg); err != nil || body != "first" {
		t.Fatalf("upstream saw %q, %v", body, err)
	}
	c2, k2 := clientCA.issue(t, leafOpts{serial: 2, cn: "second", client: true})
	writeAtomic(t, certFile, c2)
	writeAtomic(t, keyFile, k2)
	clock.Advance(DefaultCheckInterval)
	if body, _, err := get(t, url, cfg); err != nil || body != "second" {
		t.Fatalf("upstream saw %q, %v after rotation", body, err)
	}
	if logs.count("tls certificate loaded") != 2 {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestClientConfigRejects(t *testing.T) {
	ca := newCA(t, "ca")
	certPEM, keyPEM := ca.issue(t, leafOpts{serial: 1, client: true})
	certFile, keyFile := pairFiles(t, certPEM, keyPEM)
	corrupt := pemBlock("CERTIFICATE", []byte("junk"))
	for _, tt := range []struct {
		name    string
		opts    ClientConfigOptions
		wantIs  []error
		wantMsg string
	}{
		{name: "cert without key", opts: ClientConfigOptions{CertFile: certFile}, wantIs: []error{ErrIncompletePair}},
		{name: "key without cert", opts: ClientConfigOptions{KeyFile: keyFile}, wantIs: []error{ErrIncompletePair}},
		{name: "missing client cert", opts: ClientConfigOptions{CertFile: certFile + ".nope", KeyFile: keyFile}, wantIs: []error{fs.ErrNotExist}},
		{name: "mismatched client key", opts: ClientConfigOptions{CertFile: certFile, KeyFile: writeTemp(t, "k", ca.pair(t, leafOpts{serial: 2}).key)}, wantMsg: "does not match"},
		{name: "missing ca file", opts: ClientConfigOptions{CAFile: filepath.Join(t.TempDir(), "ca.pem")}, wantIs: []error{fs.ErrNotExist}},
		{name: "ca is a directory", opts: ClientConfigOptions{CAFile: t.TempDir()}, wantIs: []error{ErrNotRegular}},
		{name: "empty ca bundle", opts: ClientConfigOptions{CAFile: writeTemp(t, "ca.pem", nil)}, wantIs: []error{ErrNoCertificates}},
		{name: "comments only", opts: ClientConfigOptions{CAFile: writeTemp(t, "ca.pem", []byte("# Issuer: nobody\n"))}, wantIs: []error{ErrNoCertificates}},
		{name: "DER instead of PEM", opts: ClientConfigOptions{CAFile: writeTemp(t, "ca.der", ca.cert.Raw)}, wantIs: []error{ErrNoCertificates}},
		{name: "corrupt certificate", opts: ClientConfigOptions{CAFile: writeTemp(t, "ca.pem", append(append([]byte{}, ca.pem...), corrupt...))}, wantMsg: "block 2"},
		{name: "private key in bundle", opts: ClientConfigOptions{CAFile: writeTemp(t, "ca.pem", append(append([]byte{}, ca.pem...), keyPEM...))}, wantMsg: `unexpected PEM block type "PRIVATE KEY"`},
		{name: "every problem at once", opts: ClientConfigOptions{CAFile: writeTemp(t, "ca.pem", nil), CertFile: certFile}, wantIs: []error{ErrNoCertificates, ErrIncompletePair}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ClientConfig(tt.opts, nil)
			if err == nil {
				t.Fatalf("ClientConfig = %+v, nil error", cfg)
			}
			for _, want := range tt.wantIs {
				if !errors.Is(err, want) {
					t.Errorf("error %q is not %v", err, want)
				}
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), string(keyPEM[40:80])) {
				t.Errorf("error %q carries key material", err)
			}
		})
	}
}

func TestParseCABundle(t *testing.T) {
	a, b := newCA(t, "a"), newCA(t, "b")
	bundle := "# Issuer: a\n" + string(a.pem) + "\n# Issuer: b\n" + string(b.pem) + "trailing text\n"
	got, n, err := parseCABundle([]byte(bundle))
	if err != nil || n != 2 || !got.Equal(pool(a, b)) {
		t.Errorf("parseCABundle = %d certificates, %v", n, err)
	}
}
