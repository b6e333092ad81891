package tokencache

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/internal/credential"
)

// The stored value:
//
//	version (1) | key id length (1) | key id | nonce (12) | AES-256-GCM(entry)
//
// The additional data of the encryption is the value's header (version,
// key id length, key id) followed by the Redis key name, so a value is
// only readable under the key it was written to, with the key it names.
//
// The entry (the plaintext), all lengths uvarints, times varint Unix
// nanoseconds (0 for a zero time):
//
//	validUntil | expiry | flags (1) | header | secret | [value] | id
//
// flags bit 0: the value is "Bearer " + secret, and is not stored.
const (
	valueVersion = 1
	nonceSize    = 12
	tagSize      = 16
	// maxEntry bounds an entry's plaintext (a token is a few KiB).
	maxEntry = 64 << 10

	flagBearer = 1
)

// Reasons a stored value is not read, each logged once per key id.
var (
	errMalformed  = errors.New("the value is malformed")
	errUnknownKey = errors.New("the value is encrypted with a key that is not in the key file")
	errAuth       = errors.New("the value does not authenticate (tampered, moved to another key, or another key of that id)")
	errTooLarge   = fmt.Errorf("the credential is over %d bytes", maxEntry)
)

// seal encrypts plain for the Redis key name with the ring's first key.
func (r *keyring) seal(name string, plain []byte) []byte {
	k := r.enc
	hdr := 2 + len(k.id)
	total := hdr + nonceSize + len(plain) + tagSize
	// One allocation: the value, then (past its capacity, so that they do
	// not overlap) the additional data.
	buf := make([]byte, total+hdr+len(name))
	out := buf[: hdr+nonceSize : total]
	out[0], out[1] = valueVersion, byte(len(k.id))
	copy(out[2:], k.id)
	nonce := out[hdr : hdr+nonceSize]
	rand.Read(nonce) // never fails (crypto/rand)
	ad := buf[total:]
	copy(ad, out[:hdr])
	copy(ad[hdr:], name)
	return k.aead.Seal(out, nonce, plain, ad)
}

// open decrypts a value read from the Redis key name. It returns the key
// id the value names (valid or not; for logs) and errMalformed,
// errUnknownKey or errAuth when it cannot.
func (r *keyring) open(name string, value []byte) (plain []byte, id string, err error) {
	if len(value) < 2 || value[0] != valueVersion {
		return nil, "", errMalformed
	}
	n := int(value[1])
	hdr := 2 + n
	if n == 0 || n > maxIDLen || len(value) < hdr+nonceSize+tagSize {
		return nil, "", errMalformed
	}
	id = string(value[2:hdr])
	aead, ok := r.byID[id]
	if !ok {
		return nil, id, errUnknownKey
	}
	ad := make([]byte, 0, hdr+len(name))
	ad = append(append(ad, value[:hdr]...), name...)
	plain, err = aead.Open(nil, value[hdr:hdr+nonceSize], value[hdr+nonceSize:], ad)
	if err != nil {
		return nil, id, errAuth
	}
	return plain, id, nil
}

// unixNano is t in Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// encodeEntry is the plaintext of an entry.
func encodeEntry(cred credential.Credential, validUntil time.Time) ([]byte, error) {
	bearer := cred.Value == "Bearer "+cred.Secret
	size := 2*binary.MaxVarintLen64 + 1 + 4*binary.MaxVarintLen32 + len(cred.Header) + len(cred.Secret) + len(cred.ID)
	if !bearer {
		size += len(cred.Value)
	}
	if size > maxEntry {
		return nil, errTooLarge
	}
	b := make([]byte, 0, size)
	b = binary.AppendVarint(b, unixNano(validUntil))
	b = binary.AppendVarint(b, unixNano(cred.Expiry))
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	if bearer {
		b = append(b, flagBearer)
		str(cred.Header)
		str(cred.Secret)
	} else {
		b = append(b, 0)
		str(cred.Header)
		str(cred.Secret)
		str(cred.Value)
	}
	str(cred.ID)
	return b, nil
}

// decodeEntry decodes encodeEntry's output, refusing anything else.
func decodeEntry(b []byte) (credential.Credential, time.Time, error) {
	var cred credential.Credential
	if len(b) > maxEntry {
		return cred, time.Time{}, errMalformed
	}
	bad := false
	varint := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	str := func() string {
		if bad {
			return ""
		}
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			bad = true
			return ""
		}
		s := string(b[n : n+int(l)])
		b = b[n+int(l):]
		return s
	}
	validUntil := fromUnixNano(varint())
	if bad {
		return cred, time.Time{}, errMalformed
	}
	cred.Expiry = fromUnixNano(varint())
	if bad || len(b) == 0 || b[0]&^flagBearer != 0 {
		return credential.Credential{}, time.Time{}, errMalformed
	}
	flags := b[0]
	b = b[1:]
	cred.Header = str()
	cred.Secret = str()
	if flags&flagBearer != 0 {
		cred.Value = "Bearer " + cred.Secret
	} else {
		cred.Value = str()
	}
	cred.ID = str()
	if bad || len(b) != 0 {
		return credential.Credential{}, time.Time{}, errMalformed
	}
	return cred, validUntil, nil
}
