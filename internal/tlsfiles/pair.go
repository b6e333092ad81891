package tlsfiles

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCheckInterval is the CheckInterval used when PairConfig leaves it
// zero.
const DefaultCheckInterval = 5 * time.Second

// PairConfig configures a [Pair].
type PairConfig struct {
	// CertFile is the PEM certificate chain, leaf first. Required. Symlinks
	// are followed.
	CertFile string
	// KeyFile is the PEM private key of the leaf. Required. It may be the
	// same file as CertFile.
	KeyFile string
	// CheckInterval is how often a handshake may stat the files to look for
	// a change. Default 5s; negative is an error.
	CheckInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives reloads (info) and reload failures (error). Default
	// discard.
	Logger *slog.Logger
}

// Pair is a certificate/key file pair that reloads itself when either file
// changes. It is safe for concurrent use.
type Pair struct {
	certFile, keyFile string
	interval          time.Duration
	now               func() time.Time
	logger            *slog.Logger
	readFile          func(string) ([]byte, error) // replaced in tests

	cur       atomic.Pointer[tls.Certificate] // the pair served; Leaf always set
	lastCheck atomic.Pointer[time.Time]       // when the files were last stat'ed

	// mu serializes loads. Handshakes only TryLock it, so they never wait
	// for a load; Reload waits.
	mu      sync.Mutex
	seen    pairStamp // the files last read, whether they parsed or not
	lastErr string    // the failure last logged; "" after a success
}

// NewPair loads the pair once. It fails if the configuration is invalid or
// the files are missing, unreadable or not a matching certificate and key.
func NewPair(cfg PairConfig) (*Pair, error) {
	var errs []error
	if cfg.CertFile == "" {
		errs = append(errs, errors.New("cert file: required"))
	}
	if cfg.KeyFile == "" {
		errs = append(errs, errors.New("key file: required"))
	}
	if cfg.CheckInterval < 0 {
		errs = append(errs, errors.New("check interval: must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("tls pair: %w", err)
	}
	p := &Pair{
		certFile: cfg.CertFile,
		keyFile:  cfg.KeyFile,
		interval: cfg.CheckInterval,
		now:      cfg.Now,
		logger:   cfg.Logger,
		readFile: readFile,
	}
	if p.interval == 0 {
		p.interval = DefaultCheckInterval
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	now := p.now()
	p.lastCheck.Store(&now)
	st, err := statPair(p.certFile, p.keyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls pair: %w", err)
	}
	certPEM, keyPEM, err := p.read()
	if err != nil {
		return nil, fmt.Errorf("load tls pair: %w", err)
	}
	cert, err := p.parse(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load tls pair: %w", err)
	}
	p.seen = st
	p.cur.Store(cert)
	p.logLoaded(cert)
	return p, nil
}

// GetCertificate returns the current pair; use it as
// tls.Config.GetCertificate. It never fails: a reload failure keeps the
// last good pair.
func (p *Pair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return p.current(), nil
}

// GetClientCertificate returns the current pair; use it as
// tls.Config.GetClientCertificate.
func (p *Pair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return p.current(), nil
}

// NotAfter returns the expiry of the current leaf certificate. It looks for
// a changed file like a handshake does, so that an idle listener's metric
// still follows a rotation.
func (p *Pair) NotAfter() time.Time {
	return p.current().Leaf.NotAfter
}

// Reload reads both files now, whether they changed or not, and installs
// them if they are a good pair. On failure the current pair keeps serving;
// the error is returned and logged as an automatic check would log it.
func (p *Pair) Reload() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.lastCheck.Store(&now)
	return p.reloadLocked(true)
}

// current returns the pair to serve, after checking the files if one
// CheckInterval has passed since the last check and no load is running.
func (p *Pair) current() *tls.Certificate {
	if p.due(p.now()) && p.mu.TryLock() {
		// Another goroutine may have checked between due and TryLock.
		if now := p.now(); p.due(now) {
			p.lastCheck.Store(&now)
			_ = p.reloadLocked(false) // logged; the last good pair stays
		}
		p.mu.Unlock()
	}
	return p.cur.Load()
}

// due reports whether the files should be checked at now. A clock that went
// backwards counts as due, so that a check is never postponed by it.
func (p *Pair) due(now time.Time) bool {
	last := *p.lastCheck.Load()
	return now.Sub(last) >= p.interval || now.Before(last)
}

// reloadLocked loads the pair if its files changed since they were last
// read, or if force is set, and installs it if it is good. p.mu is held.
func (p *Pair) reloadLocked(force bool) error {
	st, err := statPair(p.certFile, p.keyFile)
	if err != nil {
		return p.fail(fmt.Errorf("reload tls pair: %w", err))
	}
	if st == p.seen && !force {
		return nil
	}
	certPEM, keyPEM, err := p.read()
	if err != nil {
		// Not recorded as seen: a read error may be transient.
		return p.fail(fmt.Errorf("reload tls pair: %w", err))
	}
	// The stamp was taken before the reads, so a file that changed while it
	// was read is read again at the next check. Bad files are recorded too,
	// so that they are parsed and reported once, not on every check.
	p.seen = st
	cert, err := p.parse(certPEM, keyPEM)
	if err != nil {
		return p.fail(fmt.Errorf("reload tls pair: %w", err))
	}
	now, old := p.now(), p.cur.Load()
	if now.After(cert.Leaf.NotAfter) && !now.After(old.Leaf.NotAfter) {
		return p.fail(fmt.Errorf("reload tls pair: %s: %w at %s",
			p.certFile, ErrExpired, cert.Leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	p.cur.Store(cert)
	p.lastErr = ""
	p.logLoaded(cert)
	return nil
}

// logLoaded logs the installation of cert: its identity, never its key.
// An expired certificate is still installed (at start, or replacing an
// expired one), with a warning.
func (p *Pair) logLoaded(cert *tls.Certificate) {
	level, msg := slog.LevelInfo, "tls certificate loaded"
	if p.now().After(cert.Leaf.NotAfter) {
		level, msg = slog.LevelWarn, "tls certificate loaded, but it has expired"
	}
	p.logger.LogAttrs(context.Background(), level, msg,
		slog.String("cert_file", p.certFile),
		slog.String("serial", cert.Leaf.SerialNumber.Text(16)),
		slog.Time("not_after", cert.Leaf.NotAfter))
}

// read reads both files.
func (p *Pair) read() (certPEM, keyPEM []byte, err error) {
	certPEM, err = p.readFile(p.certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate file: %w", err)
	}
	keyPEM, err = p.readFile(p.keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("key file: %w", err)
	}
	return certPEM, keyPEM, nil
}

// parse parses the pair read from the files.
func (p *Pair) parse(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	cert, err := parsePair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("parse %s and %s: %w", p.certFile, p.keyFile, err)
	}
	return cert, nil
}

// fail logs err unless it is the failure last logged for the same files,
// and returns it. p.mu is held.
func (p *Pair) fail(err error) error {
	key := fmt.Sprintf("%v %v", err, p.seen)
	if key == p.lastErr {
		return err
	}
	p.lastErr = key
	cur := p.cur.Load()
	p.logger.Error("tls certificate reload failed; keeping the current certificate",
		slog.String("cert_file", p.certFile),
		slog.String("key_file", p.keyFile),
		slog.String("serial", cur.Leaf.SerialNumber.Text(16)),
		slog.Any("error", err))
	return err
}
