package tokencache

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/credential"
)

// tcToken makes a token shaped like an RS256 access token (header,
// claims, signature), random, at runtime.
func tcToken(t testing.TB, sub string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	hdr, _ := json.Marshal(map[string]string{"alg": "RS" + "256", "typ": "at+jwt", "kid": rand.Text()[:8]})
	claims, _ := json.Marshal(map[string]any{
		"iss": "https://idp.example.test", "sub": sub, "aud": "https://docs.upstream.test/mcp",
		"client_id": "xc-gateway", "scope": "docs:read docs:write", "jti": rand.Text(),
		"exp": time.Now().Add(10 * time.Minute).Unix(), "iat": time.Now().Unix(),
		"act": map[string]string{"sub": "xc-gateway"},
	})
	sig := make([]byte, 256)
	if _, err := rand.Read(sig); err != nil {
		t.Fatal(err)
	}
	return enc.EncodeToString(hdr) + "." + enc.EncodeToString(claims) + "." + enc.EncodeToString(sig)
}

// tcCred is the credential an Exchange makes of a token.
func tcCred(tok string, expiry time.Time) credential.Credential {
	sum := sha256.Sum256([]byte(tok))
	return credential.Credential{Header: "Authorization", Value: "Bearer " + tok, Secret: tok, Expiry: expiry,
		ID: hex.EncodeToString(sum[:8])}
}

func tcRing(t testing.TB, keys ...tcKey) *keyring {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k.line() + "\n")
	}
	r, err := parseKeys([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEntryRoundTrip(t *testing.T) {
	now := time.Now()
	tok := tcToken(t, "user-alice")
	for _, tt := range []struct {
		name       string
		cred       credential.Credential
		validUntil time.Time
	}{
		{name: "bearer", cred: tcCred(tok, now.Add(10*time.Minute)), validUntil: now.Add(9 * time.Minute)},
		{name: "other value", cred: credential.Credential{Header: "X-Api-Key", Value: "k=" + tok, Secret: tok, ID: "id"}, validUntil: now},
		{name: "zero", cred: credential.Credential{}, validUntil: time.Time{}},
		{name: "empty secret bearer", cred: credential.Credential{Header: "Authorization", Value: "Bearer "}, validUntil: now},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encodeEntry(tt.cred, tt.validUntil)
			if err != nil {
				t.Fatal(err)
			}
			cred, vu, err := decodeEntry(b)
			if err != nil {
				t.Fatal(err)
			}
			if cred.Header != tt.cred.Header || cred.Value != tt.cred.Value || cred.Secret != tt.cred.Secret ||
				cred.ID != tt.cred.ID || !cred.Expiry.Equal(tt.cred.Expiry) || !vu.Equal(tt.validUntil) ||
				cred.Expiry.IsZero() != tt.cred.Expiry.IsZero() {
				t.Errorf("got %+v until %v", cred, vu)
			}
			// Every strict prefix, and any trailing byte, is refused.
			for i := range len(b) {
				if _, _, err := decodeEntry(b[:i]); err == nil {
					t.Fatalf("prefix of %d bytes decoded", i)
				}
			}
			if _, _, err := decodeEntry(append(b, 0)); err == nil {
				t.Fatal("a trailing byte was accepted")
			}
		})
	}
	// The bearer form stores the token once.
	b, _ := encodeEntry(tcCred(tok, now), now)
	if n := strings.Count(string(b), tok); n != 1 || len(b) > len(tok)+64 {
		t.Errorf("entry of %d bytes holds the token %d times", len(b), n)
	}
	if _, err := encodeEntry(tcCred(strings.Repeat(tok, maxEntry/len(tok)+1), now), now); err == nil {
		t.Error("an oversized credential was encoded")
	}
}

// TestSealBindsKeyName: a value opens only under the Redis key name it
// was sealed for and the key it names; any changed byte fails.
func TestSealBindsKeyName(t *testing.T) {
	r := tcRing(t, tcNewKey(t, "k1"))
	plain := []byte("payload " + tcToken(t, "u"))
	v := r.seal("mcpgate:tok:A", plain)
	if bytes.Contains(v, plain[8:]) {
		t.Fatal("the plaintext is in the value")
	}
	if p, id, err := r.open("mcpgate:tok:A", v); err != nil || !bytes.Equal(p, plain) || id != "k1" {
		t.Fatalf("open: %v", err)
	}
	if v2 := r.seal("mcpgate:tok:A", plain); bytes.Equal(v[:2+2+nonceSize], v2[:2+2+nonceSize]) {
		t.Error("two seals share a nonce")
	}
	for _, name := range []string{"mcpgate:tok:B", "other:tok:A", "mcpgate:tok:A ", ""} {
		if _, _, err := r.open(name, v); err != errAuth {
			t.Errorf("opened under %q: %v", name, err)
		}
	}
	for i := range v {
		bad := bytes.Clone(v)
		bad[i] ^= 0x01
		if _, _, err := r.open("mcpgate:tok:A", bad); err == nil {
			t.Fatalf("a value with byte %d flipped opened", i)
		}
	}
	if _, _, err := r.open("mcpgate:tok:A", v[:len(v)-1]); err == nil {
		t.Error("a truncated value opened")
	}
}

