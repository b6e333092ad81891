// This file implements the safety checks and the matcher for resource URIs.
// Dot segments and percent-encoding follow RFC 3986. See
// https://www.rfc-editor.org/rfc/rfc3986#section-3 (syntax) and
// https://www.rfc-editor.org/rfc/rfc3986#section-5.2.4 (dot segments).

package policy

import (
	"fmt"
	"strings"
)

// maxURILen bounds the resource URIs the matcher accepts.
const maxURILen = 4096

// uriProblem returns why resource URI u is refused before matching, or ""
// if it may be matched. See the package documentation for the rules.
func uriProblem(u string) string {
	if len(u) > maxURILen {
		return fmt.Sprintf("is longer than %d bytes", maxURILen)
	}
	colon := schemeEnd(u)
	if colon < 0 {
		return "is not an absolute URI (scheme \":\" ...)"
	}
	for i := 0; i < len(u); i++ {
		switch c := u[i]; {
		case c <= 0x20 || c >= 0x7f:
			return "contains whitespace, a control character or a non-ASCII byte"
		case c == '\\':
			return "contains a backslash"
		case c == '%':
			if i+2 >= len(u) || !isHex(u[i+1]) || !isHex(u[i+2]) {
				return "contains a malformed percent-encoding"
			}
			switch d := unhex(u[i+1])<<4 | unhex(u[i+2]); {
			case d == '.' || d == '/' || d == '\\' || d == '%':
				return "contains a percent-encoded dot, slash, backslash or percent sign"
			case d < 0x20 || d == 0x7f:
				return "contains a percent-encoded control character"
			case isUnreserved(d):
				// RFC 3986 §6.2.2.2: unreserved characters are never
				// encoded in the canonical form; "%73ecret" is "secret"
				// to an upstream that decodes, and not to a rule.
				return "contains a percent-encoded letter, digit or unreserved character"
			}
		}
	}
	if strings.Contains(u, "..") {
		return `contains ".."`
	}
	rest := u[colon+1:]
	path := rest
	if strings.HasPrefix(rest, "//") {
		path = rest[2:]
		if i := strings.IndexByte(path, '/'); i >= 0 {
			path = path[i:]
		} else {
			path = ""
		}
	}
	if strings.Contains(path, "//") {
		return "contains an empty path segment"
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "." {
			return `contains a "." segment`
		}
	}
	return ""
}

// schemeEnd returns the index of the ':' ending u's scheme, or -1 if u does
// not start with a scheme (ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )).
func schemeEnd(u string) int {
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return i
		default:
			return -1
		}
	}
	return -1
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// uriPattern is a compiled resource rule URI. The part after "scheme:" is
// split on "/" into segments; with an authority ("scheme://host/...")
// segments 0 and 1 are empty and segment 2 is the authority.
type uriPattern struct {
	scheme    string   // lower case
	segs      []uriSeg // the segments to match
	prefix    bool     // "/*" rule: matches URIs continuing segs by at least one segment
	authority int      // index of the authority segment, or -1
	fold      bool     // compare literal segments case-insensitively (deny rules: a case-insensitive upstream must not slip past a deny)
	vars      []string // variable names, in order of appearance
}

// uriSeg is a literal segment (v < 0) or the variable vars[v].
type uriSeg struct {
	lit string
	v   int
}

// parseURIPattern compiles a rule URI: exact, with whole-segment {var}s, or
// a prefix ending in "/*".
func parseURIPattern(s string, fold bool) (*uriPattern, error) {
	p := &uriPattern{authority: -1, fold: fold}
	body := s
	if strings.HasSuffix(s, "/*") {
		p.prefix = true
		body = s[:len(s)-2]
	}
	if strings.Contains(body, "*") {
		return nil, fmt.Errorf("uri %s: '*' is only allowed as a final \"/*\" segment", quote(s))
	}
	colon := schemeEnd(body)
	if colon < 0 {
		return nil, fmt.Errorf("uri %s: not an absolute URI (scheme \":\" ...)", quote(s))
	}
	p.scheme = strings.ToLower(body[:colon])
	rest := body[colon+1:]
	if strings.HasPrefix(rest, "//") {
		p.authority = 2
	}
	// Check the URI with every variable replaced by a harmless segment, so
	// that the rule obeys the same rules as the URIs it will match.
	var check strings.Builder
	check.WriteString(body[:colon+1])
	seen := map[string]bool{}
	for i, seg := range strings.Split(rest, "/") {
		if i > 0 {
			check.WriteByte('/')
		}
		if !strings.ContainsAny(seg, "{}") {
			p.segs = append(p.segs, uriSeg{lit: seg, v: -1})
			check.WriteString(seg)
			continue
		}
		name, ok := strings.CutPrefix(seg, "{")
		name, ok2 := strings.CutSuffix(name, "}")
		if !ok || !ok2 || strings.ContainsAny(name, "{}") {
			return nil, fmt.Errorf("uri %s: a variable must be a whole path segment, as in /{name}/", quote(s))
		}
		if !validVarName(name) {
			return nil, fmt.Errorf("uri %s: variable name %s must be 1-64 of [A-Za-z0-9_-]", quote(s), quote(name))
		}
		if i == p.authority {
			return nil, fmt.Errorf("uri %s: the authority cannot be a variable", quote(s))
		}
		if seen[name] {
			return nil, fmt.Errorf("uri %s: variable %s appears twice", quote(s), quote(name))
		}
		seen[name] = true
		p.segs = append(p.segs, uriSeg{v: len(p.vars)})
		p.vars = append(p.vars, name)
		check.WriteString("v")
	}
	if p.prefix {
		check.WriteString("/v")
	}
	if why := uriProblem(check.String()); why != "" {
		return nil, fmt.Errorf("uri %s: %s", quote(s), why)
	}
	return p, nil
}

// match reports whether URI u (which passed uriProblem) has this pattern's
// shape, storing variable segments in vals (len(vals) == len(p.vars)).
func (p *uriPattern) match(u string, vals []string) bool {
	colon := strings.IndexByte(u, ':')
	if colon < 0 || !strings.EqualFold(u[:colon], p.scheme) {
		return false
	}
	rest, more := u[colon+1:], true
	for _, want := range p.segs {
		if !more {
			return false
		}
		var seg string
		seg, rest, more = strings.Cut(rest, "/")
		switch {
		case want.v >= 0:
			if seg == "" {
				return false
			}
			vals[want.v] = seg
		case p.fold:
			if !strings.EqualFold(seg, want.lit) {
				return false
			}
		case seg != want.lit:
			return false
		}
	}
	return more == p.prefix
}

// segEqual compares literal segment a of pattern p with literal b.
func (p *uriPattern) segEqual(i int, b string) bool {
	if p.fold {
		return strings.EqualFold(p.segs[i].lit, b)
	}
	return p.segs[i].lit == b
}

// covers reports whether p matches every URI that q matches, so that a rule
// q after p can never be reached.
func (p *uriPattern) covers(q *uriPattern) bool {
	if p.scheme != q.scheme {
		return false
	}
	if p.prefix {
		if len(q.segs) <= len(p.segs) && !(q.prefix && len(q.segs) == len(p.segs)) {
			return false
		}
	} else if q.prefix || len(q.segs) != len(p.segs) {
		return false
	}
	for i, ps := range p.segs {
		qs := q.segs[i]
		switch {
		case ps.v >= 0:
			if qs.v < 0 && qs.lit == "" {
				return false
			}
		case qs.v >= 0 || !p.segEqual(i, qs.lit):
			return false
		}
	}
	return true
}
