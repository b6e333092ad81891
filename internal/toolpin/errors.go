package toolpin

import (
	"errors"
	"strconv"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrMalformed: a tool definition is not a well-formed, unambiguous
	// JSON object with a string name. The gateway fails the list closed.
	ErrMalformed = errors.New("malformed tool definition")
	// ErrCorrupt: the pins file cannot be read as a version 1 pins file.
	// New refuses to start; Reload keeps the last good state.
	ErrCorrupt = errors.New("corrupt pins file")
	// ErrInsecureFile: the pins file or its lock file may be written by
	// users other than its owner (group or world writable).
	ErrInsecureFile = errors.New("pins file writable by group or others")
	// ErrTooMany: pinning more tools would exceed MaxTools or
	// MaxToolsPerRoute. Nothing of the list was recorded.
	ErrTooMany = errors.New("too many pinned tools")
	// ErrNotFound: an approval names a tool that was never observed.
	ErrNotFound = errors.New("tool not observed")
	// ErrPersist: the state changed in memory (and protects from now on)
	// but could not be written to the pins file.
	ErrPersist = errors.New("persist pins")
	// ErrLocked: the pins file's lock was held by another process for
	// longer than the lock timeout.
	ErrLocked = errors.New("pins file locked")

	// ErrChanged is the block-mode decision for a tool whose definition
	// differs from its pin and was not approved.
	ErrChanged = errors.New("tool definition changed since it was approved")
	// ErrUnknown is the block-mode decision, when unknown tools are
	// refused, for a tool that has no pin.
	ErrUnknown = errors.New("tool definition not approved")
	// ErrMode: a Mode other than off, alert or block.
	ErrMode = errors.New("invalid tool pinning mode")
)

// SyntaxError reports where a tool definition (or the pins file) stops
// being acceptable JSON. It matches [ErrMalformed] under errors.Is. It
// never quotes the input.
type SyntaxError struct {
	Offset int    // byte offset of the problem in the input
	Msg    string // what is wrong, e.g. "duplicate member name"
}

// Error implements error.
func (e *SyntaxError) Error() string {
	return "json at offset " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// Is reports whether target is ErrMalformed.
func (e *SyntaxError) Is(target error) bool { return target == ErrMalformed }

// quote renders an upstream-controlled name for an error or log message:
// at most 64 bytes, quoted with non-ASCII escaped.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		return strconv.QuoteToASCII(s[:cut]) + "…"
	}
	return strconv.QuoteToASCII(s)
}
