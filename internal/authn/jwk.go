// This file implements JSON Web Key (Set) parsing for signature verification
// per RFC 7517 and RFC 7518 §6 (RSA, EC) and RFC 8037 (OKP/Ed25519).
// See https://www.rfc-editor.org/rfc/rfc7517

package authn

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"time"
)

// Bounds on accepted keys.
const (
	minRSABits  = 2048
	maxRSABits  = 8192
	maxJWKSKeys = 100
)

var b64 = base64.RawURLEncoding.Strict()

// verifyKey is one usable public key from a JWKS.
type verifyKey struct {
	kid      string
	alg      string // the JWK "alg", "" when absent
	pub      any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	material string // kty and public components, to recognise the same key across fetches
}

// compatible reports whether k may verify a signature made with alg: the key
// type and curve must fit the algorithm, and a JWK "alg" must equal it.
func (k *verifyKey) compatible(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve == elliptic.P256()
		case "ES384":
			return pub.Curve == elliptic.P384()
		case "ES512":
			return pub.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// keySet is an immutable snapshot of one issuer's keys.
type keySet struct {
	byKID   map[string][]*verifyKey
	noKID   []*verifyKey
	ordered []*verifyKey // keys without kid first, then by kid: the order tried for a token without kid
	n       int
	fetched time.Time // when this set was last confirmed by a successful fetch
}

// maxNoKIDCandidates bounds the signature attempts for a token without kid.
const maxNoKIDCandidates = 4

// lookup returns the keys that may verify a token with this kid and alg.
// kidKnown reports that the kid exists, even if no key under it fits alg.
func (ks *keySet) lookup(kid string, hasKID bool, alg string) (cands []*verifyKey, kidKnown bool) {
	if hasKID {
		keys, ok := ks.byKID[kid]
		for _, k := range keys {
			if k.compatible(alg) {
				cands = append(cands, k)
			}
		}
		return cands, ok
	}
	for _, k := range ks.ordered {
		if k.compatible(alg) {
			cands = append(cands, k)
			if len(cands) == maxNoKIDCandidates {
				break
			}
		}
	}
	return cands, false
}

// contains reports whether k (by identity) is still in the set.
func (ks *keySet) contains(k *verifyKey) bool {
	list := ks.noKID
	if k.kid != "" {
		list = ks.byKID[k.kid]
	}
	for _, x := range list {
		if x == k {
			return true
		}
	}
	return false
}

// parseJWKS builds a key set from a JWKS document. Keys that cannot be used
// for signature verification are skipped and reported; a set with no
// usable key is an error. Keys identical to one in prev keep their identity,
// so cached tokens verified with them stay valid.
func parseJWKS(data []byte, prev *keySet) (*keySet, []error, error) {
	doc, err := parseObject(data)
	if err != nil {
		return nil, nil, fmt.Errorf("jwks: %w", err)
	}
	raw, ok := doc.get("keys")
	if !ok {
		return nil, nil, errors.New("jwks: no keys member")
	}
	var rawKeys []json.RawMessage
	if err := json.Unmarshal(raw, &rawKeys); err != nil {
		return nil, nil, errors.New("jwks: keys is not an array")
	}
	if len(rawKeys) > maxJWKSKeys {
		return nil, nil, fmt.Errorf("jwks: more than %d keys", maxJWKSKeys)
	}
	ks := &keySet{byKID: map[string][]*verifyKey{}}
	var skipped []error
	for i, rk := range rawKeys {
		k, err := parseJWK(rk)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		if old := prev.same(k); old != nil {
			k = old
		}
		if k.kid == "" {
			ks.noKID = append(ks.noKID, k)
		} else {
			ks.byKID[k.kid] = append(ks.byKID[k.kid], k)
		}
		ks.n++
	}
	ks.ordered = append(ks.ordered, ks.noKID...)
	for _, kid := range slices.Sorted(maps.Keys(ks.byKID)) {
		ks.ordered = append(ks.ordered, ks.byKID[kid]...)
	}
	if ks.n == 0 {
		return nil, skipped, errors.Join(append([]error{errors.New("jwks: no usable signing key")}, skipped...)...)
	}
	return ks, skipped, nil
}

// same returns the key in ks equal to k, if any.
func (ks *keySet) same(k *verifyKey) *verifyKey {
	if ks == nil {
		return nil
	}
	list := ks.noKID
	if k.kid != "" {
		list = ks.byKID[k.kid]
	}
	for _, x := range list {
		if x.alg == k.alg && x.material == k.material {
			return x
		}
	}
	return nil
}

// parseJWK converts one JWK into a verification key, enforcing: use "sig"
// (when present), key_ops containing "verify" (when present), a supported
// "alg" (when present), RSA of 2048–8192 bits with a sane exponent, EC on
// P-256/384/521 with an on-curve point, Ed25519.
func parseJWK(raw []byte) (*verifyKey, error) {
	o, err := parseObject(raw)
	if err != nil {
		return nil, err
	}
	str := func(name string) (string, bool, error) {
		v, ok := o.get(name)
		if !ok {
			return "", false, nil
		}
		s, ok := jsonString(v)
		if !ok {
			return "", true, fmt.Errorf("%s is not a string", name)
		}
		return s, true, nil
	}
	kty, _, err := str("kty")
	if err != nil {
		return nil, err
	}
	kid, _, err := str("kid")
	if err != nil {
		return nil, err
	}
	if use, ok, err := str("use"); err != nil || (ok && use != "sig") {
		return nil, fmt.Errorf("use is not sig")
	}
	if ops, ok := o.get("key_ops"); ok {
		list, ok := jsonStrings(ops)
		if !ok || !slices.Contains(list, "verify") {
			return nil, fmt.Errorf("key_ops lacks verify")
		}
	}
	alg, hasAlg, err := str("alg")
	if err != nil {
		return nil, err
	}
	if hasAlg && !supportedAlgs[alg] {
		return nil, fmt.Errorf("alg %q not supported", alg)
	}
	bytesOf := func(name string) ([]byte, error) {
		s, ok, err := str(name)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("missing %s", name)
		}
		b, err := b64.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, errBase64)
		}
		return b, nil
	}
	k := &verifyKey{kid: kid, alg: alg}
	switch kty {
	case "RSA":
		n, err := bytesOf("n")
		if err != nil {
			return nil, err
		}
		e, err := bytesOf("e")
		if err != nil {
			return nil, err
		}
		pub, err := rsaKey(n, e)
		if err != nil {
			return nil, err
		}
		k.pub, k.material = pub, "RSA:"+string(n)+":"+string(e)
	case "EC":
		crv, _, err := str("crv")
		if err != nil {
			return nil, err
		}
		x, err := bytesOf("x")
		if err != nil {
			return nil, err
		}
		y, err := bytesOf("y")
		if err != nil {
			return nil, err
		}
		pub, err := ecKey(crv, x, y)
		if err != nil {
			return nil, err
		}
		k.pub, k.material = pub, "EC:"+crv+":"+string(x)+string(y)
	case "OKP":
		crv, _, err := str("crv")
		if err != nil {
			return nil, err
		}
		if crv != "Ed25519" {
			return nil, fmt.Errorf("OKP curve %q not supported", crv)
		}
		x, err := bytesOf("x")
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, errors.New("Ed25519 key has the wrong length")
		}
		k.pub, k.material = ed25519.PublicKey(x), "OKP:"+string(x)
	default:
		return nil, fmt.Errorf("kty %q not supported", kty)
	}
	if hasAlg && !k.compatible(alg) {
		return nil, fmt.Errorf("alg %s does not fit the key", alg)
	}
	return k, nil
}

