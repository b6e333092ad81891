package tokencache

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
)

const (
	// maxKeyFile bounds the key file.
	maxKeyFile = 64 << 10
	// keySize is the length of an AES-256 key.
	keySize = 32
	// maxIDLen bounds a key id.
	maxIDLen = 32
)

// keyring is the set of keys read from one key file: the first encrypts,
// every one decrypts. It is immutable once built.
type keyring struct {
	enc  ringKey
	byID map[string]cipher.AEAD
	ids  []string // in file order
}

type ringKey struct {
	id   string
	aead cipher.AEAD
}

// validID reports whether id is a key id: [A-Za-z0-9._-]{1,32}.
func validID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// decodeKey decodes standard or URL-safe base64, padded or not, into a
// new slice. It returns nil when s is none of them.
func decodeKey(s []byte) []byte {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b := make([]byte, enc.DecodedLen(len(s)))
		n, err := enc.Decode(b, s)
		if err == nil {
			return b[:n]
		}
		clear(b)
	}
	return nil
}

// parseKeys parses a key file: one "<key-id> <base64 of 32 bytes>" per
// line, blank lines and lines starting with # ignored. Errors name the
// line and the key id, never key material; every problem is reported.
// (It works on bytes, so that no copy of a key is left in a string.)
func parseKeys(data []byte) (*keyring, error) {
	var errs []error
	r := &keyring{byID: map[string]cipher.AEAD{}}
	n := 0
	for line := range bytes.Lines(data) {
		n++
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		fields := bytes.Fields(line)
		if len(fields) != 2 {
			errs = append(errs, fmt.Errorf("line %d: want \"<key-id> <base64 key>\", found %d fields", n, len(fields)))
			continue
		}
		if !validID(string(fields[0])) {
			errs = append(errs, fmt.Errorf("line %d: the key id must be 1 to %d of [A-Za-z0-9._-]", n, maxIDLen))
			continue
		}
		id, enc := string(fields[0]), fields[1]
		if _, dup := r.byID[id]; dup {
			errs = append(errs, fmt.Errorf("line %d: key id %q is listed twice", n, id))
			continue
		}
		key := decodeKey(enc)
		switch {
		case key == nil:
			errs = append(errs, fmt.Errorf("line %d: key %q is not base64", n, id))
			continue
		case len(key) != keySize:
			errs = append(errs, fmt.Errorf("line %d: key %q is %d bytes, want %d", n, id, len(key), keySize))
			clear(key)
			continue
		}
		aead, err := newAEAD(key)
		clear(key)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: key %q: %w", n, id, err))
			continue
		}
		if len(r.ids) == 0 {
			r.enc = ringKey{id: id, aead: aead}
		}
		r.byID[id] = aead
		r.ids = append(r.ids, id)
	}
	if len(r.ids) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("there is no key"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// readKeyFile reads and parses the key file, refusing one that others
// may read or write, or that is not a regular file of at most 64 KiB. It
// returns the file's FileInfo, to notice a change.
func readKeyFile(path string) (*keyring, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("tokencache: key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("tokencache: key file: %w", err)
	}
	switch {
	case !fi.Mode().IsRegular():
		return nil, fi, fmt.Errorf("tokencache: key file %s is not a regular file", path)
	case fi.Mode().Perm()&0o004 != 0:
		return nil, fi, fmt.Errorf("tokencache: key file %s is readable by everyone (mode %04o): make it 0400 or 0440 (Kubernetes: defaultMode)", path, fi.Mode().Perm())
	case fi.Mode().Perm()&0o002 != 0:
		return nil, fi, fmt.Errorf("tokencache: key file %s is writable by everyone (mode %04o)", path, fi.Mode().Perm())
	case fi.Size() > maxKeyFile:
		return nil, fi, fmt.Errorf("tokencache: key file %s is over %d bytes", path, maxKeyFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	defer clear(data)
	if err != nil {
		return nil, fi, fmt.Errorf("tokencache: key file: %w", err)
	}
	if len(data) > maxKeyFile {
		return nil, fi, fmt.Errorf("tokencache: key file %s is over %d bytes", path, maxKeyFile)
	}
	r, err := parseKeys(data)
	if err != nil {
		return nil, fi, fmt.Errorf("tokencache: key file %s: %w", path, err)
	}
	return r, fi, nil
}

// sameFile reports whether two stats are of the same, unchanged file.
func sameFile(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && a.Mode() == b.Mode()
}
