package authn

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// A strict reader for the JSON objects mcpgate interprets: JOSE headers,
// JWT claims, JWKS documents and introspection answers.
//
// encoding/json matches member names case-insensitively and keeps the last
// of two duplicates, so {"aud":"a","AUD":"b"} would be read differently by
// different parsers. Here names are exact, and any two names in one object
// that are equal ignoring case (or equal after unescaping) are an error at
// the top level; nested objects reject exact duplicates.

const (
	maxJSONDepth = 32  // nesting levels below the top object
	maxMembers   = 256 // members in one object (bounds the duplicate check)
)

// member is one name/value pair of an object; value is the raw JSON.
type member struct {
	name  string
	value []byte
}

type object []member

// get returns the raw value of the member named exactly name.
func (o object) get(name string) ([]byte, bool) {
	for i := range o {
		if o[i].name == name {
			return o[i].value, true
		}
	}
	return nil, false
}

// checkRegistered rejects a member whose name differs only in case from one
// of names (which the caller interprets), e.g. "Aud" next to, or instead
// of, "aud".
func (o object) checkRegistered(names ...string) error {
	for i := range o {
		for _, n := range names {
			if o[i].name != n && len(o[i].name) == len(n) && bytes.EqualFold([]byte(o[i].name), []byte(n)) {
				return errCaseVariant
			}
		}
	}
	return nil
}

// parseObject parses data, which must be exactly one JSON object.
func parseObject(data []byte) (object, error) {
	if !json.Valid(data) {
		return nil, errJSON
	}
	s := scanner{data: data}
	s.skipWS()
	if s.i >= len(data) || data[s.i] != '{' {
		return nil, errNotObject
	}
	return s.object(0, true)
}

// scanner walks JSON that json.Valid has already accepted, so it only has
// to track structure, not report syntax errors.
type scanner struct {
	data []byte
	i    int
}

func (s *scanner) skipWS() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object reads an object starting at '{'. At depth 0 it collects members and
// rejects names equal ignoring case; deeper it rejects exact duplicates only.
func (s *scanner) object(depth int, collect bool) (object, error) {
	if depth > maxJSONDepth {
		return nil, errTooDeep
	}
	s.i++ // '{'
	var members object
	var names [][]byte
	for {
		s.skipWS()
		if s.data[s.i] == '}' {
			s.i++
			return members, nil
		}
		if s.data[s.i] == ',' {
			s.i++
			s.skipWS()
		}
		start := s.i
		s.skipString()
		name, err := unquote(s.data[start:s.i])
		if err != nil {
			return nil, err
		}
		if len(names) >= maxMembers {
			return nil, errTooMany
		}
		for _, prev := range names {
			if bytes.Equal(prev, name) || (depth == 0 && bytes.EqualFold(prev, name)) {
				return nil, errDuplicate
			}
		}
		names = append(names, name)
		s.skipWS()
		s.i++ // ':'
		s.skipWS()
		vstart := s.i
		if err := s.value(depth + 1); err != nil {
			return nil, err
		}
		if collect {
			members = append(members, member{name: string(name), value: s.data[vstart:s.i]})
		}
		s.skipWS()
	}
}

func (s *scanner) value(depth int) error {
	switch s.data[s.i] {
	case '{':
		_, err := s.object(depth, false)
		return err
	case '[':
		return s.array(depth)
	case '"':
		s.skipString()
		return nil
	}
	for s.i < len(s.data) { // number, true, false, null
		switch s.data[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return nil
		}
		s.i++
	}
	return nil
}

func (s *scanner) array(depth int) error {
	if depth > maxJSONDepth {
		return errTooDeep
	}
	s.i++ // '['
	for {
		s.skipWS()
		switch s.data[s.i] {
		case ']':
			s.i++
			return nil
		case ',':
			s.i++
			s.skipWS()
		}
		if err := s.value(depth + 1); err != nil {
			return err
		}
	}
}

// skipString advances past the string starting at '"'.
func (s *scanner) skipString() {
	s.i++
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case '\\':
			s.i += 2
		case '"':
			s.i++
			return
		default:
			s.i++
		}
	}
}

// unquote decodes a raw JSON string (quotes included). It refuses invalid
// UTF-8, which encoding/json would silently replace.
func unquote(raw []byte) ([]byte, error) {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		if !utf8.Valid(inner) {
			return nil, errJSON
		}
		return inner, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || !utf8.Valid(inner) {
		return nil, errJSON
	}
	return []byte(s), nil
}

// jsonString reads a JSON string value.
func jsonString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	b, err := unquote(raw)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// jsonStrings reads a string or an array of strings (the shape of "aud").
func jsonStrings(raw []byte) ([]string, bool) {
	if len(raw) > 0 && raw[0] == '"' {
		s, ok := jsonString(raw)
		if !ok {
			return nil, false
		}
		return []string{s}, true
	}
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	var vals []json.RawMessage
	if err := json.Unmarshal(raw, &vals); err != nil {
		return nil, false
	}
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		s, ok := jsonString(v)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// maxNumericDate is 9999-12-31T23:59:59Z: later values are refused rather
// than overflowing time arithmetic.
const maxNumericDate = 253402300799

// numericDate reads an RFC 7519 NumericDate: non-negative seconds since the
// epoch, possibly fractional.
func numericDate(raw []byte) (time.Time, bool) {
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' {
		return time.Time{}, false
	}
	if bytes.ContainsAny(raw, ".eE") {
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || f < 0 || f > maxNumericDate {
			return time.Time{}, false
		}
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), true
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n > maxNumericDate {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}
