package credential

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpgate/mcpgate/internal/secret"
)

// Signing algorithms of mcpgate's own tokens.
const (
	AlgES256 = "ES256" // ECDSA with P-256 and SHA-256 (default)
	AlgEdDSA = "EdDSA" // Ed25519
)

// Key defaults.
const (
	// DefaultRotateEvery is the rotation period of generated keys.
	DefaultRotateEvery = 24 * time.Hour
	// DefaultKeyOverlap is how long a generated key is published before it
	// signs and after it stops: the longest mint lifetime (1h) plus the
	// largest clock skew (5m).
	DefaultKeyOverlap = time.Hour + 5*time.Minute
)

// KeyFile is one signing key read from a file.
type KeyFile struct {
	// ID is the key id (kid). Empty: the key's RFC 7638 JWK thumbprint
	// (which changes when the file's key changes).
	ID string
	// File holds a PEM private key: PKCS#8 ("PRIVATE KEY") for P-256 or
	// Ed25519, or SEC1 ("EC PRIVATE KEY") for P-256. It must not be
	// accessible by other users, and it is re-read when it changes.
	File string
}

// KeysConfig configures mcpgate's signing keys.
//
// With Files, the first key signs and every key is published in the JWKS.
// An operator rotates without a restart by adding the next key second
// (published), later moving it first (it signs), and removing the old key
// once the tokens it signed have expired. Several replicas share the same
// files.
//
// Without Files, keys are generated in memory at start and rotated every
// RotateEvery: a key is published Overlap before it starts signing and
// stays published Overlap after it stops. Generated keys suit a single
// replica only: each replica would sign with keys the others do not
// publish.
type KeysConfig struct {
	// Algorithm is AlgES256 (default) or AlgEdDSA. Every key must be of
	// its type.
	Algorithm string
	// Files are the signing key files, the signing one first.
	Files []KeyFile
	// RotateEvery is the rotation period of generated keys (default
	// DefaultRotateEvery). Ignored with Files.
	RotateEvery time.Duration
	// Overlap is the publication overlap of generated keys: at least the
	// longest minted token lifetime plus the clock skew, and at least 5m,
	// the JWKS cache lifetime (default DefaultKeyOverlap). Ignored with
	// Files.
	Overlap time.Duration
	// WatchInterval is how often key files are checked for changes
	// (default secret.DefaultWatchInterval).
	WatchInterval time.Duration
}

// KeyDeps are the KeySet's collaborators. Zero values get defaults.
type KeyDeps struct {
	// Now replaces time.Now (for tests). Minters use the same clock.
	Now func() time.Time
	// Logger receives key reloads and rotations (key ids only). Default:
	// discard.
	Logger *slog.Logger
}

// KeySet holds mcpgate's signing keys: the one that signs, and those
// published for verification. It is safe for concurrent use; rotation and
// file reloads happen lazily, when a token is signed or the JWKS served.
type KeySet struct {
	alg    string
	method jwt.SigningMethod
	now    func() time.Time
	log    *slog.Logger

	files []*keyFileEntry // file mode
	gen   *keyGenerator   // generated mode

	lastSigner atomic.Pointer[signingKey] // to log signing key changes
}

// signingKey is one parsed key pair.
type signingKey struct {
	kid    string
	signer crypto.Signer // *ecdsa.PrivateKey or ed25519.PrivateKey
	jwk    []byte        // public JWK (JSON)
	hdrAT  string        // base64url JOSE header with typ "at+jwt"
}

