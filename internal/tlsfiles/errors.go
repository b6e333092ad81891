package tlsfiles

import "errors"

// Sentinel errors; match them with errors.Is. Errors for missing or
// unreadable files wrap the os error, so errors.Is(err, fs.ErrNotExist)
// works too.
var (
	// ErrNoCertificates: a CA bundle holds no PEM certificate.
	ErrNoCertificates = errors.New("no certificates")
	// ErrIncompletePair: only one of a certificate file and a key file was
	// configured.
	ErrIncompletePair = errors.New("certificate and key files must be set together")
	// ErrNotRegular: a path names something other than a regular file (after
	// following symlinks), such as a directory or a device.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: a file is larger than 1 MiB, far beyond any certificate
	// chain or key.
	ErrTooLarge = errors.New("file too large")
	// ErrExpired: a new certificate had already expired while the one it
	// would replace is still valid, so it was not installed.
	ErrExpired = errors.New("certificate expired")
)
