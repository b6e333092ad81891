package tlsfiles

import (
	"bytes"
	"testing"
)

// Seeds are generated at run time: nothing key-like is committed.

func FuzzParseCABundle(f *testing.F) {
	ca := newCA(f, "fuzz ca")
	_, key := ca.issue(f, leafOpts{serial: 1})
	f.Add(ca.pem)
	f.Add(append([]byte("# comment\n"), append(bytes.Clone(ca.pem), ca.pem...)...))
	f.Add(ca.cert.Raw)
	f.Add(key)
	f.Add(pemBlock("CERTIFICATE", []byte{0x30, 0x00}))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, n, err := parseCABundle(data)
		if err != nil {
			if p != nil || n != 0 {
				t.Fatalf("error %v with a pool of %d", err, n)
			}
			return
		}
		if n == 0 || p == nil {
			t.Fatalf("no error and %d certificates", n)
		}
	})
}

func FuzzParsePair(f *testing.F) {
	ca := newCA(f, "fuzz ca")
	c1, k1 := ca.issue(f, leafOpts{serial: 1})
	_, k2 := ca.issue(f, leafOpts{serial: 2, ecdsa: true})
	f.Add(c1, k1)
	f.Add(c1, k2)
	f.Add(k1, c1)
	f.Add(append(bytes.Clone(c1), ca.pem...), k1)
	f.Add(append(bytes.Clone(c1), pemBlock("CERTIFICATE", []byte{0x30, 0x00})...), k1)
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		c, err := parsePair(certPEM, keyPEM)
		if err != nil {
			if c != nil {
				t.Fatal("certificate with an error")
			}
			if bytes.Contains([]byte(err.Error()), []byte("PRIVATE KEY-----")) {
				t.Fatalf("error carries PEM: %v", err)
			}
			return
		}
		if c.Leaf == nil || len(c.Certificate) == 0 || c.PrivateKey == nil {
			t.Fatalf("incomplete certificate %+v", c)
		}
		if !bytes.Equal(c.Leaf.Raw, c.Certificate[0]) {
			t.Fatal("Leaf is not the first certificate")
		}
	})
}
