// This file implements scope templates such as "document:read:{project}",
// whose variables are filled from validated arguments or URI segments. The
// filled scope is an RFC 6749 scope-token. See
// https://www.rfc-editor.org/rfc/rfc6749#section-3.3

package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// maxValueLen bounds a value used in a scope, whatever its pattern allows.
const maxValueLen = 256

// argPattern is a compiled [ArgRule] for one argument or URI variable.
type argPattern struct {
	name    string         // argument or URI variable name
	display string         // "^" + pattern + "$", for messages
	core    string         // the pattern without outer anchors
	re      *regexp.Regexp // ^(?:core)$
}

// validVarName reports whether s can name a template variable: 1–64 of
// [A-Za-z0-9_-].
func validVarName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// compileArg compiles the pattern of argument name. A leading "^" and a
// trailing unescaped "$" are accepted and dropped: the pattern is anchored
// anyway. Any other anchor or word-boundary assertion is an error, because
// the pattern is also embedded in the larger expression that list filtering
// matches granted scopes against.
func compileArg(name string, ar ArgRule) (*argPattern, error) {
	if !validVarName(name) {
		return nil, fmt.Errorf("argument name %s must be 1-64 of [A-Za-z0-9_-]", quote(name))
	}
	core := strings.TrimPrefix(ar.Pattern, "^")
	if strings.HasSuffix(core, "$") && !escapedAt(core, len(core)-1) {
		core = core[:len(core)-1]
	}
	if core == "" {
		return nil, errors.New("pattern is empty")
	}
	tree, err := syntax.Parse(core, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("pattern %s: %w", quote(ar.Pattern), err)
	}
	if hasAssertion(tree) {
		return nil, fmt.Errorf("pattern %s: anchors and word boundaries are not allowed inside (the pattern is anchored implicitly)", quote(ar.Pattern))
	}
	re, err := regexp.Compile("^(?:" + core + ")$")
	if err != nil {
		return nil, fmt.Errorf("pattern %s: %w", quote(ar.Pattern), err)
	}
	if re.MatchString("") {
		return nil, fmt.Errorf("pattern %s matches the empty string", quote(ar.Pattern))
	}
	return &argPattern{name: name, display: "^" + core + "$", core: core, re: re}, nil
}

// escapedAt reports whether s[i] is preceded by an odd number of backslashes.
func escapedAt(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

func hasAssertion(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	}
	for _, sub := range re.Sub {
		if hasAssertion(sub) {
			return true
		}
	}
	return false
}

// valueProblem says why a value cannot fill a template variable.
type valueProblem uint8

const (
	valueOK valueProblem = iota
	valueMissing
	valueNotString
	valueTooLong
	valueNotScopeSafe
	valueNoMatch
)

// check validates v against the pattern and the scope-token floor.
func (a *argPattern) check(v string) valueProblem {
	switch {
	case len(v) > maxValueLen:
		return valueTooLong
	case !validScope(v):
		return valueNotScopeSafe
	case !a.re.MatchString(v):
		return valueNoMatch
	}
	return valueOK
}

// reason renders problem p with value v for an agent. what is "argument" or
// "URI variable".
func (a *argPattern) reason(what string, p valueProblem, v string) string {
	name := quote(a.name)
	switch p {
	case valueMissing:
		return fmt.Sprintf("%s %s is required and must be a string matching %s", what, name, a.display)
	case valueNotString:
		return fmt.Sprintf("%s %s must be a string matching %s", what, name, a.display)
	case valueTooLong:
		return fmt.Sprintf("%s %s must be at most %d bytes and match %s", what, name, maxValueLen, a.display)
	case valueNotScopeSafe:
		return fmt.Sprintf("%s %s value %s contains characters not allowed in a scope (printable ASCII only, no space, quote or backslash); it must match %s", what, name, quote(v), a.display)
	default:
		return fmt.Sprintf("%s %s value %s must match %s", what, name, quote(v), a.display)
	}
}

// jsonString returns the string a JSON value decodes to, and false if raw
// is not a single JSON string (null, numbers, objects and malformed input
// all fail).
func jsonString(raw json.RawMessage) (string, bool) {
	b := trimJSONSpace(raw)
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	inner := b[1 : len(b)-1]
	plain := true
	for _, c := range inner {
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", false
	}
	return s, true
}

