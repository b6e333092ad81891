package credential

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// keysClock is a manual clock shared by a KeySet and its Minters.
type keysClock struct {
	mu sync.Mutex
	t  time.Time
}

func newKeysClock() *keysClock {
	return &keysClock{t: time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)}
}

func (c *keysClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *keysClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *keysClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Key fixtures are generated at run time; nothing key-like is committed.

func keysNewP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keysNewEd25519(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keysPEM encodes key as a PEM block of the given type ("PRIVATE KEY" is
// PKCS#8, "EC PRIVATE KEY" SEC1, "RSA PRIVATE KEY" PKCS#1).
func keysPEM(t testing.TB, blockType string, key any) []byte {
	t.Helper()
	var der []byte
	var err error
	switch blockType {
	case "PRIVATE KEY":
		der, err = x509.MarshalPKCS8PrivateKey(key)
	case "EC PRIVATE KEY":
		der, err = x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	case "RSA PRIVATE KEY":
		der = x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))
	case "PUBLIC KEY":
		der, err = x509.MarshalPKIXPublicKey(key)
	default:
		t.Fatalf("keysPEM: unknown type %q", blockType)
	}
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
}

// keysWrite writes a key file with mode 0600 and returns its path.
func keysWrite(t testing.TB, dir, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// keysPEMBody returns a stretch of a PEM file's base64 body, to check that
// no error or output repeats it.
func keysPEMBody(p []byte) string {
	lines := strings.Split(string(p), "\n")
	if len(lines) < 2 || len(lines[1]) < 16 {
		return "\x00no body\x00"
	}
	return lines[1][:16]
}

// keysParsedJWKS is a JWKS parsed back, independently, with go-jose.
type keysParsedJWKS struct {
	kids []string
	keys map[string]crypto.PublicKey
}

// keysParseJWKS parses and checks a JWKS document: exactly the public
// members, a use of "sig", the configured alg, and (for thumbprint kids)
// a kid equal to the RFC 7638 thumbprint as go-jose computes it.
func keysParseJWKS(t testing.TB, doc []byte, alg string) keysParsedJWKS {
	t.Helper()
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		t.Fatalf("JWKS is not JSON: %v", err)
	}
	for _, k := range raw.Keys {
		var members []string
		for m := range k {
			members = append(members, m)
		}
		slices.Sort(members)
		want := []string{"alg", "crv", "kid", "kty", "use", "x", "y"}
		if k["kty"] == "OKP" {
			want = []string{"alg", "crv", "kid", "kty", "use", "x"}
		}
		if !slices.Equal(members, want) {
			t.Fatalf("JWK members %v, want exactly %v (no private member)", members, want)
		}
		if k["alg"] != alg || k["use"] != "sig" {
			t.Fatalf("JWK alg %v use %v", k["alg"], k["use"])
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatalf("go-jose cannot parse the JWKS: %v", err)
	}
	out := keysParsedJWKS{keys: map[string]crypto.PublicKey{}}
	for _, k := range set.Keys {
		if !k.IsPublic() || !k.Valid() {
			t.Fatalf("JWK %q is not a valid public key", k.KeyID)
		}
		if _, dup := out.keys[k.KeyID]; dup {
			t.Fatalf("kid %q published twice", k.KeyID)
		}
		out.kids = append(out.kids, k.KeyID)
		out.keys[k.KeyID] = k.Key
	}
	return out
}

// thumbprint is the RFC 7638 thumbprint of pub, computed by go-jose.
func keysThumbprint(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// keysVerify verifies tok with the published keys and returns its header
// and claims.
func keysVerify(t testing.TB, ks *KeySet, tok string, now time.Time) (map[string]any, jwt.MapClaims) {
	t.Helper()
	doc, err := ks.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	set := keysParseJWKS(t, doc, ks.Algorithm())
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(tok, claims, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		pub, ok := set.keys[kid]
		if !ok {
			return nil, fmt.Errorf("kid %q is not published", kid)
		}
		return pub, nil
	}, jwt.WithValidMethods([]string{ks.Algorithm()}), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		t.Fatalf("token does not verify with the published JWKS: %v", err)
	}
	return parsed.Header, claims
}

func keysKid(t testing.TB, tok string) string {
	t.Helper()
	hdr, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(hdr)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

func keysSignedKid(t testing.TB, ks *KeySet) string {
	t.Helper()
	tok, err := ks.Sign("", map[string]any{"x": 1})
	if err != nil {
		t.Fatal(err)
	}
	return keysKid(t, tok)
}

func keysPublishedKids(t testing.TB, ks *KeySet) []string {
	t.Helper()
	doc, err := ks.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	return keysParseJWKS(t, doc, ks.Algorithm()).kids
}

func TestKeySetGeneratedRotation(t *testing.T) {
	for _, alg := range []string{AlgES256, AlgEdDSA} {
		t.Run(alg, func(t *testing.T) {
			clk := newKeysClock()
			const every, overlap = 24 * time.Hour, 2 * time.Hour
			var logs bytes.Buffer
			ks, err := NewKeySet(KeysConfig{Algorithm: alg, RotateEvery: every, Overlap: overlap},
				KeyDeps{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if !ks.Generated() || ks.Algorithm() != alg {
				t.Fatalf("Generated %v Algorithm %q", ks.Generated(), ks.Algorithm())
			}
			k0 := keysSignedKid(t, ks)
			start := clk.Now()
			at := func(d time.Duration) { clk.Set(start.Add(d)) }
			check := func(d time.Duration, signer string, published ...string) {
				t.Helper()
				at(d)
				if got := keysSignedKid(t, ks); got != signer {
					t.Fatalf("at %s: signer %q, want %q", d, got, signer)
				}
				if got := keysPublishedKids(t, ks); !slices.Equal(got, published) {
					t.Fatalf("at %s: published %q, want %q", d, got, published)
				}
			}
			check(0, k0, k0)
			check(every-overlap-time.Nanosecond, k0, k0)
			// The next key is published overlap before it signs.
			at(every - overlap)
			pub := keysPublishedKids(t, ks)
			if len(pub) != 2 || pub[0] != k0 {
				t.Fatalf("at every-overlap: published %q, want the signer then the next key", pub)
			}
			k1 := pub[1]
			check(every-overlap, k0, k0, k1)
			check(every-time.Nanosecond, k0, k0, k1)
			// It signs after every; the old key stays published overlap.
			check(every, k1, k1, k0)
			check(every+overlap-time.Nanosecond, k1, k1, k0)
			check(every+overlap, k1, k1)
			// The clock going back does not undo a rotation.
			check(every-time.Hour, k1, k1)

			at(2*every - overlap)
			k2 := keysPublishedKids(t, ks)[1]
			check(2*every, k2, k2, k1)
			if len(map[string]bool{k0: true, k1: true, k2: true}) != 3 {
				t.Fatal("rotation reused a key")
			}

			// After a long idle time, only the keys needed now exist.
			at(10*every + time.Hour)
			k10 := keysSignedKid(t, ks)
			if k10 == k2 || k10 == k1 {
				t.Fatal("an idle key set kept signing with an old key")
			}
			check(10*every+time.Hour, k10, k10)
			if !strings.Contains(logs.String(), "signing key changed") || !strings.Contains(logs.String(), k1) {
				t.Fatalf("rotation not logged:\n%s", logs.String())
			}
		})
	}
}

func TestKeySetGeneratedOverlapLongerThanPeriod(t *testing.T) {
	clk := newKeysClock()
	ks, err := NewKeySet(KeysConfig{RotateEvery: time.Hour, Overlap: 150 * time.Minute}, KeyDeps{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	first := keysPublishedKids(t, ks)
	if len(first) != 3 { // signing key 0; keys 1 and 2 already due
		t.Fatalf("published %d keys at start, want 3", len(first))
	}
	for h := 1; h <= 5; h++ {
		clk.Advance(time.Hour)
		signer := keysSignedKid(t, ks)
		pub := keysPublishedKids(t, ks)
		if pub[0] != signer {
			t.Fatalf("hour %d: the signer %q is not published first in %q", h, signer, pub)
		}
		// Key i is published during [i·1h−2.5h, (i+1)·1h+2.5h).
		if want := min(h, 3) + 3; len(pub) != want {
			t.Fatalf("hour %d: %d keys published, want %d", h, len(pub), want)
		}
	}
}

func TestKeySetFiles(t *testing.T) {
	for _, tc := range []struct {
		alg     string
		newKey  func(testing.TB) crypto.Signer
		formats []string
	}{
		{AlgES256, func(t testing.TB) crypto.Signer { return keysNewP256(t) }, []string{"PRIVATE KEY", "EC PRIVATE KEY"}},
		{AlgEdDSA, func(t testing.TB) crypto.Signer { return keysNewEd25519(t) }, []string{"PRIVATE KEY"}},
	} {
		for _, format := range tc.formats {
			t.Run(tc.alg+" "+format, func(t *testing.T) {
				dir := t.TempDir()
				clk := newKeysClock()
				a, b := tc.newKey(t), tc.newKey(t)
				pa := keysWrite(t, dir, "a.pem", keysPEM(t, format, a))
				pb := keysWrite(t, dir, "b.pem", keysPEM(t, format, b))
				var logs bytes.Buffer
				ks, err := NewKeySet(KeysConfig{Algorithm: tc.alg, Files: []KeyFile{{File: pa}, {ID: "next-key", File: pb}}},
					KeyDeps{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				if err != nil {
					t.Fatal(err)
				}
				if ks.Generated() {
					t.Fatal("file key set reports generated keys")
				}
				kidA := keysThumbprint(t, a.Public())
				if got := keysPublishedKids(t, ks); !slices.Equal(got, []string{kidA, "next-key"}) {
					t.Fatalf("published %q, want [thumbprint next-key]", got)
				}
				now := clk.Now()
				tok, err := ks.Sign("at+jwt", map[string]any{"sub": "u", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
				if err != nil {
					t.Fatal(err)
				}
				hdr, claims := keysVerify(t, ks, tok, clk.Now())
				if hdr["kid"] != kidA || hdr["typ"] != "at+jwt" || hdr["alg"] != tc.alg || claims["sub"] != "u" {
					t.Fatalf("header %v claims %v", hdr, claims)
				}

				// Rotation without restart: the first file now holds c.
				c := tc.newKey(t)
				keysWrite(t, dir, "a.pem", keysPEM(t, format, c))
				if got := keysSignedKid(t, ks); got != kidA {
					t.Fatalf("re-read before the watch interval: %q", got)
				}
				clk.Advance(time.Second)
				kidC := keysThumbprint(t, c.Public())
				if got := keysSignedKid(t, ks); got != kidC {
					t.Fatalf("after rewriting the first file, signer %q, want %q", got, kidC)
				}
				if got := keysPublishedKids(t, ks); !slices.Equal(got, []string{kidC, "next-key"}) {
					t.Fatalf("published %q", got)
				}
				if !strings.Contains(logs.String(), "signing key file reloaded") {
					t.Fatalf("reload not logged:\n%s", logs.String())
				}
				for _, p := range [][]byte{keysPEM(t, format, a), keysPEM(t, format, b), keysPEM(t, format, c)} {
					if strings.Contains(logs.String(), keysPEMBody(p)) {
						t.Fatal("a private key reached the logs")
					}
				}
			})
		}
	}
}

func TestKeySetFileFailsClosedAndRecovers(t *testing.T) {
	dir := t.TempDir()
	clk := newKeysClock()
	key := keysPEM(t, "PRIVATE KEY", keysNewP256(t))
	p := keysWrite(t, dir, "k.pem", key)
	next := keysWrite(t, dir, "n.pem", keysPEM(t, "PRIVATE KEY", keysNewP256(t)))
	var logs bytes.Buffer
	ks, err := NewKeySet(KeysConfig{Files: []KeyFile{{File: p}, {File: next}}},
		KeyDeps{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	kid := keysSignedKid(t, ks)
	srv := ks.Handler()

	for _, tc := range []struct {
		name     string
		file     string
		breakIt  func()
		fix      func()
		signFail bool
	}{
		{"signing key world readable", p, func() { chmodT(t, p, 0o644) }, func() { chmodT(t, p, 0o600) }, true},
		{"signing key garbage", p, func() { keysWrite(t, dir, "k.pem", []byte("not a key")) }, func() { keysWrite(t, dir, "k.pem", key) }, true},
		{"published key removed", next, func() { mustRename(t, next, next+".bak") }, func() { mustRename(t, next+".bak", next) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.breakIt()
			clk.Advance(time.Second)
			_, err := ks.Sign("", map[string]int{})
			if tc.signFail {
				if err == nil {
					t.Fatal("signed with a broken key file")
				}
				if strings.Contains(err.Error(), keysPEMBody(key)) {
					t.Fatal("error leaks the key")
				}
			} else if err != nil {
				t.Fatalf("the signing key is fine, but Sign failed: %v", err)
			}
			if _, err := ks.JWKS(); err == nil || !strings.Contains(err.Error(), tc.file) {
				t.Fatalf("JWKS() err = %v, want it to name %s", err, tc.file)
			}
			rec := keysServe(srv, "GET")
			if rec.code != 503 || strings.Contains(rec.body, tc.file) || rec.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("broken key: %d %q %v", rec.code, rec.body, rec.header)
			}
			tc.fix()
			clk.Advance(time.Second)
			if got := keysSignedKid(t, ks); got != kid {
				t.Fatalf("after the fix, signer %q, want %q", got, kid)
			}
			if rec := keysServe(srv, "GET"); rec.code != 200 {
				t.Fatalf("after the fix: %d", rec.code)
			}
		})
	}
	if strings.Contains(logs.String(), keysPEMBody(key)) {
		t.Fatal("a private key reached the logs")
	}
}

func chmodT(t *testing.T, p string, m os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, m); err != nil {
		t.Fatal(err)
	}
}

func mustRename(t *testing.T, a, b string) {
	t.Helper()
	if err := os.Rename(a, b); err != nil {
		t.Fatal(err)
	}
}

func TestKeySetRefusesBadKeys(t *testing.T) {
	dir := t.TempDir()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p256 := keysNewP256(t)
	ed := keysNewEd25519(t)
	two := append(keysPEM(t, "PRIVATE KEY", p256), keysPEM(t, "PRIVATE KEY", keysNewP256(t))...)
	withParams := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}}),
		keysPEM(t, "EC PRIVATE KEY", p256)...)
	corrupt := keysPEM(t, "PRIVATE KEY", p256)
	corrupt = bytes.Replace(corrupt, []byte("\n"), []byte("\nAAAA"), 2)

	for _, tc := range []struct {
		name    string
		alg     string
		content []byte
		mode    os.FileMode
		wantErr string // "" → accepted
	}{
		{"p256 pkcs8", AlgES256, keysPEM(t, "PRIVATE KEY", p256), 0o600, ""},
		{"p256 sec1 with ec parameters", AlgES256, withParams, 0o400, ""},
		{"ed25519 pkcs8", AlgEdDSA, keysPEM(t, "PRIVATE KEY", ed), 0o440, ""},
		{"rsa pkcs8", AlgES256, keysPEM(t, "PRIVATE KEY", rsaKey), 0o600, "holds an RSA key"},
		{"rsa pkcs1", AlgES256, keysPEM(t, "RSA PRIVATE KEY", rsaKey), 0o600, "holds an RSA key"},
		{"p384 pkcs8", AlgES256, keysPEM(t, "PRIVATE KEY", p384), 0o600, "holds an ECDSA P-384 key; the algorithm ES256 needs a P-256 key"},
		{"p384 sec1", AlgES256, keysPEM(t, "EC PRIVATE KEY", p384), 0o600, "P-384"},
		{"ed25519 for ES256", AlgES256, keysPEM(t, "PRIVATE KEY", ed), 0o600, "holds an Ed25519 key; the algorithm ES256 needs a P-256 key"},
		{"p256 for EdDSA", AlgEdDSA, keysPEM(t, "PRIVATE KEY", p256), 0o600, "the algorithm EdDSA needs an Ed25519 key"},
		{"public key", AlgES256, keysPEM(t, "PUBLIC KEY", p256.Public()), 0o600, "holds a public key, not a private key"},
		{"encrypted", AlgES256, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}}), 0o600, "encrypted"},
		{"two keys", AlgES256, two, 0o600, "more than one private key"},
		{"not pem", AlgES256, []byte("just some text"), 0o600, "is not a PEM private key"},
		{"corrupt der", AlgES256, corrupt, 0o600, "cannot be parsed"},
		{"world readable", AlgES256, keysPEM(t, "PRIVATE KEY", p256), 0o644, "accessible by other users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := keysWrite(t, dir, strings.ReplaceAll(tc.name, " ", "_")+".pem", tc.content)
			chmodT(t, p, tc.mode)
			ks, err := NewKeySet(KeysConfig{Algorithm: tc.alg, Files: []KeyFile{{File: p}}}, KeyDeps{})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ks.Sign("", struct{}{}); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not name the file", err)
			}
			if bytes.Contains(tc.content, []byte("-----")) && strings.Contains(err.Error(), keysPEMBody(tc.content)) {
				t.Fatal("error leaks the key")
			}
		})
	}
}

func TestKeysConfigValidation(t *testing.T) {
	dir := t.TempDir()
	k := keysWrite(t, dir, "k.pem", keysPEM(t, "PRIVATE KEY", keysNewP256(t)))
	for _, tc := range []struct {
		name string
		cfg  KeysConfig
		want []string
	}{
		{"bad algorithm and small overlap", KeysConfig{Algorithm: "RS256", Overlap: time.Minute},
			[]string{"must be ES256 or EdDSA, not \"RS256\"", "overlap must be at least 5m0s"}},
		{"negative period", KeysConfig{RotateEvery: -time.Hour}, []string{"rotation period must be positive"}},
		{"file path missing, ids", KeysConfig{Files: []KeyFile{{ID: "a", File: k}, {ID: "a", File: k}, {ID: "has space", File: k}, {}}},
			[]string{"id \"a\" is used by another key", "must be 1-128 printable characters", "signing key 3: file is required"}},
		{"same key twice by thumbprint", KeysConfig{Files: []KeyFile{{File: k}, {File: k}}}, []string{"is used by another key"}},
		{"missing file", KeysConfig{Files: []KeyFile{{File: filepath.Join(dir, "absent")}}}, []string{"no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewKeySet(tc.cfg, KeyDeps{})
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestKeySetSignHeaderAndPayload(t *testing.T) {
	ks, err := NewKeySet(KeysConfig{Algorithm: AlgEdDSA}, KeyDeps{})
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"", "at+jwt", "JWT"} {
		tok, err := ks.Sign(typ, map[string]string{"iss": "x", "exp": "y"})
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("%d parts", len(parts))
		}
		h, _ := base64.RawURLEncoding.DecodeString(parts[0])
		var hdr map[string]string
		if err := json.Unmarshal(h, &hdr); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"alg": "EdDSA", "kid": keysSignedKid(t, ks)}
		if typ != "" {
			want["typ"] = typ
		}
		if fmt.Sprint(hdr) != fmt.Sprint(want) {
			t.Fatalf("header %v, want %v", hdr, want)
		}
		// The signature verifies (without claim validation: exp is a string).
		set := keysParseJWKS(t, must(ks.JWKS()), AlgEdDSA)
		if err := jwt.SigningMethodEdDSA.Verify(parts[0]+"."+parts[1], mustB64(t, parts[2]), set.keys[hdr["kid"]]); err != nil {
			t.Fatalf("signature: %v", err)
		}
	}
	if _, err := ks.Sign("", func() {}); err == nil {
		t.Fatal("signed unmarshalable claims")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeySetConcurrentRotation(t *testing.T) {
	clk := newKeysClock()
	ks, err := NewKeySet(KeysConfig{RotateEvery: time.Hour, Overlap: 10 * time.Minute}, KeyDeps{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if _, err := ks.Sign("", 1); err != nil {
					t.Error(err)
					return
				}
				if _, err := ks.JWKS(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 100 {
		clk.Advance(7 * time.Minute)
	}
	wg.Wait()
	tok, err := ks.Sign("", map[string]int64{"exp": clk.Now().Add(time.Minute).Unix(), "iat": clk.Now().Unix()})
	if err != nil {
		t.Fatal(err)
	}
	keysVerify(t, ks, tok, clk.Now())
}

// FuzzParseSigningKey: the PEM key parser never panics, accepts only keys
// of the algorithm's type, and never echoes a PEM body.
func FuzzParseSigningKey(f *testing.F) {
	f.Add(keysPEM(f, "PRIVATE KEY", keysNewP256(f)))
	f.Add(keysPEM(f, "EC PRIVATE KEY", keysNewP256(f)))
	f.Add(keysPEM(f, "PRIVATE KEY", keysNewEd25519(f)))
	f.Add(keysPEM(f, "PUBLIC KEY", keysNewEd25519(f).Public()))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, alg := range []string{AlgES256, AlgEdDSA} {
			k, err := parseSigningKey(data, alg)
			if err != nil {
				if k != nil {
					t.Fatal("key with an error")
				}
				for b, rest := pem.Decode(data); b != nil; b, rest = pem.Decode(rest) {
					if enc := base64.StdEncoding.EncodeToString(b.Bytes); len(enc) >= 16 && strings.Contains(err.Error(), enc[:16]) {
						t.Fatalf("error %q echoes the PEM body", err)
					}
				}
				continue
			}
			switch key := k.(type) {
			case *ecdsa.PrivateKey:
				if alg != AlgES256 || key.Curve != elliptic.P256() {
					t.Fatalf("accepted %T for %s", k, alg)
				}
			case ed25519.PrivateKey:
				if alg != AlgEdDSA {
					t.Fatalf("accepted Ed25519 for %s", alg)
				}
			default:
				t.Fatalf("accepted %T", k)
			}
			sk := newSigningKey(alg, "", k)
			if bytes.Contains(sk.jwk, []byte(`"d"`)) {
				t.Fatal("JWK holds a private member")
			}
		}
	})
}

func BenchmarkKeySetSign(b *testing.B) {
	for _, alg := range []string{AlgES256, AlgEdDSA} {
		b.Run(alg, func(b *testing.B) {
			ks, err := NewKeySet(KeysConfig{Algorithm: alg}, KeyDeps{})
			if err != nil {
				b.Fatal(err)
			}
			payload := []byte(`{"sub":"user","aud":"x"}`)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ks.signPayload("at+jwt", payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