// FuzzOpen: the value decoder (header, decryption, entry) never panics;
// what opens is what was sealed, and decodes to what was encoded.
func FuzzOpen(f *testing.F) {
	r := tcRing(f, tcNewKey(f, "k1"), tcNewKey(f, "k0"))
	other := tcRing(f, tcNewKey(f, "k0"))
	const name = "mcpgate:tok:key"
	now := time.Now()
	for _, c := range []credential.Credential{tcCred(tcToken(f, "u1"), now.Add(time.Hour)), {Header: "X", Value: "v", Secret: "s"}} {
		plain, _ := encodeEntry(c, now)
		v := r.seal(name, plain)
		f.Add(v)
		f.Add(other.seal(name, plain))
		f.Add(v[:len(v)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{valueVersion, 2, 'k', '1'})
	f.Add([]byte{valueVersion, 0xff})
	f.Fuzz(func(t *testing.T, value []byte) {
		for _, ring := range []*keyring{r, other} {
			plain, id, err := ring.open(name, value)
			if err != nil {
				if err != errMalformed && err != errUnknownKey && err != errAuth {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			if _, ok := ring.byID[id]; !ok {
				t.Fatalf("opened with unknown key %q", id)
			}
			cred, vu, err := decodeEntry(plain)
			if err != nil {
				continue
			}
			again, _ := encodeEntry(cred, vu)
			c2, vu2, err := decodeEntry(again)
			if err != nil || c2 != cred || !vu2.Equal(vu) {
				t.Fatalf("re-encoding changed the entry: %v", err)
			}
		}
	})
}

// FuzzDecodeEntry: the plaintext decoder never panics (an authenticated
// value is never malformed, so FuzzOpen rarely reaches it) and what it
// accepts re-encodes to the same entry.
func FuzzDecodeEntry(f *testing.F) {
	now := time.Now()
	for _, c := range []credential.Credential{tcCred(tcToken(f, "u1"), now.Add(time.Hour)), {Header: "X", Value: "v", Secret: "s"}, {}} {
		b, _ := encodeEntry(c, now)
		f.Add(b)
	}
	f.Add([]byte{0, 0, 2})
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		cred, vu, err := decodeEntry(b)
		if err != nil {
			if err != errMalformed || cred != (credential.Credential{}) {
				t.Fatalf("error %v with %+v", err, cred)
			}
			return
		}
		again, err := encodeEntry(cred, vu)
		if err != nil {
			t.Fatal(err)
		}
		c2, vu2, err := decodeEntry(again)
		if err != nil || c2 != cred || !vu2.Equal(vu) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func benchEntry(b *testing.B) (*keyring, string, []byte) {
	r := tcRing(b, tcNewKey(b, "k-2026-01"))
	plain, err := encodeEntry(tcCred(tcToken(b, "user-alice"), time.Now().Add(time.Hour)), time.Now().Add(50*time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	return r, "mcpgate:tok:" + strings.Repeat("A", 43), plain
}

// BenchmarkSeal: encode an entry and encrypt it (a ~1 KB token).
func BenchmarkSeal(b *testing.B) {
	r, name, _ := benchEntry(b)
	cred := tcCred(tcToken(b, "user-alice"), time.Now().Add(time.Hour))
	vu := time.Now().Add(50 * time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		plain, err := encodeEntry(cred, vu)
		if err != nil {
			b.Fatal(err)
		}
		_ = r.seal(name, plain)
	}
}

// BenchmarkOpen: decrypt a value and decode its entry.
func BenchmarkOpen(b *testing.B) {
	r, name, plain := benchEntry(b)
	v := r.seal(name, plain)
	b.ReportAllocs()
	for b.Loop() {
		p, _, err := r.open(name, v)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := decodeEntry(p); err != nil {
			b.Fatal(err)
		}
	}
}
