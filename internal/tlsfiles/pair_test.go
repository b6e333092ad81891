package tlsfiles

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewPairRejects(t *testing.T) {
	ca := newCA(t, "test ca")
	certPEM, keyPEM := ca.issue(t, leafOpts{serial: 1})
	_, otherKey := ca.issue(t, leafOpts{serial: 2})
	_, ecKey := ca.issue(t, leafOpts{serial: 3, ecdsa: true})
	badChain := append(bytes.Clone(certPEM), pemBlock("CERTIFICATE", []byte("not der"))...)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert, key := write("cert.pem", certPEM), write("key.pem", keyPEM)

	for _, tt := range []struct {
		name    string
		cfg     PairConfig
		wantIs  error  // checked with errors.Is when set
		wantMsg string // substring of the error when set
	}{
		{name: "no cert file", cfg: PairConfig{KeyFile: key}, wantMsg: "cert file: required"},
		{name: "no key file", cfg: PairConfig{CertFile: cert}, wantMsg: "key file: required"},
		{name: "negative interval", cfg: PairConfig{CertFile: cert, KeyFile: key, CheckInterval: -time.Second}, wantMsg: "negative"},
		{name: "missing cert", cfg: PairConfig{CertFile: filepath.Join(dir, "nope.pem"), KeyFile: key}, wantIs: fs.ErrNotExist},
		{name: "missing key", cfg: PairConfig{CertFile: cert, KeyFile: filepath.Join(dir, "nope.key")}, wantIs: fs.ErrNotExist},
		{name: "directory", cfg: PairConfig{CertFile: dir, KeyFile: key}, wantIs: ErrNotRegular},
		{name: "too large", cfg: PairConfig{CertFile: write("big.pem", make([]byte, maxFileBytes+1)), KeyFile: key}, wantIs: ErrTooLarge},
		{name: "empty cert", cfg: PairConfig{CertFile: write("empty.pem", nil), KeyFile: key}, wantMsg: "failed to find any PEM data"},
		{name: "garbage cert", cfg: PairConfig{CertFile: write("garbage.pem", []byte("hello")), KeyFile: key}, wantMsg: "failed to find any PEM data"},
		{name: "corrupt cert block", cfg: PairConfig{CertFile: write("corrupt.pem", pemBlock("CERTIFICATE", []byte("xx"))), KeyFile: key}, wantMsg: "malformed certificate"},
		{name: "key of another certificate", cfg: PairConfig{CertFile: cert, KeyFile: write("other.key", otherKey)}, wantMsg: "does not match"},
		{name: "key of another type", cfg: PairConfig{CertFile: cert, KeyFile: write("ec.key", ecKey)}, wantMsg: "type does not match"},
		{name: "certificate as key", cfg: PairConfig{CertFile: cert, KeyFile: cert}, wantMsg: "certificate rather than a key"},
		{name: "key as certificate", cfg: PairConfig{CertFile: key, KeyFile: key}, wantMsg: "may have been switched"},
		{name: "unparseable chain certificate", cfg: PairConfig{CertFile: write("chain.pem", badChain), KeyFile: key}, wantMsg: "certificate 1 of the chain"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPair(tt.cfg)
			if err == nil {
				t.Fatalf("NewPair = %v, nil error", p)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), string(keyPEM[30:60])) {
				t.Errorf("error %q carries key material", err)
			}
		})
	}
}