func trimJSONSpace(b []byte) []byte {
	for len(b) > 0 && isJSONSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isJSONSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// scopeTemplate is a compiled scope that contains at least one {var}.
type scopeTemplate struct {
	parts  []tmplPart
	prefix string         // literal text before the first variable
	re     *regexp.Regexp // matches every scope the template can produce
}

// tmplPart is literal text (arg < 0) or the variable vars[arg].
type tmplPart struct {
	lit string
	arg int
}

// parseScope parses configured scope s. It returns (nil, nil) for a literal
// scope. vars maps variable names to their index in the rule's argument
// list; a variable missing from it is an error, whose message ends in what.
func parseScope(s string, vars map[string]int, args []*argPattern, what string) (*scopeTemplate, error) {
	if !strings.ContainsAny(s, "{}") {
		return nil, checkLiteralScope(s)
	}
	var (
		t    scopeTemplate
		errs []error
		lit  bool
	)
	rest := s
	for rest != "" {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			i = len(rest)
		}
		if i > 0 {
			t.parts = append(t.parts, tmplPart{lit: rest[:i], arg: -1})
			if !validScope(rest[:i]) {
				errs = append(errs, fmt.Errorf("scope %s: literal text contains a character not allowed in a scope (RFC 6749 scope-token)", quote(s)))
			}
			lit = true
			rest = rest[i:]
			continue
		}
		if rest[0] == '}' {
			errs = append(errs, fmt.Errorf("scope %s: unbalanced '}'", quote(s)))
			break
		}
		end := strings.IndexAny(rest[1:], "{}")
		if end < 0 || rest[1+end] != '}' {
			errs = append(errs, fmt.Errorf("scope %s: unterminated or nested '{'", quote(s)))
			break
		}
		name := rest[1 : 1+end]
		rest = rest[2+end:]
		idx, ok := vars[name]
		switch {
		case !validVarName(name):
			errs = append(errs, fmt.Errorf("scope %s: variable name %s must be 1-64 of [A-Za-z0-9_-]", quote(s), quote(name)))
		case !ok:
			errs = append(errs, fmt.Errorf("scope %s: variable %s %s", quote(s), quote(name), what))
		default:
			t.parts = append(t.parts, tmplPart{arg: idx})
		}
	}
	if !lit && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("scope %s: must contain literal text besides variables", quote(s)))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, p := range t.parts {
		if p.arg >= 0 && args[p.arg] == nil {
			return &t, nil // the argument's own error is reported; the route is discarded
		}
	}
	var expr strings.Builder
	expr.WriteString("^")
	prefixDone := false
	for _, p := range t.parts {
		if p.arg < 0 {
			expr.WriteString(regexp.QuoteMeta(p.lit))
			if !prefixDone {
				t.prefix += p.lit
			}
			continue
		}
		prefixDone = true
		expr.WriteString("(?:" + args[p.arg].core + ")")
	}
	expr.WriteString("$")
	re, err := regexp.Compile(expr.String())
	if err != nil {
		return nil, fmt.Errorf("scope %s: %w", quote(s), err)
	}
	t.re = re
	return &t, nil
}

// expand fills the template with validated values (indexed like the rule's
// arguments).
func (t *scopeTemplate) expand(vals []string) string {
	n := 0
	for _, p := range t.parts {
		if p.arg < 0 {
			n += len(p.lit)
		} else {
			n += len(vals[p.arg])
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range t.parts {
		if p.arg < 0 {
			b.WriteString(p.lit)
		} else {
			b.WriteString(vals[p.arg])
		}
	}
	return b.String()
}

// producible reports whether the grant holds at least one scope this
// template could produce. Variables sharing a name across templates are
// not correlated: this is a list-time approximation, and Decide checks the
// concrete scope at call time.
func (t *scopeTemplate) producible(g Grant) bool {
	for _, s := range g.expandedScopes() {
		if strings.HasPrefix(s, t.prefix) && validScope(s) && t.re.MatchString(s) {
			return true
		}
	}
	return false
}
