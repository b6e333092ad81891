package redact

import (
	"bytes"
	"fmt"
	"slices"
	"unicode/utf8"
)

// maxNesting bounds the depth of arrays and objects in one JSON text.
const maxNesting = 10000

// repl replaces in[start:end] (a whole string or number token) by data.
type repl struct {
	start, end int
	data       []byte
	prio       int // at equal start, the higher wins
}

// walker reads one JSON value (RFC 8259 grammar; invalid UTF-8 inside
// strings is tolerated and kept, as encoding/json does), scans every
// string and records the replacements of the changed ones.
type walker struct {
	sc      *scan
	in      []byte
	pos     int
	depth   int // nested decodes of the enclosing strings
	nest    int
	counts  []int
	repls   []repl
	scratch []byte
}

type syntaxError struct {
	off    int
	reason string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("%v at offset %d: %s", ErrInvalidJSON, e.off, e.reason)
}

func (e *syntaxError) Unwrap() error { return ErrInvalidJSON }

func (w *walker) fail(reason string) error { return &syntaxError{off: w.pos, reason: reason} }

func (w *walker) run() error {
	w.ws()
	if err := w.value(); err != nil {
		return err
	}
	w.ws()
	if w.pos != len(w.in) {
		return w.fail("data after the value")
	}
	return nil
}

// output splices the replacements into the input.
func (w *walker) output() ([]byte, bool) {
	if len(w.repls) == 0 {
		return w.in, false
	}
	slices.SortFunc(w.repls, func(a, b repl) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return b.prio - a.prio
	})
	out := make([]byte, 0, len(w.in)+64)
	prev := 0
	for _, r := range w.repls {
		if r.start < prev { // a lower-priority replacement of the same token
			continue
		}
		out = append(out, w.in[prev:r.start]...)
		out = append(out, r.data...)
		prev = r.end
	}
	return append(out, w.in[prev:]...), true
}