// NewKeySet loads the key files, or generates the first keys.
func NewKeySet(cfg KeysConfig, deps KeyDeps) (*KeySet, error) {
	if cfg.Algorithm == "" {
		cfg.Algorithm = AlgES256
	}
	if cfg.RotateEvery == 0 {
		cfg.RotateEvery = DefaultRotateEvery
	}
	if cfg.Overlap == 0 {
		cfg.Overlap = DefaultKeyOverlap
	}
	if cfg.WatchInterval == 0 {
		cfg.WatchInterval = secret.DefaultWatchInterval
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ks := &KeySet{alg: cfg.Algorithm, now: deps.Now, log: deps.Logger}
	if ks.now == nil {
		ks.now = time.Now
	}
	if ks.log == nil {
		ks.log = slog.New(slog.DiscardHandler)
	}
	ks.method = jwt.SigningMethodES256
	if ks.alg == AlgEdDSA {
		ks.method = jwt.SigningMethodEdDSA
	}

	if len(cfg.Files) == 0 {
		ks.gen = &keyGenerator{ks: ks, every: cfg.RotateEvery, overlap: cfg.Overlap, start: ks.now()}
		if _, err := ks.gen.current(); err != nil {
			return nil, err
		}
		ks.log.Info("mint: signing keys are generated in memory; use key files when running several replicas",
			"rotate_every", cfg.RotateEvery.String(), "overlap", cfg.Overlap.String())
		return ks, nil
	}

	var errs []error
	for i, kf := range cfg.Files {
		w, err := secret.Watch(kf.File, secret.WithInterval(cfg.WatchInterval), secret.WithClock(ks.now))
		if err != nil {
			errs = append(errs, fmt.Errorf("credential: signing key %d: %w", i, err))
			continue
		}
		ks.files = append(ks.files, &keyFileEntry{ks: ks, id: kf.ID, watch: w})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if _, err := ks.published(); err != nil {
		return nil, err
	}
	return ks, nil
}

func (cfg KeysConfig) validate() error {
	var errs []error
	if cfg.Algorithm != AlgES256 && cfg.Algorithm != AlgEdDSA {
		errs = append(errs, fmt.Errorf("credential: signing algorithm must be %s or %s, not %q", AlgES256, AlgEdDSA, cfg.Algorithm))
	}
	if len(cfg.Files) == 0 {
		if cfg.RotateEvery < 0 {
			errs = append(errs, errors.New("credential: key rotation period must be positive"))
		}
		// A key must be published longer than verifiers cache the JWKS.
		if minOverlap := jwksMaxAge * time.Second; cfg.Overlap < minOverlap {
			errs = append(errs, fmt.Errorf("credential: key overlap must be at least %s (the JWKS cache lifetime)", minOverlap))
		}
	}
	ids := map[string]bool{}
	for i, kf := range cfg.Files {
		if kf.File == "" {
			errs = append(errs, fmt.Errorf("credential: signing key %d: file is required", i))
		}
		if kf.ID == "" {
			continue
		}
		if !validKeyID(kf.ID) {
			errs = append(errs, fmt.Errorf("credential: signing key %d: id %q must be 1-128 printable characters without spaces", i, kf.ID))
		}
		if ids[kf.ID] {
			errs = append(errs, fmt.Errorf("credential: signing key %d: id %q is used by another key", i, kf.ID))
		}
		ids[kf.ID] = true
	}
	return errors.Join(errs...)
}

func validKeyID(id string) bool {
	return id != "" && len(id) <= 128 && strings.IndexFunc(id, func(r rune) bool {
		return !unicode.IsPrint(r) || unicode.IsSpace(r)
	}) < 0
}

// Algorithm returns the signing algorithm (the JOSE "alg").
func (ks *KeySet) Algorithm() string { return ks.alg }

// Generated reports whether the keys are generated in memory.
func (ks *KeySet) Generated() bool { return ks.gen != nil }

// Sign returns claims, marshalled with encoding/json, as a compact JWS
// signed by the current signing key, with the JOSE header {alg, kid, typ}
// (typ omitted when empty). Errors never contain key material.
func (ks *KeySet) Sign(typ string, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("credential: marshal claims: %w", err)
	}
	return ks.signPayload(typ, payload)
}

// signPayload signs the JSON payload.
func (ks *KeySet) signPayload(typ string, payload []byte) (string, error) {
	k, err := ks.signingKey()
	if err != nil {
		return "", err
	}
	hdr := k.hdrAT
	if typ != "at+jwt" {
		hdr = joseHeader(ks.alg, k.kid, typ)
	}
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(hdr)+2+enc.EncodedLen(len(payload))+enc.EncodedLen(ed25519.SignatureSize))
	buf = append(buf, hdr...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	sig, err := ks.method.Sign(string(buf), k.signer)
	if err != nil {
		return "", fmt.Errorf("credential: sign with key %q: %w", k.kid, err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// joseHeader returns the base64url JOSE header.
func joseHeader(alg, kid, typ string) string {
	h, _ := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ,omitempty"`
	}{alg, kid, typ})
	return base64.RawURLEncoding.EncodeToString(h)
}

// signingKey returns the key that signs now.
func (ks *KeySet) signingKey() (*signingKey, error) {
	var k *signingKey
	if ks.gen != nil {
		s, err := ks.gen.current()
		if err != nil {
			return nil, err
		}
		k = s.signer
	} else {
		var err error
		if k, err = ks.files[0].key(); err != nil {
			return nil, err
		}
	}
	if ks.lastSigner.Load() != k {
		prev := ks.lastSigner.Swap(k)
		if prev == nil {
			ks.log.Info("mint: signing key", "kid", k.kid)
		} else if prev != k && prev.kid != k.kid {
			ks.log.Info("mint: signing key changed", "kid", k.kid, "previous_kid", prev.kid)
		}
	}
	return k, nil
}

// published returns every key to publish, the signing key first.
func (ks *KeySet) published() ([]*signingKey, error) {
	if ks.gen != nil {
		s, err := ks.gen.current()
		if err != nil {
			return nil, err
		}
		return s.published, nil
	}
	keys := make([]*signingKey, 0, len(ks.files))
	var errs []error
	seen := make(map[string]bool, len(ks.files))
	for _, e := range ks.files {
		k, err := e.key()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[k.kid] {
			errs = append(errs, fmt.Errorf("credential: signing key file %s: key id %q is used by another key", e.watch.Path(), k.kid))
			continue
		}
		seen[k.kid] = true
		keys = append(keys, k)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return keys, nil
}

// keyFileEntry is a key file and its last parse.
type keyFileEntry struct {
	ks    *KeySet
	id    string
	watch *secret.File
	cur   atomic.Pointer[parsedKeyFile]
}

type parsedKeyFile struct {
	version uint64
	key     *signingKey
	err     error
}

// key returns the file's key, parsing it again when the file changed.
func (e *keyFileEntry) key() (*signingKey, error) {
	b, ver, err := e.watch.Current()
	if err != nil {
		return nil, fmt.Errorf("credential: signing key: %w", err)
	}
	if p := e.cur.Load(); p != nil && p.version == ver {
		return p.key, p.err
	}
	p := &parsedKeyFile{version: ver}
	signer, err := parseSigningKey(b, e.ks.alg)
	if err != nil {
		p.err = fmt.Errorf("credential: signing key file %s: %w", e.watch.Path(), err)
	} else {
		p.key = newSigningKey(e.ks.alg, e.id, signer)
	}
	if old := e.cur.Swap(p); old != nil && old.version != ver {
		if p.err != nil {
			e.ks.log.Error("mint: signing key file changed and cannot be used", "file", e.watch.Path(), "error", p.err)
		} else {
			e.ks.log.Info("mint: signing key file reloaded", "file", e.watch.Path(), "kid", p.key.kid)
		}
	}
	return p.key, p.err
}

// parseSigningKey parses a PEM private key of the algorithm's type. Errors
// describe the key's type, never its bytes.
func parseSigningKey(data []byte, alg string) (crypto.Signer, error) {
	var block *pem.Block
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "EC PARAMETERS": // openssl ecparam -genkey writes it first
			continue
		case "PRIVATE KEY", "EC PRIVATE KEY":
		case "RSA PRIVATE KEY":
			return nil, errors.New("holds an RSA key; mcpgate signs with ES256 (P-256) or EdDSA (Ed25519)")
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("holds an encrypted private key; store it unencrypted, protected by file permissions")
		case "PUBLIC KEY", "CERTIFICATE", "EC PUBLIC KEY":
			return nil, fmt.Errorf("holds a %s, not a private key", strings.ToLower(b.Type))
		default:
			return nil, fmt.Errorf("holds an unsupported PEM block %q", b.Type)
		}
		if block != nil {
			return nil, errors.New("holds more than one private key")
		}
		block = b
	}
	if block == nil {
		return nil, errors.New("is not a PEM private key")
	}
	var key any
	var err error
	if block.Type == "EC PRIVATE KEY" {
		key, err = x509.ParseECPrivateKey(block.Bytes)
	} else {
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot be parsed as a %s: %w", strings.ToLower(block.Type), err)
	}
	var got string
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		got = "an ECDSA " + k.Curve.Params().Name + " key"
		if k.Curve == elliptic.P256() && alg == AlgES256 {
			return k, nil
		}
	case ed25519.PrivateKey:
		got = "an Ed25519 key"
		if alg == AlgEdDSA {
			return k, nil
		}
	case *rsa.PrivateKey:
		return nil, errors.New("holds an RSA key; mcpgate signs with ES256 (P-256) or EdDSA (Ed25519)")
	default:
		got = fmt.Sprintf("a %T key", key)
	}
	want := "a P-256 key"
	if alg == AlgEdDSA {
		want = "an Ed25519 key"
	}
	return nil, fmt.Errorf("holds %s; the algorithm %s needs %s", got, alg, want)
}

