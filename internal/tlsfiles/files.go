package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
)

// maxFileBytes bounds every file read, so a path pointing at a huge file
// cannot exhaust memory.
const maxFileBytes = 1 << 20

// stamp identifies one version of a file without reading it. Fields the
// platform cannot provide stay zero.
type stamp struct {
	size  int64
	mtime int64 // Unix nanoseconds
	ino   uint64
	dev   uint64
	ctime int64 // Unix nanoseconds; Linux only
}

// pairStamp identifies one version of a certificate/key pair.
type pairStamp struct{ cert, key stamp }

// statFile stats name, following symlinks, and returns its stamp.
func statFile(name string) (stamp, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return stamp{}, err
	}
	if !fi.Mode().IsRegular() {
		return stamp{}, fmt.Errorf("%s: %w", name, ErrNotRegular)
	}
	s := stamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	sysStamp(fi, &s)
	return s, nil
}

// statPair stats both files of a pair.
func statPair(certFile, keyFile string) (pairStamp, error) {
	c, err := statFile(certFile)
	if err != nil {
		return pairStamp{}, fmt.Errorf("certificate file: %w", err)
	}
	k, err := statFile(keyFile)
	if err != nil {
		return pairStamp{}, fmt.Errorf("key file: %w", err)
	}
	return pairStamp{cert: c, key: k}, nil
}

// readFile reads a regular file of at most maxFileBytes.
func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w", name, ErrNotRegular)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("%s: %w", name, ErrTooLarge)
	}
	return b, nil
}

// parsePair parses a PEM certificate chain and its private key. It checks
// that the key matches the leaf and that every certificate of the chain
// parses, and returns a certificate whose Leaf is set. Its errors never
// contain key material.
func parsePair(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	for i, der := range c.Certificate {
		if i == 0 && c.Leaf != nil {
			continue
		}
		x, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("certificate %d of the chain: %w", i, err)
		}
		if i == 0 {
			c.Leaf = x // only when GODEBUG=x509keypairleaf=0
		}
	}
	return &c, nil
}

// parseCABundle parses a PEM bundle of CA certificates. Text between PEM
// blocks (comments, as in ca-bundle.crt) is ignored; a block of another type
// or a certificate that does not parse is an error, and so is a bundle with
// no certificate.
func parseCABundle(data []byte) (*x509.CertPool, int, error) {
	pool := x509.NewCertPool()
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			// The type only: the block may be a key and must not be echoed.
			return nil, 0, fmt.Errorf("block %d: unexpected PEM block type %q", n+1, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, 0, fmt.Errorf("block %d: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, 0, ErrNoCertificates
	}
	return pool, n, nil
}
