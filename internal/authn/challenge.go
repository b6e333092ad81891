// This file implements the Bearer WWW-Authenticate challenge of RFC 6750 §3
// with the resource_metadata parameter of RFC 9728 §5.1.
// See https://www.rfc-editor.org/rfc/rfc6750#section-3 and
// https://www.rfc-editor.org/rfc/rfc9728#section-5.1

package authn

import "strings"

// Challenge is a Bearer challenge for a WWW-Authenticate header.
type Challenge struct {
	// ResourceMetadata is the route's RFC 9728 metadata URL.
	ResourceMetadata string
	// Scopes the operation needs; tokens outside RFC 6749 scope-token
	// syntax are dropped.
	Scopes []string
	// Error is the RFC 6750 error code; "" when no token was presented.
	Error string
	// Description is human-readable; characters outside the RFC 6750
	// error_description set are replaced.
	Description string
}

// maxDescription bounds error_description.
const maxDescription = 256

// String renders the challenge, e.g.
//
//	Bearer resource_metadata="https://gw/.well-known/oauth-protected-resource/mcp", scope="a b", error="invalid_token", error_description="token expired"
//
// Empty parameters are omitted; with none, it is just "Bearer".
func (c Challenge) String() string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	param := func(name, value string) {
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		for i := 0; i < len(value); i++ {
			if value[i] == '"' || value[i] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(value[i])
		}
		b.WriteByte('"')
		sep = ", "
	}
	if c.ResourceMetadata != "" {
		param("resource_metadata", quotable(c.ResourceMetadata))
	}
	var scopes []string
	for _, s := range c.Scopes {
		if isScopeToken(s) {
			scopes = append(scopes, s)
		}
	}
	if len(scopes) > 0 {
		param("scope", strings.Join(scopes, " "))
	}
	if c.Error != "" && isErrorCode(c.Error) {
		param("error", c.Error)
	}
	if d := sanitizeDescription(c.Description); d != "" {
		param("error_description", d)
	}
	return b.String()
}

// isErrorCode: error = 1*( %x20-21 / %x23-5B / %x5D-7E ) (RFC 6750 §3).
func isErrorCode(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// sanitizeDescription maps s into the error_description character set
// (%x20-21 / %x23-5B / %x5D-7E): '"' becomes '\”, '\\' becomes '/',
// anything else outside it '?'; it is cut to 256 bytes.
func sanitizeDescription(s string) string {
	if len(s) > maxDescription {
		s = s[:maxDescription]
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c == '"':
			b[i] = '\''
		case c == '\\':
			b[i] = '/'
		case c < 0x20 || c > 0x7e:
			b[i] = '?'
		}
	}
	return string(b)
}

// quotable drops control and non-ASCII bytes, which a quoted-string cannot
// carry safely in a header.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}

// ChallengeFor builds the 401 challenge for an Authenticate error: error and
// error_description are set only when a token was presented, i.e. when
// err.Code is not empty (RFC 6750 §3.1). A nil err gives the bare
// challenge.
func ChallengeFor(err *Error, resourceMetadata string, scopes []string) Challenge {
	c := Challenge{ResourceMetadata: resourceMetadata, Scopes: scopes}
	if err != nil && err.Code != "" {
		c.Error, c.Description = err.Code, err.Description
	}
	return c
}
