package audit

// A hand-written encoder for Event, so that recording a request does not
// pay for encoding/json's reflection.
//
// The output must be byte for byte what json.Marshal gives for the same
// Event: lines already written were produced by json.Marshal, [Verify]
// compares a checkpoint line with json.Marshal's, and docs/audit.md
// describes the format json.Marshal produces. The rules copied from
// encoding/json (Go 1.26, encode.go and indent.go) are:
//
//   - fields in struct order, named by their tags; an omitempty field is
//     left out when it is "", 0, a nil or empty slice or a nil pointer
//     (-0.0 == 0, so a negative zero float is left out too);
//   - strings escaped HTML-safe: '"' and '\\' with a backslash, \b \f \n
//     \r \t in short form, other bytes below 0x20 and '<', '>', '&' as
//     \u00XX, U+2028 and U+2029 as \u2028 and \u2029, each byte of invalid
//     UTF-8 as \ufffd; everything else (DEL included) as is;
//   - time.Time through its MarshalJSON: RFC 3339 with nanoseconds, an
//     error for a year outside [0,9999] or a zone offset of 24 hours or
//     more;
//   - float64 as ES6 does: strconv 'f' format, or 'e' below 1e-6 or from
//     1e21 on with "e-07" shortened to "e-7"; an error for NaN and ±Inf;
//   - json.RawMessage (Arguments) validated, then compacted with '<', '>',
//     '&', U+2028 and U+2029 escaped, as json.Marshal does with the output
//     of every MarshalJSON.
//
// encode_test.go compares the two on a table and by fuzzing.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// Errors for values json.Marshal refuses. They never quote the value: it
// may be the caller's data (the arguments of a tool call).
var (
	errTimeYear     = errors.New("time: year outside of range [0,9999]")
	errTimeZone     = errors.New("time: timezone hour outside of range [0,23]")
	errArgsNotJSON  = errors.New("arguments: not valid JSON")
	errFloatNotJSON = errors.New("unsupported float value (NaN or infinity)")
)

// appendEventJSON appends the JSON encoding of e to dst: exactly the bytes
// json.Marshal(e) gives. Where json.Marshal fails (a NaN or infinite
// float, a time it cannot encode, Arguments that are not valid JSON), it
// returns an error and dst unchanged.
func appendEventJSON(dst []byte, e *Event) ([]byte, error) {
	n := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, `,"prev":`...)
	dst = appendJSONString(dst, e.Prev)
	dst, err := appendEventBody(dst, e)
	if err != nil {
		return dst[:n], err
	}
	return dst, nil
}