// jwkJSON is a public JWK.
type jwkJSON struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// newSigningKey prepares signer for use: kid (id, or the thumbprint), JWK
// and header.
func newSigningKey(alg, id string, signer crypto.Signer) *signingKey {
	enc := base64.RawURLEncoding.EncodeToString
	var j jwkJSON
	var thumbInput string
	switch pub := signer.Public().(type) {
	case *ecdsa.PublicKey:
		raw, _ := pub.Bytes() // 0x04 || X || Y, 32 bytes each for P-256
		j = jwkJSON{Kty: "EC", Crv: "P-256", X: enc(raw[1:33]), Y: enc(raw[33:65])}
		// RFC 7638 §3.2: required members, lexicographic order, no spaces.
		thumbInput = `{"crv":"P-256","kty":"EC","x":"` + j.X + `","y":"` + j.Y + `"}`
	case ed25519.PublicKey:
		j = jwkJSON{Kty: "OKP", Crv: "Ed25519", X: enc(pub)}
		thumbInput = `{"crv":"Ed25519","kty":"OKP","x":"` + j.X + `"}`
	}
	if id == "" {
		sum := sha256.Sum256([]byte(thumbInput))
		id = enc(sum[:])
	}
	j.Kid, j.Alg, j.Use = id, alg, "sig"
	b, _ := json.Marshal(j)
	return &signingKey{kid: id, signer: signer, jwk: b, hdrAT: joseHeader(alg, id, "at+jwt")}
}

