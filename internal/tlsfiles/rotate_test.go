package tlsfiles

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gateway is a listener served with ServerConfig from a Pair on files.
type gateway struct {
	ca                *testCA
	certFile, keyFile string
	clock             *fakeClock
	logs              *logBuf
	pair              *Pair
	url               string
}

const testInterval = 10 * time.Second

func newGateway(t *testing.T, ca *testCA, certFile, keyFile string) *gateway {
	t.Helper()
	g := &gateway{ca: ca, certFile: certFile, keyFile: keyFile, clock: newClock()}
	logger, logs := newLogger()
	g.logs = logs
	p, err := NewPair(PairConfig{CertFile: certFile, KeyFile: keyFile, CheckInterval: testInterval, Now: g.clock.Now, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	g.pair = p
	g.url = serveTLS(t, ServerConfig(p, 0), nil)
	return g
}

// gatewayOn writes the pair into a new directory and serves it.
func gatewayOn(t *testing.T, ca *testCA, certPEM, keyPEM []byte) *gateway {
	t.Helper()
	certFile, keyFile := pairFiles(t, certPEM, keyPEM)
	return newGateway(t, ca, certFile, keyFile)
}

// serial handshakes with the listener and returns the served serial.
func (g *gateway) serial(t *testing.T) int64 {
	t.Helper()
	return servedSerial(t, g.url, pool(g.ca))
}

func TestRotationOnHandshake(t *testing.T) {
	ca := newCA(t, "test ca")
	certPEM, keyPEM := ca.issue(t, leafOpts{serial: 1})
	g := gatewayOn(t, ca, certPEM, keyPEM)
	if got := g.serial(t); got != 1 {
		t.Fatalf("serial = %d, want 1", got)
	}

	c2, k2 := ca.issue(t, leafOpts{serial: 2})
	writeAtomic(t, g.certFile, c2)
	writeAtomic(t, g.keyFile, k2)
	// Within the interval the files are not looked at.
	g.clock.Advance(testInterval - time.Nanosecond)
	if got := g.serial(t); got != 1 {
		t.Fatalf("serial within the interval = %d, want 1", got)
	}
	g.clock.Advance(time.Nanosecond)
	if got := g.serial(t); got != 2 {
		t.Fatalf("serial after the interval = %d, want 2", got)
	}
	if n := g.logs.count("tls certificate loaded"); n != 2 || !strings.Contains(g.logs.String(), "serial=2") {
		t.Errorf("logs:\n%s", g.logs)
	}
	// Nothing changed: a further check loads nothing.
	g.clock.Advance(testInterval)
	if got := g.serial(t); got != 2 || g.logs.count("tls certificate loaded") != 2 {
		t.Errorf("serial = %d, logs:\n%s", got, g.logs)
	}
}

// k8sSecret lays files out as the kubelet's atomic writer does:
// dir/tls.crt → ..data/tls.crt, ..data → ..<version>/.
type k8sSecret struct{ dir string }

func newK8sSecret(t *testing.T, certPEM, keyPEM []byte) (*k8sSecret, string, string) {
	t.Helper()
	s := &k8sSecret{dir: t.TempDir()}
	s.publish(t, "..2026_01_01_00_00_00.000000001", certPEM, keyPEM, time.Time{})
	for _, name := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(s.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return s, filepath.Join(s.dir, "tls.crt"), filepath.Join(s.dir, "tls.key")
}

// publish writes a new version directory, with the given modification time
// if not zero, and swaps ..data to it in one rename.
func (s *k8sSecret) publish(t *testing.T, version string, certPEM, keyPEM []byte, mtime time.Time) {
	t.Helper()
	vdir := filepath.Join(s.dir, version)
	if err := os.Mkdir(vdir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM} {
		p := filepath.Join(vdir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if !mtime.IsZero() {
			if err := os.Chtimes(p, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(s.dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

func TestRotationBySymlinkSwap(t *testing.T) {
	ca := newCA(t, "test ca")
	certPEM, keyPEM := ca.issue(t, leafOpts{serial: 1})
	secret, certFile, keyFile := newK8sSecret(t, certPEM, keyPEM)
	g := newGateway(t, ca, certFile, keyFile)
	if got := g.serial(t); got != 1 {
		t.Fatalf("serial = %d, want 1", got)
	}
	old, err := os.Stat(certFile)
	if err != nil {
		t.Fatal(err)
	}

	// The new version has files of the same size as the old ones, with the
	// old modification time: only the inode tells them apart.
	c2, k2 := ca.issue(t, leafOpts{serial: 2})
	if len(c2) != len(certPEM) || len(k2) != len(keyPEM) {
		t.Fatalf("test setup: sizes differ (%d/%d, %d/%d)", len(c2), len(certPEM), len(k2), len(keyPEM))
	}
	secret.publish(t, "..2026_01_01_00_00_00.000000002", c2, k2, old.ModTime())
	if st, _ := os.Stat(certFile); st.Size() != old.Size() || !st.ModTime().Equal(old.ModTime()) {
		t.Fatalf("test setup: stat differs beyond the inode")
	}
	g.clock.Advance(testInterval)
	if got := g.serial(t); got != 2 {
		t.Fatalf("serial after swap = %d, want 2", got)
	}

	// A swap to an older version, as in a rollback, is a change too.
	secret.publish(t, "..2025_12_31_00_00_00.000000000", certPEM, keyPEM, old.ModTime().Add(-time.Hour))
	g.clock.Advance(testInterval)
	if got := g.serial(t); got != 1 {
		t.Fatalf("serial after rollback = %d, want 1", got)
	}
}

// TestBadRotationKeepsServing installs a broken new pair, checks that the
// last good one keeps serving and that the failure is logged once, then
// repairs the files.
func TestBadRotationKeepsServing(t *testing.T) {
	ca := newCA(t, "test ca")
	for _, tt := range []struct {
		name    string
		breakIt func(t *testing.T, certFile, keyFile string)
		wantLog string
	}{
		{"corrupt certificate", func(t *testing.T, c, _ string) {
			writeAtomic(t, c, []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"))
		}, "failed to find any PEM data"},
		{"truncated certificate", func(t *testing.T, c, _ string) {
			b, _ := os.ReadFile(c)
			writeAtomic(t, c, b[:len(b)/2])
		}, "failed to find any PEM data"},
		{"key of another certificate", func(t *testing.T, _, k string) {
			_, other := ca.issue(t, leafOpts{serial: 9})
			writeAtomic(t, k, other)
		}, "private key does not match public key"},
		{"empty key", func(t *testing.T, _, k string) { writeAtomic(t, k, nil) }, "failed to find any PEM data in key input"},
		{"missing certificate", func(t *testing.T, c, _ string) {
			if err := os.Remove(c); err != nil {
				t.Fatal(err)
			}
		}, "no such file"},
		{"directory instead of key", func(t *testing.T, _, k string) {
			if err := os.Remove(k); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(k, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"unparseable chain certificate", func(t *testing.T, c, k string) {
			c2, k2 := ca.issue(t, leafOpts{serial: 9})
			writeAtomic(t, c, append(c2, pemBlock("CERTIFICATE", []byte{0x30, 0x03, 0x02, 0x01, 0x01})...))
			writeAtomic(t, k, k2)
		}, "certificate 1 of the chain"},
		{"expired certificate", func(t *testing.T, c, k string) {
			c2, k2 := ca.issue(t, leafOpts{serial: 9, notAfter: time.Now().Add(-time.Minute)})
			writeAtomic(t, c, c2)
			writeAtomic(t, k, k2)
		}, "certificate expired"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, keyPEM := ca.issue(t, leafOpts{serial: 1})
			g := gatewayOn(t, ca, certPEM, keyPEM)
			notAfter := g.pair.NotAfter()

			tt.breakIt(t, g.certFile, g.keyFile)
			for range 3 {
				g.clock.Advance(testInterval)
				if got := g.serial(t); got != 1 {
					t.Fatalf("serial = %d, want the last good 1", got)
				}
			}
			if !g.pair.NotAfter().Equal(notAfter) {
				t.Errorf("NotAfter changed to %v", g.pair.NotAfter())
			}
			logs := g.logs.String()
			if n := g.logs.count("reload failed"); n != 1 || g.logs.count(tt.wantLog) != 1 {
				t.Errorf("want one failure logged with %q:\n%s", tt.wantLog, logs)
			}
			if strings.Contains(logs, "PRIVATE KEY") || strings.Contains(logs, string(keyPEM[40:80])) {
				t.Errorf("logs carry key material:\n%s", logs)
			}

			// Repaired: the new pair is served, and a later failure is
			// logged again.
			_ = os.Remove(g.keyFile) // it may be a directory now
			c3, k3 := ca.issue(t, leafOpts{serial: 3})
			writeAtomic(t, g.certFile, c3)
			writeAtomic(t, g.keyFile, k3)
			g.clock.Advance(testInterval)
			if got := g.serial(t); got != 3 {
				t.Fatalf("serial after repair = %d, want 3", got)
			}
			tt.breakIt(t, g.certFile, g.keyFile)
			g.clock.Advance(testInterval)
			if got := g.serial(t); got != 3 || g.logs.count("reload failed") != 2 {
				t.Errorf("serial = %d after a second failure, logs:\n%s", got, g.logs)
			}
		})
	}
}

// TestFileByFileWriter replaces the certificate, then the key, with a check
// in between: the half-written state is refused, the whole one installed.
func TestFileByFileWriter(t *testing.T) {
	ca := newCA(t, "test ca")
	certPEM, keyPEM := ca.issue(t, leafOpts{serial: 1})
	g := gatewayOn(t, ca, certPEM, keyPEM)
	c2, k2 := ca.issue(t, leafOpts{serial: 2})

	// In place (same inode), as `cp` or a config agent would.
	if err := os.WriteFile(g.certFile, c2, 0o600); err != nil {
		t.Fatal(err)
	}
	g.clock.Advance(testInterval)
	if got := g.serial(t); got != 1 {
		t.Fatalf("serial with only the certificate replaced = %d, want 1", got)
	}
	if err := os.WriteFile(g.keyFile, k2, 0o600); err != nil {
		t.Fatal(err)
	}
	g.clock.Advance(testInterval)
	if got := g.serial(t); got != 2 {
		t.Fatalf("serial with both replaced = %d, want 2", got)
	}
	if g.logs.count("does not match") != 1 {
		t.Errorf("logs:\n%s", g.logs)
	}
}

func TestServerConfigHandshake(t *testing.T) {
	ca := newCA(t, "test ca")
	certPEM, keyPEM := ca.issue(t, leafOpts{serial: 1})
	certFile, keyFile := pairFiles(t, certPEM, keyPEM)
	p, err := NewPair(PairConfig{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(serveTLS(t, ServerConfig(p, tls.VersionTLS13), nil), "https://")

	for _, tt := range []struct {
		name      string
		cfg       *tls.Config
		wantProto string // "" when the handshake must fail
	}{
		{"h2", &tls.Config{RootCAs: pool(ca), ServerName: "gateway.test", NextProtos: []string{"h2", "http/1.1"}}, "h2"},
		{"http/1.1", &tls.Config{RootCAs: pool(ca), ServerName: "gateway.test", NextProtos: []string{"http/1.1"}}, "http/1.1"},
		{"TLS 1.2 client refused", &tls.Config{RootCAs: pool(ca), ServerName: "gateway.test", MaxVersion: tls.VersionTLS12}, ""},
		{"unknown CA", &tls.Config{RootCAs: pool(newCA(t, "other")), ServerName: "gateway.test"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", addr, tt.cfg)
			if tt.wantProto == "" {
				if err == nil {
					conn.Close()
					t.Fatal("handshake succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if got := conn.ConnectionState().NegotiatedProtocol; got != tt.wantProto {
				t.Errorf("ALPN = %q, want %q", got, tt.wantProto)
			}
		})
	}
}
