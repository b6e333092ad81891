// This file implements the comparison of arguments as decoded JSON values
// for order rules (same_arguments). See
// https://www.rfc-editor.org/rfc/rfc8259 (numbers, strings, objects).

package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Argument comparison modes. Exact equality is used where a match ALLOWS a
// call (after), loose equality where a match REFUSES it (never_after), so
// that either way a value an upstream reads differently from mcpgate makes
// the rule stricter, never weaker:
//
//   - exact: strings by their decoded characters (escapes decoded; a lone
//     surrogate or invalid UTF-8 makes the value not comparable); numbers
//     by exact decimal value (1, 1.0 and 1e0 are equal; 2^53+1 and 2^53
//     are not); objects regardless of key order; arrays in order.
//   - loose: additionally numbers as 64-bit floats, a string holding a
//     number as that number, strings trimmed and lower-cased, invalid
//     Unicode as U+FFFD — the equalities lenient servers apply.
const (
	argsExact = false
	argsLoose = true
)

// maxArgDepth bounds nesting in a compared argument.
const maxArgDepth = 64

var errArgValue = errors.New("not a comparable JSON value")

// digestHex is a hex-encoded argument digest, as stored in history.
type digestHex [32]byte

// argsDigest returns the digest of the named arguments' decoded values.
// When one is missing or not comparable it returns its name in bad.
func argsDigest(args map[string]json.RawMessage, names []string, loose bool) (d digestHex, bad string) {
	var buf [256]byte
	b := buf[:0]
	for _, n := range names {
		raw, ok := args[n]
		if !ok {
			return d, n
		}
		var err error
		if b, err = appendCanonical(b, raw, loose); err != nil {
			return d, n
		}
	}
	sum := sha256.Sum256(b)
	hex.Encode(d[:], sum[:16])
	return d, ""
}

// appendCanonical appends to b an unambiguous encoding of the JSON value
// raw such that two values have the same encoding iff they are equal in
// the mode chosen by loose.
func appendCanonical(b, raw []byte, loose bool) ([]byte, error) {
	c := canon{in: raw, loose: loose}
	b, err := c.value(b, 0)
	if err != nil {
		return b, err
	}
	if c.skipWS(); c.i != len(c.in) {
		return b, errArgValue
	}
	return b, nil
}

// canon is a one-pass reader of a JSON value producing the canonical
// encoding: 'z' null, 't' true, 'f' false, 'n' number ';', 's' length
// string, 'a' values ']', 'o' (key value)… '}' with keys sorted.
type canon struct {
	in    []byte
	i     int
	loose bool
}

func (c *canon) skipWS() {
	for c.i < len(c.in) && isJSONSpace(c.in[c.i]) {
		c.i++
	}
}

func (c *canon) value(b []byte, depth int) ([]byte, error) {
	if depth > maxArgDepth {
		return b, errArgValue
	}
	c.skipWS()
	if c.i >= len(c.in) {
		return b, errArgValue
	}
	switch ch := c.in[c.i]; {
	case ch == '{':
		return c.object(b, depth)
	case ch == '[':
		c.i++
		b = append(b, 'a')
		for first := true; ; first = false {
			c.skipWS()
			if c.i < len(c.in) && c.in[c.i] == ']' && first {
				c.i++
				return append(b, ']'), nil
			}
			var err error
			if b, err = c.value(b, depth+1); err != nil {
				return b, err
			}
			c.skipWS()
			if c.i >= len(c.in) {
				return b, errArgValue
			}
			c.i++
			switch c.in[c.i-1] {
			case ']':
				return append(b, ']'), nil
			case ',':
			default:
				return b, errArgValue
			}
		}
	case ch == '"':
		start := len(b)
		b = append(b, 's', 0, 0, 0, 0)
		var err error
		if b, err = c.str(b); err != nil {
			return b, err
		}
		s := b[start+5:]
		if c.loose {
			t := strings.ToLower(strings.TrimSpace(string(s)))
			if n, ok := looseNumber(t); ok {
				return append(append(append(b[:start], 'n'), n...), ';'), nil
			}
			b = append(b[:start+5], t...)
		}
		binary.BigEndian.PutUint32(b[start+1:], uint32(len(b)-start-5))
		return b, nil
	case ch == '-' || ch >= '0' && ch <= '9':
		end := c.i
		for end < len(c.in) && strings.IndexByte("+-.eE0123456789", c.in[end]) >= 0 {
			end++
		}
		num := string(c.in[c.i:end])
		c.i = end
		var n string
		var ok bool
		if c.loose {
			n, ok = looseNumber(num)
		} else {
			n, ok = exactNumber(num)
		}
		if !ok {
			return b, errArgValue
		}
		return append(append(append(b, 'n'), n...), ';'), nil
	}
	for _, lit := range [...]string{"null", "true", "false"} {
		if bytes.HasPrefix(c.in[c.i:], []byte(lit)) {
			c.i += len(lit)
			return append(b, "ztf"[strings.Index("ntf", lit[:1])]), nil
		}
	}
	return b, errArgValue
}

