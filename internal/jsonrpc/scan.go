// This file implements a validating scanner for the JSON grammar of RFC 8259,
// restricted to UTF-8 text with well-formed escapes (RFC 8259 section 8.2).
// See https://www.rfc-editor.org/rfc/rfc8259.

package jsonrpc

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepthCap bounds recursion whatever Limits.MaxDepth says.
const maxDepthCap = 10000

// scanner validates JSON in one pass. Syntax errors and the depth cap stop
// the scan and are returned; the first duplicate member name is recorded in
// names.invalid and the scan goes on, so that a syntax error later in the
// input still takes precedence (malformed input is always a parse error).
type scanner struct {
	data     []byte
	pos      int
	maxDepth int

	names *nameState // nil: do not check member names
}

// safeASCII[c] is true for bytes that stand for themselves inside a string.
var safeASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (s *scanner) syntaxErr(at int, what string) *Error {
	var where string
	switch {
	case at >= len(s.data):
		where = "end of input"
	case s.data[at] >= 0x20 && s.data[at] < 0x7f:
		where = fmt.Sprintf("%q", s.data[at])
	default:
		where = fmt.Sprintf("byte 0x%02x", s.data[at])
	}
	return &Error{Code: CodeParseError, Message: fmt.Sprintf("parse error: %s at offset %d (%s)", what, at, where)}
}

func (s *scanner) skipWS() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value scans the value at s.pos; depth is the nesting of its container.
func (s *scanner) value(depth int) error {
	if s.pos >= len(s.data) {
		return s.syntaxErr(s.pos, "expected a value")
	}
	switch c := s.data[s.pos]; c {
	case '{':
		return s.object(depth+1, nil)
	case '[':
		return s.array(depth + 1)
	case '"':
		_, err := s.str()
		return err
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		if c == '-' || isDigit(c) {
			return s.number()
		}
		return s.syntaxErr(s.pos, "expected a value")
	}
}

func (s *scanner) literal(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return s.syntaxErr(s.pos, "invalid literal")
	}
	s.pos += len(lit)
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func (s *scanner) digits() int {
	start := s.pos
	for s.pos < len(s.data) && isDigit(s.data[s.pos]) {
		s.pos++
	}
	return s.pos - start
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *scanner) number() error {
	d := s.data
	if d[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(d) && d[s.pos] == '0':
		s.pos++
	case s.digits() == 0:
		return s.syntaxErr(s.pos, "invalid number")
	}
	if s.pos < len(d) && d[s.pos] == '.' {
		s.pos++
		if s.digits() == 0 {
			return s.syntaxErr(s.pos, "invalid number")
		}
	}
	if s.pos < len(d) && (d[s.pos] == 'e' || d[s.pos] == 'E') {
		s.pos++
		if s.pos < len(d) && (d[s.pos] == '+' || d[s.pos] == '-') {
			s.pos++
		}
		if s.digits() == 0 {
			return s.syntaxErr(s.pos, "invalid number")
		}
	}
	return nil
}

// str scans the string whose opening quote is at s.pos and leaves s.pos
// after the closing quote. It reports whether the string has escapes.
func (s *scanner) str() (escaped bool, err error) {
	d := s.data
	i := s.pos + 1
	for {
		for i < len(d) && safeASCII[d[i]] {
			i++
		}
		if i >= len(d) {
			return false, s.syntaxErr(i, "unterminated string")
		}
		switch c := d[i]; {
		case c == '"':
			s.pos = i + 1
			return escaped, nil
		case c == '\\':
			n, err := s.escape(i)
			if err != nil {
				return false, err
			}
			escaped = true
			i += n
		case c < 0x20:
			return false, s.syntaxErr(i, "control character in string")
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				return false, s.syntaxErr(i, "invalid UTF-8")
			}
			i += size
		}
	}
}