func (w *walker) ws() {
	for w.pos < len(w.in) {
		switch w.in[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

func (w *walker) value() error {
	if w.pos >= len(w.in) {
		return w.fail("unexpected end of input")
	}
	switch c := w.in[w.pos]; {
	case c == '{':
		return w.object()
	case c == '[':
		return w.array()
	case c == '"':
		_, err := w.str(nil, false)
		return err
	case c == 't':
		return w.literal("true")
	case c == 'f':
		return w.literal("false")
	case c == 'n':
		return w.literal("null")
	case c == '-' || isDigit(c):
		return w.number()
	}
	return w.fail("unexpected character")
}

func (w *walker) literal(lit string) error {
	if !bytes.HasPrefix(w.in[w.pos:], []byte(lit)) {
		return w.fail("invalid literal")
	}
	w.pos += len(lit)
	return nil
}

func (w *walker) enter() error {
	w.nest++
	if w.nest > maxNesting {
		return w.fail("nested too deeply")
	}
	w.pos++
	return nil
}

func (w *walker) array() error {
	if err := w.enter(); err != nil {
		return err
	}
	w.ws()
	if w.pos < len(w.in) && w.in[w.pos] == ']' {
		w.pos++
		w.nest--
		return nil
	}
	for {
		w.ws()
		if err := w.value(); err != nil {
			return err
		}
		w.ws()
		if w.pos >= len(w.in) {
			return w.fail("unexpected end of input in array")
		}
		switch w.in[w.pos] {
		case ',':
			w.pos++
		case ']':
			w.pos++
			w.nest--
			return nil
		default:
			return w.fail("expected , or ] in array")
		}
	}
}

// object walks an object. It also recognises a Google service-account key
// ("type": "service_account" with "private_key"/"private_key_id" string
// members) and replaces those values whole.
func (w *walker) object() error {
	if err := w.enter(); err != nil {
		return err
	}
	w.ws()
	if w.pos < len(w.in) && w.in[w.pos] == '}' {
		w.pos++
		w.nest--
		return nil
	}
	var serviceAccount bool
	var keyTokens [][2]int
	for {
		w.ws()
		if w.pos >= len(w.in) || w.in[w.pos] != '"' {
			return w.fail("expected member name")
		}
		key, err := w.str(nil, true)
		if err != nil {
			return err
		}
		w.ws()
		if w.pos >= len(w.in) || w.in[w.pos] != ':' {
			return w.fail("expected : after member name")
		}
		w.pos++
		w.ws()
		if w.pos < len(w.in) && w.in[w.pos] == '"' {
			start := w.pos
			v, err := w.str(key, false)
			if err != nil {
				return err
			}
			switch string(key) {
			case "type":
				serviceAccount = serviceAccount || string(v) == "service_account"
			case "private_key", "private_key_id":
				keyTokens = append(keyTokens, [2]int{start, w.pos})
			}
		} else if err := w.value(); err != nil {
			return err
		}
		w.ws()
		if w.pos >= len(w.in) {
			return w.fail("unexpected end of input in object")
		}
		switch w.in[w.pos] {
		case ',':
			w.pos++
			continue
		case '}':
			w.pos++
			w.nest--
		default:
			return w.fail("expected , or } in object")
		}
		break
	}
	if d := &w.sc.s.dets[w.sc.s.gcp]; serviceAccount && len(keyTokens) > 0 && d.enabled {
		w.counts[w.sc.s.gcp]++
		if d.action != ActionAudit {
			for _, t := range keyTokens {
				w.repls = append(w.repls, repl{start: t[0], end: t[1], data: d.jsonLbl, prio: 1})
			}
		}
	}
	return nil
}

// strStop marks the bytes that end the fast scan of a string.
func strStop(c byte) bool { return c == '"' || c == '\\' || c < 0x20 }

// str reads the string token at w.pos, scans its decoded text (with key
// as member context unless isKey) and records a replacement if it
// changed. It returns the decoded text; for a value it is valid only until
// the next call.
func (w *walker) str(key []byte, isKey bool) ([]byte, error) {
	start := w.pos
	i := start + 1
	escaped := false
	for {
		for i < len(w.in) && !strStop(w.in[i]) {
			i++
		}
		if i >= len(w.in) {
			w.pos = i
			return nil, w.fail("unterminated string")
		}
		c := w.in[i]
		if c == '"' {
			break
		}
		if c < 0x20 {
			w.pos = i
			return nil, w.fail("control character in string")
		}
		escaped = true
		if i+1 >= len(w.in) {
			w.pos = i
			return nil, w.fail("unterminated string")
		}
		switch w.in[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if i+6 > len(w.in) || !isHex4(w.in[i+2:i+6]) {
				w.pos = i
				return nil, w.fail("invalid \\u escape")
			}
			i += 6
		default:
			w.pos = i
			return nil, w.fail("invalid escape")
		}
	}
	end := i + 1
	w.pos = end
	raw := w.in[start+1 : i]
	text := raw
	if escaped {
		if isKey {
			text = decodeString(nil, raw)
		} else {
			w.scratch = decodeString(slices.Grow(w.scratch[:0], len(raw)), raw)
			text = w.scratch
		}
	}
	if isKey {
		key = nil
	}
	if out, changed := w.sc.text(text, key, w.depth, w.counts); changed {
		w.repls = append(w.repls, repl{start: start, end: end, data: appendJSONString(nil, out)})
	}
	return text, nil
}

// number reads a number token; one that contains a live credential is
// replaced by the redaction label as a string.
func (w *walker) number() error {
	start := w.pos
	in := w.in
	i := start
	if in[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(in) && isDigit(in[i]) {
			i++
		}
		return i > j
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case !digits():
		w.pos = i
		return w.fail("invalid number")
	}
	if i < len(in) && in[i] == '.' {
		i++
		if !digits() {
			w.pos = i
			return w.fail("invalid number")
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if !digits() {
			w.pos = i
			return w.fail("invalid number")
		}
	}
	w.pos = i
	tok := in[start:i]
	for _, v := range w.sc.live {
		if n := bytes.Count(tok, v.b); n > 0 {
			w.counts[liveDet] += n
			w.repls = append(w.repls, repl{start: start, end: i, data: w.sc.s.dets[liveDet].jsonLbl})
			break
		}
	}
	return nil
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !(isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case isDigit(c):
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// decodeUnicode decodes \uXXXX (and a following low surrogate) at b[0:];
// a lone surrogate becomes U+FFFD, as with encoding/json. It returns the
// bytes consumed.
func decodeUnicode(dst, b []byte) ([]byte, int) {
	r := hex4(b[2:])
	if r >= 0xD800 && r < 0xDC00 && len(b) >= 12 && b[6] == '\\' && b[7] == 'u' && isHex4(b[8:]) {
		if lo := hex4(b[8:]); lo >= 0xDC00 && lo < 0xE000 {
			return utf8.AppendRune(dst, 0x10000+(r-0xD800)<<10+(lo-0xDC00)), 12
		}
	}
	if r >= 0xD800 && r < 0xE000 {
		r = utf8.RuneError
	}
	return utf8.AppendRune(dst, r), 6
}

// decodeString appends the decoded content of a validated string token.
func decodeString(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '\\')
		if j < 0 {
			return append(dst, raw[i:]...)
		}
		dst = append(dst, raw[i:i+j]...)
		i += j
		if raw[i+1] == 'u' {
			var n int
			dst, n = decodeUnicode(dst, raw[i:])
			i += n
			continue
		}
		dst = append(dst, unescapeByte(raw[i+1]))
		i += 2
	}
	return dst
}

func unescapeByte(c byte) byte {
	switch c {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return c // " \ /
}

// looseUnescape decodes the valid JSON escape sequences of t and keeps
// any other backslash as it is. ok is false if t has none.
func looseUnescape(t []byte) ([]byte, bool) {
	i := bytes.IndexByte(t, '\\')
	if i < 0 {
		return nil, false
	}
	var dst []byte
	prev := 0
	for ; i < len(t)-1; i++ {
		if t[i] != '\\' {
			continue
		}
		c := t[i+1]
		n := 2
		switch {
		case c == 'u' && i+6 <= len(t) && isHex4(t[i+2:i+6]):
			dst = append(dst, t[prev:i]...)
			dst, n = decodeUnicode(dst, t[i:])
		case bytes.IndexByte([]byte(`"\/bfnrt`), c) >= 0:
			dst = append(append(dst, t[prev:i]...), unescapeByte(c))
		default:
			continue
		}
		i += n - 1
		prev = i + 1
	}
	if dst == nil {
		return nil, false
	}
	return append(dst, t[prev:]...), true
}

// appendJSONString appends b as a JSON string token.
func appendJSONString(dst, b []byte) []byte {
	dst = append(dst, '"')
	return append(appendJSONEscaped(dst, b), '"')
}

// appendJSONEscaped appends b escaped for the inside of a JSON string:
// " and \ and control characters escaped, U+2028 and U+2029 as \u
// escapes (for JavaScript readers), invalid UTF-8 bytes kept as they are
// (the input had them; encoding/json reads both the same way).
func appendJSONEscaped(dst, b []byte) []byte {
	const hex = "0123456789abcdef"
	prev := 0
	for i := 0; i < len(b); {
		c := b[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, b[prev:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			prev = i
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == '\u2028' || r == '\u2029':
			dst = append(append(dst, b[prev:i]...), '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		prev = i
	}
	return append(dst, b[prev:]...)
}
