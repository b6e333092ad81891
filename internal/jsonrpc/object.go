package jsonrpc

import "iter"

// memberIter walks the members of a JSON object, validating the syntax of
// everything it passes (member names are not checked for duplicates).
type memberIter struct {
	s    scanner
	done bool
}

func newMemberIter(obj []byte) memberIter {
	return memberIter{s: scanner{data: obj, maxDepth: maxDepthCap}}
}

// next returns the next member's raw name (between the quotes), whether it
// has escapes, and its raw value. ok is false at the end of the object and
// on malformed input.
func (it *memberIter) next() (name []byte, escaped bool, value []byte, ok bool) {
	s := &it.s
	if it.done {
		return nil, false, nil, false
	}
	if s.pos == 0 {
		s.skipWS()
		if s.pos >= len(s.data) || s.data[s.pos] != '{' {
			return it.stop()
		}
		s.pos++
		s.skipWS()
		if s.pos < len(s.data) && s.data[s.pos] == '}' {
			return it.stop()
		}
	} else {
		s.skipWS()
		if s.pos >= len(s.data) || s.data[s.pos] != ',' {
			return it.stop() // '}' or malformed
		}
		s.pos++
		s.skipWS()
	}
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return it.stop()
	}
	start := s.pos
	escaped, err := s.str()
	if err != nil {
		return it.stop()
	}
	name = s.data[start+1 : s.pos-1]
	s.skipWS()
	if s.pos >= len(s.data) || s.data[s.pos] != ':' {
		return it.stop()
	}
	s.pos++
	s.skipWS()
	start = s.pos
	if err := s.value(1); err != nil {
		return it.stop()
	}
	return name, escaped, s.data[start:s.pos:s.pos], true
}

func (it *memberIter) stop() ([]byte, bool, []byte, bool) {
	it.done = true
	return nil, false, nil, false
}

// Lookup returns the raw value of the member of obj whose decoded name is
// exactly key (case-sensitive). obj must be an object that Decode has
// validated, such as Message.Params or a value found in it; on other input
// Lookup never panics but its answer is meaningful only up to the first
// syntax error.
func Lookup(obj []byte, key string) (value []byte, ok bool) {
	it := newMemberIter(obj)
	var buf [64]byte
	for {
		name, escaped, v, ok := it.next()
		if !ok {
			return nil, false
		}
		if escaped {
			name = appendUnescaped(buf[:0], name)
		}
		if string(name) == key {
			return v, true
		}
	}
}

// Members iterates over the members of obj in order, yielding each decoded
// name and raw value. obj must be an object that Decode has validated; on
// other input iteration stops at the first syntax error.
func Members(obj []byte) iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		it := newMemberIter(obj)
		for {
			name, escaped, v, ok := it.next()
			if !ok {
				return
			}
			var n string
			if escaped {
				n = string(appendUnescaped(nil, name))
			} else {
				n = string(name)
			}
			if !yield(n, v) {
				return
			}
		}
	}
}

// DecodeString decodes raw, which must be exactly one JSON string (quotes
// included, no surrounding space), into a Go string. Any other input,
// including a string with invalid UTF-8 or an unpaired surrogate escape,
// yields an *Error with CodeInvalidParams.
func DecodeString(raw []byte) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", &Error{Code: CodeInvalidParams, Message: "expected a JSON string"}
	}
	s := scanner{data: raw}
	escaped, err := s.str()
	if err != nil || s.pos != len(raw) {
		return "", &Error{Code: CodeInvalidParams, Message: "invalid JSON string"}
	}
	body := raw[1 : len(raw)-1]
	if escaped {
		return string(appendUnescaped(make([]byte, 0, len(body)), body)), nil
	}
	return string(body), nil
}

// Elements iterates over the raw elements of arr, a JSON array that Decode
// has validated (such as a list inside Message.Result). On other input
// iteration stops at the first syntax error.
func Elements(arr []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		s := scanner{data: arr, maxDepth: maxDepthCap}
		s.skipWS()
		if s.pos >= len(s.data) || s.data[s.pos] != '[' {
			return
		}
		s.pos++
		s.skipWS()
		if s.pos < len(s.data) && s.data[s.pos] == ']' {
			return
		}
		for {
			start := s.pos
			if err := s.value(1); err != nil {
				return
			}
			if !yield(s.data[start:s.pos:s.pos]) {
				return
			}
			s.skipWS()
			if s.pos >= len(s.data) || s.data[s.pos] != ',' {
				return
			}
			s.pos++
			s.skipWS()
		}
	}
}