func rsaKey(n, e []byte) (*rsa.PublicKey, error) {
	if len(n) == 0 || n[0] == 0 {
		return nil, errors.New("rsa modulus has leading zeros")
	}
	bits := new(big.Int).SetBytes(n).BitLen()
	if bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("rsa key of %d bits", bits)
	}
	if len(e) == 0 || len(e) > 4 || e[0] == 0 {
		return nil, errors.New("rsa exponent out of range")
	}
	exp := 0
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	if exp < 3 || exp > 1<<31-1 || exp%2 == 0 {
		return nil, errors.New("rsa exponent out of range")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}, nil
}

func ecKey(crv string, x, y []byte) (*ecdsa.PublicKey, error) {
	var c elliptic.Curve
	switch crv {
	case "P-256":
		c = elliptic.P256()
	case "P-384":
		c = elliptic.P384()
	case "P-521":
		c = elliptic.P521()
	default:
		return nil, fmt.Errorf("EC curve %q not supported", crv)
	}
	size := (c.Params().BitSize + 7) / 8
	if len(x) != size || len(y) != size {
		return nil, errors.New("EC coordinates have the wrong length")
	}
	pt := make([]byte, 0, 1+2*size)
	pt = append(append(append(pt, 4), x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(c, pt)
	if err != nil {
		return nil, errors.New("EC point not on curve")
	}
	return pub, nil
}
