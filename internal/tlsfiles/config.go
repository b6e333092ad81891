package tlsfiles

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ServerConfig returns the listener's tls.Config: certificates from p
// (through GetCertificate, so rotation applies to every new handshake),
// ALPN for h2 and HTTP/1.1, and minVersion as the lowest protocol version.
// A minVersion below TLS 1.2 (0 included) means TLS 1.2; pass
// tls.VersionTLS13 to require 1.3. Each call returns a new Config.
//
// Certificates is left empty on purpose: crypto/tls prefers it to
// GetCertificate when a client sends no server name.
func ServerConfig(p *Pair, minVersion uint16) *tls.Config {
	if p == nil {
		panic("tlsfiles: ServerConfig with a nil Pair")
	}
	if minVersion < tls.VersionTLS12 {
		minVersion = tls.VersionTLS12
	}
	return &tls.Config{
		MinVersion:     minVersion,
		GetCertificate: p.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// ClientConfigOptions configures TLS from mcpgate to one upstream.
type ClientConfigOptions struct {
	// CAFile is a PEM bundle of the CAs trusted to sign the upstream's
	// certificate. When set it replaces the system roots (pinning); it is
	// read once, by ClientConfig. Default "": the system roots.
	CAFile string
	// CertFile and KeyFile are a client certificate and its key for mutual
	// TLS, reloaded when they change like a listener's [Pair]. Both or
	// neither. Default "": no client certificate.
	CertFile, KeyFile string
	// ServerName overrides the name verified in the upstream's certificate
	// (and sent as SNI). Default "": the host of the upstream URL, which
	// net/http fills in.
	ServerName string
}

// ClientConfig returns the tls.Config for an upstream: TLS 1.2 at least,
// verification against the pinned CA bundle or the system roots, and the
// client certificate if one is configured. It never disables verification.
// NextProtos is left to the transport, which adds h2 when it enables it.
// logger (nil → discard) receives the client certificate's reloads.
func ClientConfig(opts ClientConfigOptions, logger *slog.Logger) (*tls.Config, error) {
	return clientConfig(opts, logger, nil)
}

// clientConfig is ClientConfig with the client certificate's clock.
func clientConfig(opts ClientConfigOptions, logger *slog.Logger, now func() time.Time) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: opts.ServerName,
	}
	var errs []error
	if opts.CAFile != "" {
		b, err := readFile(opts.CAFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("ca file: %w", err))
		} else if cfg.RootCAs, _, err = parseCABundle(b); err != nil {
			errs = append(errs, fmt.Errorf("ca file %s: %w", opts.CAFile, err))
		}
	}
	switch {
	case (opts.CertFile == "") != (opts.KeyFile == ""):
		errs = append(errs, fmt.Errorf("client certificate: %w", ErrIncompletePair))
	case opts.CertFile != "":
		p, err := NewPair(PairConfig{CertFile: opts.CertFile, KeyFile: opts.KeyFile, Now: now, Logger: logger})
		if err != nil {
			errs = append(errs, fmt.Errorf("client certificate: %w", err))
		} else {
			cfg.GetClientCertificate = p.GetClientCertificate
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("upstream tls: %w", err)
	}
	return cfg, nil
}
