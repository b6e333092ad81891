package testissuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// family names a kind of key; each algorithm signs with one family.
type family string

const (
	famRSA  family = "RSA"     // RS256/384/512, PS256/384/512
	famP256 family = "P-256"   // ES256
	famP384 family = "P-384"   // ES384
	famP521 family = "P-521"   // ES512
	famEd   family = "Ed25519" // EdDSA
)

var families = []family{famRSA, famP256, famP384, famP521, famEd}

// familyOf returns the key family for alg, or "" for none/HS* and unknown.
func familyOf(alg string) family {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return famRSA
	case "ES256":
		return famP256
	case "ES384":
		return famP384
	case "ES512":
		return famP521
	case "EdDSA":
		return famEd
	}
	return ""
}

// signingKey is one key pair of the issuer.
type signingKey struct {
	kid  string
	fam  family
	priv crypto.Signer
	pool int // index in the RSA pool, -1 otherwise
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newKey makes a key of family f; RSA keys come from the pool, avoiding
// the indices in used (see rsapool.go).
func newKey(f family, used map[int]bool, unique bool) *signingKey {
	k := &signingKey{kid: string(f) + "-" + randomHex(4), fam: f, pool: -1}
	var err error
	switch f {
	case famRSA:
		if unique {
			k.priv = freshRSA()
		} else {
			k.pool, k.priv = poolRSA(used)
		}
	case famP256:
		k.priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case famP384:
		k.priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case famP521:
		k.priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case famEd:
		_, k.priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		panic(fmt.Sprintf("testissuer: no key family %q", f))
	}
	if err != nil {
		panic("testissuer: generate key: " + err.Error())
	}
	return k
}

// signer returns what golang-jwt's Sign expects for this key.
func (k *signingKey) signer() any {
	if ed, ok := k.priv.(ed25519.PrivateKey); ok {
		return ed
	}
	return k.priv
}

// jwk renders the public key as a JWK with use "sig". RSA keys carry no
// "alg" (they serve RS* and PS*); the others carry their one algorithm.
func (k *signingKey) jwk() map[string]any {
	enc := base64.RawURLEncoding.EncodeToString
	m := map[string]any{"kid": k.kid, "use": "sig"}
	switch pub := k.priv.Public().(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = enc(pub.N.Bytes())
		m["e"] = enc(bigEndian(pub.E))
	case *ecdsa.PublicKey:
		size := (pub.Curve.Params().BitSize + 7) / 8
		raw, _ := pub.Bytes() // 0x04 || X || Y
		m["kty"], m["crv"] = "EC", pub.Curve.Params().Name
		m["x"], m["y"] = enc(raw[1:1+size]), enc(raw[1+size:])
		m["alg"] = map[family]string{famP256: "ES256", famP384: "ES384", famP521: "ES512"}[k.fam]
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"], m["alg"] = "OKP", "Ed25519", enc(pub), "EdDSA"
	}
	return m
}

func bigEndian(e int) []byte {
	var b []byte
	for ; e > 0; e >>= 8 {
		b = append([]byte{byte(e)}, b...)
	}
	return b
}
