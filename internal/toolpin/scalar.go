// This file implements the canonical strings and numbers of the fingerprint
// form: RFC 8259 strings and numbers read strictly and written in one
// spelling each. See https://www.rfc-editor.org/rfc/rfc8259#section-6 and
// https://www.rfc-editor.org/rfc/rfc8259#section-7.

package toolpin

import (
	"math/big"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// str reads a string (c.pos at '"') and returns it decoded. It rejects raw
// control characters, invalid UTF-8, unknown escapes and unpaired
// surrogate escapes: each would let two readers see different text.
func (c *canonicalizer) str() (string, error) {
	c.pos++ // opening quote
	start := c.pos
	// Fast path: no escapes.
	for c.pos < len(c.data) {
		b := c.data[c.pos]
		if b == '"' {
			s := string(c.data[start:c.pos])
			c.pos++
			return s, nil
		}
		if b == '\\' {
			break
		}
		if err := c.rawChar(); err != nil {
			return "", err
		}
	}
	buf := append([]byte(nil), c.data[start:c.pos]...)
	for c.pos < len(c.data) {
		b := c.data[c.pos]
		switch {
		case b == '"':
			c.pos++
			return string(buf), nil
		case b == '\\':
			var err error
			if buf, err = c.escape(buf); err != nil {
				return "", err
			}
		default:
			from := c.pos
			if err := c.rawChar(); err != nil {
				return "", err
			}
			buf = append(buf, c.data[from:c.pos]...)
		}
	}
	return "", c.fail(c.pos, "unterminated string")
}

// rawChar advances over one unescaped character of a string.
func (c *canonicalizer) rawChar() error {
	b := c.data[c.pos]
	if b < 0x20 {
		return c.fail(c.pos, "control character in string")
	}
	if b < utf8.RuneSelf {
		c.pos++
		return nil
	}
	r, size := utf8.DecodeRune(c.data[c.pos:])
	if r == utf8.RuneError && size <= 1 {
		return c.fail(c.pos, "invalid UTF-8")
	}
	c.pos += size
	return nil
}

// escape decodes one escape sequence (c.pos at '\') onto buf.
func (c *canonicalizer) escape(buf []byte) ([]byte, error) {
	at := c.pos
	if c.pos+1 >= len(c.data) {
		return nil, c.fail(at, "unterminated string")
	}
	e := c.data[c.pos+1]
	c.pos += 2
	switch e {
	case '"', '\\', '/':
		return append(buf, e), nil
	case 'b':
		return append(buf, '\b'), nil
	case 'f':
		return append(buf, '\f'), nil
	case 'n':
		return append(buf, '\n'), nil
	case 'r':
		return append(buf, '\r'), nil
	case 't':
		return append(buf, '\t'), nil
	case 'u':
	default:
		return nil, c.fail(at, "invalid escape")
	}
	r, ok := c.hex4()
	if !ok {
		return nil, c.fail(at, "invalid \\u escape")
	}
	switch {
	case utf16.IsSurrogate(r) && r < 0xDC00: // high surrogate: a low one must follow
		if c.pos+1 < len(c.data) && c.data[c.pos] == '\\' && c.data[c.pos+1] == 'u' {
			c.pos += 2
			lo, ok := c.hex4()
			if ok && 0xDC00 <= lo && lo <= 0xDFFF {
				return utf8.AppendRune(buf, utf16.DecodeRune(r, lo)), nil
			}
		}
		return nil, c.fail(at, "unpaired surrogate escape")
	case utf16.IsSurrogate(r):
		return nil, c.fail(at, "unpaired surrogate escape")
	}
	return utf8.AppendRune(buf, r), nil
}

func (c *canonicalizer) hex4() (rune, bool) {
	if c.pos+4 > len(c.data) {
		return 0, false
	}
	var r rune
	for _, b := range c.data[c.pos : c.pos+4] {
		var v byte
		switch {
		case '0' <= b && b <= '9':
			v = b - '0'
		case 'a' <= b && b <= 'f':
			v = b - 'a' + 10
		case 'A' <= b && b <= 'F':
			v = b - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	c.pos += 4
	return r, true
}

// appendString writes s (valid UTF-8) as a canonical JSON string: only '"',
// '\' and control characters are escaped (the short forms where JSON has
// them, else \u00xx); everything else is written as UTF-8. No Unicode
// normalisation is applied: different code points are different text.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b == '"' || b == '\\':
			dst = append(dst, '\\', b)
		case b == '\b':
			dst = append(dst, '\\', 'b')
		case b == '\f':
			dst = append(dst, '\\', 'f')
		case b == '\n':
			dst = append(dst, '\\', 'n')
		case b == '\r':
			dst = append(dst, '\\', 'r')
		case b == '\t':
			dst = append(dst, '\\', 't')
		case b < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
		default:
			dst = append(dst, b)
		}
	}
	return append(dst, '"')
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// number reads a number per the RFC 8259 grammar and returns its canonical
// form, which is exact: two numbers have the same form if and only if they
// are equal as decimals. The form is the significant digits without
// leading or trailing zeros, then "e" and the decimal exponent unless it
// is 0: 1, 1.0, 10e-1 and 0.1e1 are all "1"; 100 is "1e2"; 1.5 is
// "15e-1"; -0 is "0". Integers beyond 2^53 keep every digit.
func (c *canonicalizer) number() ([]byte, error) {
	d := c.data
	start := c.pos
	neg := d[c.pos] == '-'
	if neg {
		c.pos++
	}
	intStart := c.pos
	switch {
	case c.pos < len(d) && d[c.pos] == '0':
		c.pos++
	case c.pos < len(d) && isDigit(d[c.pos]):
		c.digits()
	default:
		return nil, c.fail(start, "invalid number")
	}
	intDigits := d[intStart:c.pos]
	var frac []byte
	if c.pos < len(d) && d[c.pos] == '.' {
		c.pos++
		fs := c.pos
		if c.digits() == 0 {
			return nil, c.fail(start, "invalid number")
		}
		frac = d[fs:c.pos]
	}
	expNeg := false
	var expDigits []byte
	if c.pos < len(d) && (d[c.pos] == 'e' || d[c.pos] == 'E') {
		c.pos++
		if c.pos < len(d) && (d[c.pos] == '+' || d[c.pos] == '-') {
			expNeg = d[c.pos] == '-'
			c.pos++
		}
		es := c.pos
		if c.digits() == 0 {
			return nil, c.fail(start, "invalid number")
		}
		expDigits = d[es:c.pos]
	}
	return canonicalNumber(neg, intDigits, frac, expNeg, expDigits), nil
}

func (c *canonicalizer) digits() int {
	n := 0
	for c.pos < len(c.data) && isDigit(c.data[c.pos]) {
		c.pos++
		n++
	}
	return n
}

// canonicalNumber computes the form described at number. Its only
// allocation is the result (but for exponents of more than 15 digits).
func canonicalNumber(neg bool, intDigits, frac []byte, expNeg bool, expDigits []byte) []byte {
	// The significant digits are those of intDigits then frac, without
	// leading or trailing zeros.
	n := len(intDigits) + len(frac)
	digit := func(i int) byte {
		if i < len(intDigits) {
			return intDigits[i]
		}
		return frac[i-len(intDigits)]
	}
	lead := 0
	for lead < n && digit(lead) == '0' {
		lead++
	}
	if lead == n {
		return []byte("0")
	}
	trail := 0
	for digit(n-1-trail) == '0' {
		trail++
	}
	// exponent = ±expDigits − len(frac) + trail
	adjust := int64(trail) - int64(len(frac))
	out := make([]byte, 0, 1+n-lead-trail+1+20)
	if neg {
		out = append(out, '-')
	}
	for i := lead; i < n-trail; i++ {
		out = append(out, digit(i))
	}
	if len(expDigits) <= 15 { // fits an int64 with room for adjust
		var e int64
		for _, b := range expDigits { // digits only; none → 0
			e = e*10 + int64(b-'0')
		}
		if expNeg {
			e = -e
		}
		if e += adjust; e != 0 {
			out = append(out, 'e')
			out = strconv.AppendInt(out, e, 10)
		}
		return out
	}
	e, _ := new(big.Int).SetString(string(expDigits), 10)
	if expNeg {
		e.Neg(e)
	}
	if e.Add(e, big.NewInt(adjust)); e.Sign() != 0 {
		out = append(out, 'e')
		out = e.Append(out, 10)
	}
	return out
}