// generateSigningKey makes a fresh key pair for alg.
func generateSigningKey(alg string) (*signingKey, error) {
	var signer crypto.Signer
	var err error
	if alg == AlgEdDSA {
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	} else {
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("credential: generate signing key: %w", err)
	}
	return newSigningKey(alg, "", signer), nil
}

// keyGenerator schedules generated keys. Key i signs during
// [start+i·every, start+(i+1)·every) and is published from every·i−overlap
// (key 0: from start) until overlap after it stops signing.
type keyGenerator struct {
	ks             *KeySet
	every, overlap time.Duration
	start          time.Time

	snap atomic.Pointer[keySchedule]
	mu   sync.Mutex
	last time.Time             // latest time seen: the schedule never goes back
	keys map[int64]*signingKey // by index
}

// keySchedule is the key set valid until the next scheduled event.
type keySchedule struct {
	signer    *signingKey
	published []*signingKey // signer first, then later keys, then earlier
	until     time.Time     // the next rotation event
}

// current returns the schedule for now, advancing it if an event passed.
func (g *keyGenerator) current() (*keySchedule, error) {
	now := g.ks.now()
	if s := g.snap.Load(); s != nil && now.Before(s.until) {
		return s, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Before(g.last) {
		now = g.last
	}
	g.last = now
	if s := g.snap.Load(); s != nil && now.Before(s.until) {
		return s, nil
	}
	if g.keys == nil {
		g.keys = map[int64]*signingKey{}
	}
	t := max(0, now.Sub(g.start))
	e := int64(t / g.every)                    // signs now
	hi := int64((t + g.overlap) / g.every)     // latest published
	lo := max(0, int64((t-g.overlap)/g.every)) // earliest still published
	for i := range g.keys {
		if i < lo {
			g.ks.log.Info("mint: generated signing key retired", "kid", g.keys[i].kid)
			delete(g.keys, i)
		}
	}
	// Keys before e that were never generated (the set was idle through
	// their turn) signed nothing: they need not exist.
	for i := e; i <= hi; i++ {
		if g.keys[i] != nil {
			continue
		}
		k, err := generateSigningKey(g.ks.alg)
		if err != nil {
			return nil, err
		}
		g.keys[i] = k
		g.ks.log.Info("mint: generated signing key published", "kid", k.kid,
			"signs_from", g.start.Add(time.Duration(i)*g.every).UTC().Format(time.RFC3339))
	}
	s := &keySchedule{signer: g.keys[e]}
	s.published = append(s.published, g.keys[e])
	for i := e + 1; i <= hi; i++ {
		s.published = append(s.published, g.keys[i])
	}
	for i := e - 1; i >= lo; i-- {
		if k := g.keys[i]; k != nil {
			s.published = append(s.published, k)
		}
	}
	// Next event: the signer changes, a key is published, or one retires.
	s.until = g.start.Add(time.Duration(e+1) * g.every)
	if pub := g.start.Add(time.Duration(hi+1)*g.every - g.overlap); pub.Before(s.until) {
		s.until = pub
	}
	if ret := g.start.Add(time.Duration(lo+1)*g.every + g.overlap); ret.Before(s.until) {
		s.until = ret
	}
	g.snap.Store(s)
	return s, nil
}