// appendEventBody appends the encoding of e from the field after Prev to
// the closing brace: what follows `{"seq":N,"prev":"…"` in json.Marshal's
// output. On error dst is returned unchanged.
func appendEventBody(dst []byte, e *Event) ([]byte, error) {
	n := len(dst)
	var err error
	dst = append(dst, `,"time":`...)
	if dst, err = appendTime(dst, e.Time); err != nil {
		return dst[:n], err
	}
	dst = append(dst, `,"kind":`...)
	dst = appendJSONString(dst, string(e.Kind))
	dst = append(dst, `,"request_id":`...)
	dst = appendJSONString(dst, e.RequestID)
	dst = appendOptString(dst, `,"route":`, e.Route)
	dst = appendOptString(dst, `,"upstream":`, e.Upstream)
	dst = appendOptString(dst, `,"remote_ip":`, e.RemoteIP)
	dst = appendOptString(dst, `,"http_method":`, e.HTTPMethod)
	dst = appendOptString(dst, `,"protocol_version":`, e.ProtocolVersion)
	dst = appendOptString(dst, `,"session":`, e.Session)
	dst = appendOptString(dst, `,"issuer":`, e.Issuer)
	dst = appendOptString(dst, `,"subject":`, e.Subject)
	dst = appendOptString(dst, `,"client_id":`, e.ClientID)
	dst = appendOptStrings(dst, `,"actor":`, e.Actor)
	dst = appendOptString(dst, `,"token":`, e.Token)
	dst = appendOptStrings(dst, `,"scopes":`, e.Scopes)
	dst = appendOptString(dst, `,"method":`, e.Method)
	dst = appendOptString(dst, `,"rpc_id":`, e.RPCID)
	dst = appendOptString(dst, `,"tool":`, e.Tool)
	dst = appendOptString(dst, `,"prompt":`, e.Prompt)
	dst = appendOptString(dst, `,"resource":`, e.Resource)
	dst = appendOptString(dst, `,"args_digest":`, e.ArgsDigest)
	if len(e.Arguments) > 0 {
		dst = append(dst, `,"arguments":`...)
		if dst, err = appendCompactHTML(dst, e.Arguments); err != nil {
			return dst[:n], err
		}
	}
	dst = append(dst, `,"decision":`...)
	dst = appendJSONString(dst, e.Decision)
	dst = appendOptString(dst, `,"rule":`, e.Rule)
	dst = appendOptStrings(dst, `,"labels":`, e.Labels)
	dst = appendOptString(dst, `,"reason":`, e.Reason)
	dst = appendOptInt(dst, `,"status":`, int64(e.Status))
	dst = appendOptStrings(dst, `,"required_scopes":`, e.RequiredScopes)
	dst = appendOptInt(dst, `,"upstream_status":`, int64(e.UpstreamStatus))
	if dst, err = appendOptFloat(dst, `,"latency_ms":`, e.LatencyMS); err != nil {
		return dst[:n], err
	}
	if dst, err = appendOptFloat(dst, `,"upstream_ms":`, e.UpstreamMS); err != nil {
		return dst[:n], err
	}
	dst = appendOptInt(dst, `,"bytes":`, e.Bytes)
	dst = appendOptInt(dst, `,"filtered":`, int64(e.Filtered))
	dst = appendOptString(dst, `,"credential_mode":`, e.CredentialMode)
	dst = appendOptString(dst, `,"credential_id":`, e.CredentialID)
	if len(e.Findings) > 0 {
		dst = append(dst, `,"findings":[`...)
		for i := range e.Findings {
			f := &e.Findings[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"detector":`...)
			dst = appendJSONString(dst, f.Detector)
			dst = append(dst, `,"action":`...)
			dst = appendJSONString(dst, f.Action)
			dst = append(dst, `,"where":`...)
			dst = appendJSONString(dst, f.Where)
			dst = append(dst, `,"count":`...)
			dst = strconv.AppendInt(dst, int64(f.Count), 10)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = appendOptStrings(dst, `,"anomalies":`, e.Anomalies)
	if c := e.Checkpoint; c != nil {
		dst = append(dst, `,"checkpoint":{"key_id":`...)
		dst = appendJSONString(dst, c.KeyID)
		dst = append(dst, `,"reason":`...)
		dst = appendJSONString(dst, c.Reason)
		dst = append(dst, `,"signature":`...)
		dst = appendJSONString(dst, c.Signature)
		dst = append(dst, '}')
	}
	return append(dst, '}'), nil
}

// appendOptString appends key and s unless s is empty (omitempty).
func appendOptString(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return appendJSONString(append(dst, key...), s)
}

// appendOptStrings appends key and ss as an array unless ss is empty
// (omitempty: nil and empty alike).
func appendOptStrings(dst []byte, key string, ss []string) []byte {
	if len(ss) == 0 {
		return dst
	}
	dst = append(dst, key...)
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, s)
	}
	return append(dst, ']')
}

// appendOptInt appends key and v unless v is 0 (omitempty).
func appendOptInt(dst []byte, key string, v int64) []byte {
	if v == 0 {
		return dst
	}
	return strconv.AppendInt(append(dst, key...), v, 10)
}

// appendOptFloat appends key and f unless f is zero, positive or negative
// (omitempty). The error is for NaN and ±Inf.
func appendOptFloat(dst []byte, key string, f float64) ([]byte, error) {
	if f == 0 {
		return dst, nil
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, fmt.Errorf("%s %w", key[2:len(key)-2], errFloatNotJSON)
	}
	return appendJSONFloat(append(dst, key...), f), nil
}

// appendJSONFloat appends a finite f as encoding/json's float64 encoder
// does: like ES6 number to string, 'f' format except for magnitudes below
// 1e-6 or from 1e21 on, which take the 'e' format with a one-digit
// negative exponent unpadded ("1e-7", not "1e-07").
func appendJSONFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendTime appends t quoted as time.Time's MarshalJSON gives it
// (time.RFC3339Nano, the same formatter), refusing what MarshalJSON
// refuses: a year that is not four digits wide, a zone offset of 24 hours
// or more.
func appendTime(dst []byte, t time.Time) ([]byte, error) {
	dst = append(dst, '"')
	n := len(dst)
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	if dst[n+len("9999")] != '-' {
		return dst, errTimeYear
	}
	if dst[len(dst)-1] != 'Z' {
		c := dst[len(dst)-len("Z07:00")]
		h := dst[len(dst)-len("07:00"):]
		if ('0' <= c && c <= '9') || 10*(h[0]-'0')+(h[1]-'0') >= 24 {
			return dst, errTimeZone
		}
	}
	return append(dst, '"'), nil
}

// appendJSONString appends s quoted and escaped as encoding/json does with
// HTML escaping on (its appendString with escapeHTML).
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && !special8(s[i:i+8]) {
			i += 8
			continue
		}
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// special8 reports whether any of the 8 bytes of s (len(s) == 8) is one
// appendJSONString does not copy as is: below 0x20, '"', '\\', '<', '>',
// '&' or not ASCII. It tests the 8 bytes at once as a uint64 (each test
// is exact as to whether some byte matches).
func special8(s string) bool {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	zero := func(v uint64) uint64 { return (v - lsb) &^ v & msb } // some byte of v is 0
	nonASCII := x & msb
	control := (x - lsb*0x20) &^ x & msb
	escaped := zero(x^(lsb*'"')) | zero(x^(lsb*'\\')) | zero(x^(lsb*'<')) | zero(x^(lsb*'>')) | zero(x^(lsb*'&'))
	return nonASCII|control|escaped != 0
}

// appendCompactHTML appends raw, which must be valid JSON, without
// insignificant whitespace and with '<', '>', '&', U+2028 and U+2029
// escaped: what json.Marshal makes of a json.RawMessage (its
// appendCompact with escaping). Within valid JSON, whitespace outside
// strings is the only insignificant byte, and the escaped characters occur
// only inside strings. Invalid UTF-8 inside strings is copied as is, as
// encoding/json does.
func appendCompactHTML(dst, raw []byte) ([]byte, error) {
	if !json.Valid(raw) {
		return dst, errArgsNotJSON
	}
	start, inString := 0, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !inString {
			switch c {
			case '"':
				inString = true
			case ' ', '\t', '\n', '\r':
				dst = append(dst, raw[start:i]...)
				start = i + 1
			}
			continue
		}
		switch c {
		case '\\':
			i++ // the escaped byte is ASCII and ends nothing
		case '"':
			inString = false
		case '<', '>', '&':
			dst = append(dst, raw[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		case 0xE2:
			if i+2 < len(raw) && raw[i+1] == 0x80 && raw[i+2]&^1 == 0xA8 {
				dst = append(dst, raw[start:i]...)
				dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[raw[i+2]&0xF])
				i += 2
				start = i + 1
			}
		}
	}
	return append(dst, raw[start:]...), nil
}