func TestNewPairLoads(t *testing.T) {
	ca := newCA(t, "test ca")
	notAfter := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	certPEM, keyPEM := ca.issue(t, leafOpts{serial: 7, notAfter: notAfter, ecdsa: true})
	certFile, keyFile := pairFiles(t, certPEM, keyPEM)
	combined := filepath.Join(t.TempDir(), "combined.pem")
	if err := os.WriteFile(combined, append(bytes.Clone(keyPEM), certPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	// A symlink to the files works like the files.
	link := filepath.Join(t.TempDir(), "link.crt")
	if err := os.Symlink(certFile, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		cfg  PairConfig
	}{
		{"separate files", PairConfig{CertFile: certFile, KeyFile: keyFile}},
		{"one file", PairConfig{CertFile: combined, KeyFile: combined}},
		{"symlink", PairConfig{CertFile: link, KeyFile: keyFile}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logger, logs := newLogger()
			tt.cfg.Logger = logger
			p, err := NewPair(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if p.interval != DefaultCheckInterval {
				t.Errorf("interval = %v, want %v", p.interval, DefaultCheckInterval)
			}
			if got := currentSerial(t, p); got != 7 {
				t.Errorf("serial = %d, want 7", got)
			}
			cc, err := p.GetClientCertificate(&tls.CertificateRequestInfo{})
			if err != nil || cc.Leaf.SerialNumber.Int64() != 7 {
				t.Errorf("GetClientCertificate = %v, %v", cc, err)
			}
			if got := p.NotAfter(); !got.Equal(notAfter) {
				t.Errorf("NotAfter = %v, want %v", got, notAfter)
			}
			if logs.count("tls certificate loaded") != 1 || strings.Contains(logs.String(), "PRIVATE KEY") {
				t.Errorf("logs = %s", logs)
			}
		})
	}
}

func TestNewPairExpired(t *testing.T) {
	ca := newCA(t, "test ca")
	certPEM, keyPEM := ca.issue(t, leafOpts{serial: 1, notAfter: time.Now().Add(-time.Hour)})
	certFile, keyFile := pairFiles(t, certPEM, keyPEM)
	logger, logs := newLogger()
	p, err := NewPair(PairConfig{CertFile: certFile, KeyFile: keyFile, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if !p.NotAfter().Before(time.Now()) || logs.count("level=WARN") != 1 || logs.count("has expired") != 1 {
		t.Errorf("NotAfter = %v, logs:\n%s", p.NotAfter(), logs)
	}
	// Replacing an expired certificate by another expired one is allowed:
	// the rule only protects a valid certificate.
	c2, k2 := ca.issue(t, leafOpts{serial: 2, notAfter: time.Now().Add(-time.Minute)})
	writeAtomic(t, certFile, c2)
	writeAtomic(t, keyFile, k2)
	if err := p.Reload(); err != nil || currentSerial(t, p) != 2 {
		t.Errorf("Reload = %v, serial %d", err, currentSerial(t, p))
	}
}

func TestReload(t *testing.T) {
	ca := newCA(t, "test ca")
	certPEM, keyPEM := ca.issue(t, leafOpts{serial: 1})
	certFile, keyFile := pairFiles(t, certPEM, keyPEM)
	logger, logs := newLogger()
	p, err := NewPair(PairConfig{CertFile: certFile, KeyFile: keyFile, Now: newClock().Now, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}

	// Unchanged files: a forced reload succeeds and serves the same pair.
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	// Changed files, clock not advanced: Reload picks them up at once.
	c2, k2 := ca.issue(t, leafOpts{serial: 2})
	writeAtomic(t, certFile, c2)
	writeAtomic(t, keyFile, k2)
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := currentSerial(t, p); got != 2 {
		t.Fatalf("serial after Reload = %d, want 2", got)
	}
	// A missing file: the error is returned and logged, the pair stays.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Reload = %v, want fs.ErrNotExist", err)
	}
	// A mismatched key: the same.
	_, k3 := ca.issue(t, leafOpts{serial: 3})
	writeAtomic(t, keyFile, k3)
	if err := p.Reload(); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("Reload = %v, want a mismatch", err)
	}
	if got := currentSerial(t, p); got != 2 {
		t.Fatalf("serial after failed Reload = %d, want 2", got)
	}
	if n := logs.count("reload failed"); n != 2 {
		t.Errorf("%d failures logged, want 2:\n%s", n, logs)
	}
	if n := logs.count("tls certificate loaded"); n != 3 {
		t.Errorf("%d loads logged, want 3:\n%s", n, logs)
	}
}

// TestOneReloadAtATime holds a reload inside its file read and checks that
// other handshakes neither wait for it nor start another one.
func TestOneReloadAtATime(t *testing.T) {
	ca := newCA(t, "test ca")
	certPEM, keyPEM := ca.issue(t, leafOpts{serial: 1})
	certFile, keyFile := pairFiles(t, certPEM, keyPEM)
	clock := newClock()
	p, err := NewPair(PairConfig{CertFile: certFile, KeyFile: keyFile, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var reads sync.WaitGroup // one per file read
	reads.Add(2)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	p.readFile = func(name string) ([]byte, error) {
		once.Do(func() { close(entered); <-release })
		reads.Done() // panics on a third read
		return readFile(name)
	}
	c2, k2 := ca.issue(t, leafOpts{serial: 2})
	writeAtomic(t, certFile, c2)
	writeAtomic(t, keyFile, k2)
	clock.Advance(DefaultCheckInterval)

	reloaded := make(chan int64)
	go func() {
		c, _ := p.GetCertificate(&tls.ClientHelloInfo{})
		reloaded <- c.Leaf.SerialNumber.Int64()
	}()
	<-entered
	// The load outlasts an interval, so the handshakes below are due for a
	// check of their own.
	clock.Advance(DefaultCheckInterval)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got := currentSerial(t, p); got != 1 {
				t.Errorf("serial during reload = %d, want 1", got)
			}
		})
	}
	wg.Wait() // hangs (test timeout) if a handshake waited for the reload
	close(release)
	if got := <-reloaded; got != 2 {
		t.Errorf("serial from reloading handshake = %d, want 2", got)
	}
	if got := currentSerial(t, p); got != 2 {
		t.Errorf("serial after reload = %d, want 2", got)
	}
	reads.Wait()
}

// TestConcurrentRotation races handshakes against rotations for -race.
func TestConcurrentRotation(t *testing.T) {
	ca := newCA(t, "test ca")
	certPEM, keyPEM := ca.issue(t, leafOpts{serial: 1})
	certFile, keyFile := pairFiles(t, certPEM, keyPEM)
	clock := newClock()
	p, err := NewPair(PairConfig{CertFile: certFile, KeyFile: keyFile, Now: clock.Now, CheckInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if s := currentSerial(t, p); s < 1 || s > 5 {
					t.Errorf("serial %d", s)
				}
				_ = p.NotAfter()
			}
		})
	}
	for serial := int64(2); serial <= 5; serial++ {
		c, k := ca.issue(t, leafOpts{serial: serial})
		dir := t.TempDir()
		writeAtomic(t, filepath.Join(dir, "c"), c)
		writeAtomic(t, filepath.Join(dir, "k"), k)
		// Both files renamed into place, one after the other.
		if err := os.Rename(filepath.Join(dir, "c"), certFile); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "k"), keyFile); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		if serial == 3 {
			_ = p.Reload()
		}
	}
	close(stop)
	wg.Wait()
	clock.Advance(time.Second)
	if got := currentSerial(t, p); got != 5 {
		t.Errorf("final serial = %d, want 5", got)
	}
}