func (c *canon) object(b []byte, depth int) ([]byte, error) {
	c.i++ // '{'
	type member struct{ key, val []byte }
	var members []member
	for first := true; ; first = false {
		c.skipWS()
		if c.i >= len(c.in) {
			return b, errArgValue
		}
		if c.in[c.i] == '}' && first {
			c.i++
			break
		}
		if c.in[c.i] != '"' {
			return b, errArgValue
		}
		loose := c.loose
		c.loose = false // keys always compare exactly
		key, err := c.str(nil)
		c.loose = loose
		if err != nil {
			return b, err
		}
		c.skipWS()
		if c.i >= len(c.in) || c.in[c.i] != ':' {
			return b, errArgValue
		}
		c.i++
		val, err := c.value(nil, depth+1)
		if err != nil {
			return b, err
		}
		members = append(members, member{key, val})
		c.skipWS()
		if c.i >= len(c.in) {
			return b, errArgValue
		}
		c.i++
		if c.in[c.i-1] == '}' {
			break
		}
		if c.in[c.i-1] != ',' {
			return b, errArgValue
		}
	}
	slices.SortFunc(members, func(x, y member) int { return bytes.Compare(x.key, y.key) })
	b = append(b, 'o')
	for i, m := range members {
		if i > 0 && bytes.Equal(m.key, members[i-1].key) {
			return b, errArgValue // duplicate key: ambiguous
		}
		b = binary.BigEndian.AppendUint32(append(b, 's'), uint32(len(m.key)))
		b = append(append(b, m.key...), m.val...)
	}
	return append(b, '}'), nil
}

// str decodes the string at c.i (a '"') onto b. Exact mode refuses lone
// surrogates and invalid UTF-8; loose mode writes U+FFFD for them, as
// encoding/json does.
func (c *canon) str(b []byte) ([]byte, error) {
	c.i++
	for c.i < len(c.in) {
		ch := c.in[c.i]
		switch {
		case ch == '"':
			c.i++
			return b, nil
		case ch < 0x20:
			return b, errArgValue
		case ch == '\\':
			if c.i+1 >= len(c.in) {
				return b, errArgValue
			}
			e := c.in[c.i+1]
			c.i += 2
			if k := strings.IndexByte(`"\/bfnrt`, e); k >= 0 {
				b = append(b, "\"\\/\b\f\n\r\t"[k])
				continue
			}
			if e != 'u' {
				return b, errArgValue
			}
			r, ok := c.hex4()
			if !ok {
				return b, errArgValue
			}
			if utf16.IsSurrogate(r) {
				if r < 0xdc00 { // a high surrogate: a low one must follow
					if r2, ok2 := c.lowSurrogate(); ok2 {
						b = utf8.AppendRune(b, utf16.DecodeRune(r, r2))
						continue
					}
				}
				if !c.loose {
					return b, errArgValue
				}
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
		default:
			r, size := utf8.DecodeRune(c.in[c.i:])
			if r == utf8.RuneError && size == 1 {
				if !c.loose {
					return b, errArgValue
				}
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, c.in[c.i:c.i+size]...)
			}
			c.i += size
		}
	}
	return b, errArgValue
}

// hex4 reads four hex digits at c.i.
func (c *canon) hex4() (rune, bool) {
	if c.i+4 > len(c.in) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(c.in[c.i:c.i+4]), 16, 16)
	if err != nil {
		return 0, false
	}
	c.i += 4
	return rune(v), true
}

// lowSurrogate reads a following "\uDC00"-"\uDFFF" escape if there is one.
func (c *canon) lowSurrogate() (rune, bool) {
	save := c.i
	if c.i+2 <= len(c.in) && c.in[c.i] == '\\' && c.in[c.i+1] == 'u' {
		c.i += 2
		if r, ok := c.hex4(); ok && r >= 0xdc00 && r <= 0xdfff {
			return r, true
		}
	}
	c.i = save
	return 0, false
}

// exactNumber returns the canonical decimal form of JSON number s:
// "<sign><digits>e<exponent>" with no leading or trailing zero digit, or
// "0". Exponents beyond ±1e9 are refused.
func exactNumber(s string) (string, bool) {
	if !validJSONNumber(s) {
		return "", false
	}
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	mant, exp := s, int64(0)
	if k := strings.IndexAny(s, "eE"); k >= 0 {
		e, err := strconv.ParseInt(strings.TrimPrefix(s[k+1:], "+"), 10, 64)
		if err != nil || e > 1e9 || e < -1e9 {
			return "", false
		}
		mant, exp = s[:k], e
	}
	digits := mant
	if k := strings.IndexByte(mant, '.'); k >= 0 {
		digits = mant[:k] + mant[k+1:]
		exp -= int64(len(mant) - k - 1)
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return "0", true
	}
	t := strings.TrimRight(digits, "0")
	exp += int64(len(digits) - len(t))
	if neg {
		t = "-" + t
	}
	return t + "e" + strconv.FormatInt(exp, 10), true
}

// looseNumber returns s as a 64-bit float's shortest form, if s is a JSON
// number (overflow reads as ±Inf, underflow as 0).
func looseNumber(s string) (string, bool) {
	if !validJSONNumber(s) {
		return "", false
	}
	f, _ := strconv.ParseFloat(s, 64) // s is valid; ErrRange still yields ±Inf or 0
	if f == 0 {
		f = 0 // -0 == 0
	}
	return strconv.FormatFloat(f, 'g', -1, 64), true
}

// validJSONNumber reports whether s matches the RFC 8259 number grammar.
func validJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}
