// This file implements a conservative reading of RFC 6570 URI templates, as
// advertised by resources/templates/list, to decide whether any rule could
// allow the URIs a template produces. See
// https://www.rfc-editor.org/rfc/rfc6570

package policy

import "strings"

// tmplShape is a URI template reduced to what the matcher can reason about.
type tmplShape struct {
	scheme string // lower case; "" if the template does not start with a literal scheme
	segs   []tseg // the part after "scheme:", split on "/" outside expressions
}

type tsegKind uint8

const (
	tLit  tsegKind = iota // literal text: exactly this segment
	tVar                  // contains an expression that stays within the segment
	tTail                 // contains a +, # or / expression: any number of segments from here
)

type tseg struct {
	lit  string
	kind tsegKind
}

// parseURITemplate reads template t. It reports false if t is malformed or
// its literal text would be refused as a resource URI.
func parseURITemplate(t string) (*tmplShape, bool) {
	// Check the literal text as a URI, with each expression replaced by a
	// harmless character.
	var check strings.Builder
	depth := 0
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c == '{':
			if depth > 0 {
				return nil, false
			}
			depth++
			check.WriteByte('x')
		case c == '}':
			if depth == 0 {
				return nil, false
			}
			depth--
		case depth == 0:
			check.WriteByte(c)
		}
	}
	colon := schemeEnd(t)
	lit := check.String()
	if colon < 0 && strings.HasPrefix(t, "{") {
		lit = "x:" + lit // the scheme comes from an expression
	}
	if depth != 0 || uriProblem(lit) != "" {
		return nil, false
	}
	if colon < 0 {
		return &tmplShape{segs: []tseg{{kind: tTail}}}, true
	}
	s := &tmplShape{scheme: strings.ToLower(t[:colon])}
	rest := t[colon+1:]
	start, inExpr := 0, false
	for i := 0; i <= len(rest); i++ {
		if i < len(rest) {
			switch rest[i] {
			case '{':
				inExpr = true
				continue
			case '}':
				inExpr = false
				continue
			case '/':
				if inExpr {
					continue
				}
			default:
				continue
			}
		}
		s.segs = append(s.segs, classify(rest[start:i]))
		start = i + 1
	}
	return s, true
}

// classify returns the kind of one template segment.
func classify(seg string) tseg {
	kind := tLit
	for rest := seg; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		expr := rest[i+1 : i+j]
		rest = rest[i+j+1:]
		kind = max(kind, tVar)
		if expr != "" && strings.ContainsRune("+#/", rune(expr[0])) {
			kind = tTail
		}
	}
	return tseg{lit: seg, kind: kind}
}

// overlaps reports whether some URI the template produces could have the
// shape of rule r's URI (and, where r's variable meets a literal segment,
// satisfy the variable's pattern).
func (r *compiledRule) overlaps(t *tmplShape) bool {
	p := r.uri
	if t.scheme != "" && t.scheme != p.scheme {
		return false
	}
	for i := 0; ; i++ {
		if i < len(t.segs) && t.segs[i].kind == tTail {
			return true
		}
		if i == len(p.segs) {
			if p.prefix {
				return i < len(t.segs)
			}
			return i == len(t.segs)
		}
		if i == len(t.segs) {
			return false
		}
		ps, ts := p.segs[i], t.segs[i]
		switch {
		case ts.kind == tVar:
		case ps.v >= 0:
			if ts.lit == "" {
				return false
			}
			if ps.v < len(r.args) && r.args[ps.v].check(ts.lit) != valueOK {
				return false
			}
		case !p.segEqual(i, ts.lit):
			return false
		}
	}
}

// coversTemplate reports whether every URI the template produces has the
// shape of p, so that no later rule can see any of them.
func (p *uriPattern) coversTemplate(t *tmplShape) bool {
	if t.scheme == "" || t.scheme != p.scheme {
		return false
	}
	if p.prefix {
		if len(t.segs) <= len(p.segs) {
			return false
		}
	} else if len(t.segs) != len(p.segs) {
		return false
	}
	for i, ts := range t.segs {
		if ts.kind == tTail {
			if !p.prefix || i < len(p.segs) {
				return false
			}
			continue
		}
		if i >= len(p.segs) {
			continue
		}
		ps := p.segs[i]
		switch {
		case ps.v >= 0:
			if ts.kind == tLit && ts.lit == "" {
				return false
			}
		case ts.kind != tLit || !p.segEqual(i, ts.lit):
			return false
		}
	}
	return true
}
