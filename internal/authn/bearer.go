// This file implements bearer token extraction per RFC 6750 §2.1 (header
// only; §2.2 and §2.3 are refused). See https://www.rfc-editor.org/rfc/rfc6750#section-2

package authn

import (
	"net/http"
	"net/url"
	"strings"
)

// bearerToken returns the b64token of the request's single Authorization
// header; one longer than maxLen is refused before it is looked at. The
// token never appears in the returned *Error.
func bearerToken(h http.Header, maxLen int) (string, *Error) {
	vals := h["Authorization"]
	switch len(vals) {
	case 0:
		return "", reject(ReasonMissing, nil)
	case 1:
	default:
		return "", reject(ReasonMultipleHeaders, nil)
	}
	return parseBearer(vals[0], maxLen)
}

// BearerToken returns the bearer token of a request that Authenticate
// accepted, or "" when it carries none. The gateway uses it to make sure
// the token's bytes reach neither the upstream nor the client's answers;
// it must never be logged.
func BearerToken(h http.Header) string {
	t, err := bearerToken(h, 1<<20)
	if err != nil {
		return ""
	}
	return t
}

// parseBearer parses `Bearer 1*SP b64token`. The scheme is case-insensitive
// (RFC 9110 §11.1); another scheme means no bearer credentials at all
// (RFC 6750 §3.1: no error code).
func parseBearer(v string, maxLen int) (string, *Error) {
	v = strings.Trim(v, " \t")
	if v == "" {
		return "", reject(ReasonMissing, nil)
	}
	const scheme = "Bearer"
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", reject(ReasonUnsupportedScheme, nil)
	}
	rest := v[len(scheme):]
	if rest == "" {
		return "", reject(ReasonMalformedHeader, errEmptyBearer)
	}
	if rest[0] != ' ' {
		if isTokenChar(rest[0]) { // "Bearerx…" is another scheme
			return "", reject(ReasonUnsupportedScheme, nil)
		}
		return "", reject(ReasonMalformedHeader, errBearerSyntax)
	}
	tok := strings.TrimLeft(rest, " ")
	if len(tok) > maxLen {
		return "", reject(ReasonTooLarge, nil)
	}
	if !isB64Token(tok) {
		return "", reject(ReasonMalformedHeader, errBearerSyntax)
	}
	return tok, nil
}

var (
	errEmptyBearer  = errorString("empty bearer token")
	errBearerSyntax = errorString("bearer token is not a b64token")
)

type errorString string

func (e errorString) Error() string { return string(e) }

// isB64Token reports whether s matches RFC 6750's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
func isB64Token(s string) bool {
	i := 0
	for i < len(s) && isB64Char(s[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i == len(s)
}

func isB64Char(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

// isTokenChar reports whether c is an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	return isB64Char(c) && c != '/' || strings.IndexByte("!#$%&'*^`|", c) >= 0
}

// hasQueryToken reports whether the raw query carries an access_token
// parameter (RFC 6750 §2.3), however it is escaped. It allocates only when
// the query mentions the name at all.
func hasQueryToken(rawQuery string) bool {
	if rawQuery == "" {
		return false
	}
	if !strings.Contains(rawQuery, "access_token") && !strings.Contains(rawQuery, "%") {
		return false
	}
	for part := range strings.SplitSeq(rawQuery, "&") {
		for p := range strings.SplitSeq(part, ";") {
			key, _, _ := strings.Cut(p, "=")
			if k, err := url.QueryUnescape(key); err == nil {
				key = k
			}
			if key == "access_token" {
				return true
			}
		}
	}
	return false
}
