// Package secret reads secrets from files, the way a secrets manager or a
// Kubernetes Secret mount delivers them. A secret file readable or writable
// by users other than its owner and group is refused: a secret that anyone
// on the host can read is already leaked. Values are trimmed of surrounding
// whitespace (a trailing newline is the usual accident) and never logged.
package secret

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxSecretBytes bounds a secret file.
const maxSecretBytes = 64 << 10

// ReadFile returns the trimmed content of the secret file at path.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret: %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return nil, fmt.Errorf("secret: %s is accessible by other users (mode %04o); use 0400, 0440 or 0600 (Kubernetes: defaultMode: 0400)", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
	if err != nil {
		return nil, fmt.Errorf("secret: read %s: %w", path, err)
	}
	if len(b) > maxSecretBytes {
		return nil, fmt.Errorf("secret: %s is larger than %d bytes", path, maxSecretBytes)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errors.New("secret: " + path + " is empty")
	}
	return b, nil
}