// escape validates the escape sequence starting with the backslash at
// data[i] and returns its length. A \u escape of a surrogate must be a high
// surrogate immediately followed by a \u escape of a low one.
func (s *scanner) escape(i int) (int, error) {
	d := s.data
	if i+1 >= len(d) {
		return 0, s.syntaxErr(i+1, "unterminated string")
	}
	switch d[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
		r, ok := hex4(d, i+2)
		switch {
		case !ok:
			return 0, s.syntaxErr(i, `invalid \u escape`)
		case utf16.IsSurrogate(r):
			if r < 0xDC00 && len(d) >= i+12 && d[i+6] == '\\' && d[i+7] == 'u' {
				if r2, ok := hex4(d, i+8); ok && 0xDC00 <= r2 && r2 <= 0xDFFF {
					return 12, nil
				}
			}
			return 0, s.syntaxErr(i, "unpaired surrogate escape")
		}
		return 6, nil
	}
	return 0, s.syntaxErr(i, "invalid escape")
}

// hex4 decodes the four hex digits at d[i:i+4].
func hex4(d []byte, i int) (rune, bool) {
	if len(d) < i+4 {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// appendUnescaped appends the decoded contents of a string body (without
// quotes) that str has validated.
func appendUnescaped(dst, body []byte) []byte {
	for i := 0; i < len(body); {
		c := body[i]
		if c != '\\' {
			j := i + 1
			for j < len(body) && body[j] != '\\' {
				j++
			}
			dst = append(dst, body[i:j]...)
			i = j
			continue
		}
		switch e := body[i+1]; e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(body, i+2)
			if utf16.IsSurrogate(r) {
				r2, _ := hex4(body, i+8)
				r = utf16.DecodeRune(r, r2)
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			i += 4
		default: // '"', '\\', '/'
			dst = append(dst, e)
		}
		i += 2
	}
	return dst
}

func (s *scanner) array(depth int) error {
	if depth > s.maxDepth {
		return invalidRequest(fmt.Sprintf("nesting deeper than %d", s.maxDepth))
	}
	s.pos++ // '['
	s.skipWS()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		if err := s.value(depth); err != nil {
			return err
		}
		s.skipWS()
		if s.pos >= len(s.data) {
			return s.syntaxErr(s.pos, "expected ',' or ']'")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			s.skipWS()
		case ']':
			s.pos++
			return nil
		default:
			return s.syntaxErr(s.pos, "expected ',' or ']'")
		}
	}
}

// object scans the object at s.pos. When env is not nil (the top level),
// it records where each envelope member's value lies; that needs s.names.
func (s *scanner) object(depth int, env *envelope) error {
	if depth > s.maxDepth {
		return invalidRequest(fmt.Sprintf("nesting deeper than %d", s.maxDepth))
	}
	s.pos++ // '{'
	s.skipWS()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	ns := s.names
	if ns != nil && ns.stopped {
		ns = nil
	}
	var m mark
	if ns != nil {
		m = ns.open()
	}
	var set *foldTable // this object's hash set, once it has one
	for {
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return s.syntaxErr(s.pos, "expected a member name")
		}
		nameStart := s.pos
		escaped, err := s.str()
		if err != nil {
			return err
		}
		var ref nameRef
		if ns != nil && !ns.stopped {
			ref = ns.decode(nameStart+1, s.pos-1, escaped)
			var dup bool
			if set, dup = ns.add(m, ref, set); dup {
				ns.stopped = true // one is enough; from here on, check syntax only
				ns.setInvalid(invalidRequest("duplicate or case-variant member name " + quoteName(ns.bytes(ref))))
			}
		}
		s.skipWS()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return s.syntaxErr(s.pos, "expected ':'")
		}
		s.pos++
		s.skipWS()
		valStart := s.pos
		if err := s.value(depth); err != nil {
			return err
		}
		if env != nil && ns != nil && !ns.stopped {
			env.set(ns, ns.bytes(ref), span{valStart, s.pos})
		}
		s.skipWS()
		if s.pos >= len(s.data) {
			return s.syntaxErr(s.pos, "expected ',' or '}'")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			s.skipWS()
		case '}':
			s.pos++
			if ns != nil {
				ns.close(m, set)
			}
			return nil
		default:
			return s.syntaxErr(s.pos, "expected ',' or '}'")
		}
	}
}
