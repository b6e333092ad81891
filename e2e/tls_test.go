package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/testissuer"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestTLSEndToEnd runs a go-sdk client → mcpgate over TLS (certificates from
// files) → an upstream that requires a client certificate, verified against
// a pinned CA: the whole path is encrypted and mutually authenticated where
// configured, and a client that does not trust the gateway's CA cannot
// connect.
func TestTLSEndToEnd(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "mcpgate test CA")
	otherCA := newCA(t, "some other CA")
	gwCert, gwKey := ca.issue(t, dir, "gateway", false)
	clientCert, clientKey := ca.issue(t, dir, "mcpgate-client", true)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}

	// The upstream: a go-sdk MCP server requiring a client certificate
	// signed by the CA, and presenting a certificate from the same CA.
	srv := mcp.NewServer(&mcp.Implementation{Name: "mtls-upstream", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "hello"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		peer := req.Extra.Header.Get("X-Client-Cert-CN")
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello " + peer}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("X-Client-Cert-CN", r.TLS.PeerCertificates[0].Subject.CommonName)
		h.ServeHTTP(w, r)
	}))
	upCert, upKey := ca.issue(t, dir, "upstream", false)
	pair, err := tls.LoadX509KeyPair(upCert, upKey)
	if err != nil {
		t.Fatal(err)
	}
	up.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool()}
	up.StartTLS()
	defer up.Close()

	iss := testissuer.New(t, testissuer.Options{})
	base := startTLSGateway(t, func(base string) *config.Config {
		return &config.Config{
			Server:               config.Server{PublicBaseURL: base, TLS: &config.ListenerTLS{CertFile: gwCert, KeyFile: gwKey}},
			AuthorizationServers: []config.AuthorizationServer{{Issuer: iss.URL()}},
			Routes: []config.Route{{
				Name: "secure", Path: "/servers/secure/mcp",
				Upstream: config.Upstream{URL: up.URL + "/mcp", TLS: &config.UpstreamTLS{
					CAFile: caFile, CertFile: clientCert, KeyFile: clientKey,
				}},
				RequiredScopes: []string{"secure:use"},
				Tools:          map[string]config.ItemRule{"hello": {}},
			}},
			Limits:      config.Limits{RatePerIP: config.Rate{RequestsPerSecond: -1}},
			Development: config.Development{InsecureAllowHTTPLoopback: true},
		}
	})
	endpoint := base + "/servers/secure/mcp"
	tok := iss.Mint(testissuer.Claims{Subject: "alice", ClientID: "agent", Audience: []string{endpoint}, Scope: "secure:use"})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	connect := func(roots *x509.CertPool) (*mcp.ClientSession, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
		defer tr.CloseIdleConnections()
		c := mcp.NewClient(&mcp.Implementation{Name: "tls-agent", Version: "1"}, nil)
		return c.Connect(ctx, &mcp.StreamableClientTransport{
			Endpoint: endpoint, MaxRetries: -1, DisableStandaloneSSE: true,
			HTTPClient: &http.Client{Transport: bearerTransport{token: tok, base: tr}},
		}, nil)
	}
	cs, err := connect(ca.pool())
	if err != nil {
		t.Fatalf("connect over TLS: %v", err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "hello", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("call through mTLS upstream: %v %+v", err, res)
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != "hello mcpgate-client" {
		t.Errorf("upstream saw %q, want the gateway's client certificate (hello mcpgate-client)", got)
	}
	if _, err := connect(otherCA.pool()); err == nil {
		t.Error("a client that does not trust the gateway's CA connected")
	}
}

// startTLSGateway is startGateway with an https base URL.
func startTLSGateway(t *testing.T, build func(base string) *config.Config) string {
	t.Helper()
	var base string
	startGatewayScheme(t, "https", func(b string) *config.Config { base = b; return build(b) })
	return base
}

type bearerTransport struct {
	token string
	base  http.RoundTripper
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// testCA issues certificates for tests; keys are generated at run time.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue writes a certificate and key for 127.0.0.1 / localhost (or a client
// certificate) into dir and returns the two file names.
func (ca *testCA) issue(t *testing.T, dir, name string, client bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.IPAddresses, tmpl.DNSNames = nil, nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
