// This file implements scope tokens and their expansion through a scope
// hierarchy. See https://www.rfc-editor.org/rfc/rfc6749#section-3.3 and, for
// hierarchies, the MCP authorization specification's Scope Challenge Handling.

package policy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// isScopeChar reports whether c may appear in an RFC 6749 scope-token:
// %x21 / %x23-5B / %x5D-7E (printable ASCII except space, '"' and '\').
func isScopeChar(c byte) bool {
	return c >= 0x21 && c <= 0x7e && c != '"' && c != '\\'
}

// validScope reports whether s is a non-empty RFC 6749 scope-token.
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isScopeChar(s[i]) {
			return false
		}
	}
	return true
}

// checkLiteralScope returns why s cannot be used as a literal (untemplated)
// scope, or nil.
func checkLiteralScope(s string) error {
	switch {
	case s == "":
		return errors.New("empty scope")
	case strings.ContainsAny(s, "{}"):
		return fmt.Errorf("scope %s: braces are reserved for {var} templates, which are not allowed here", quote(s))
	case !validScope(s):
		return fmt.Errorf("scope %s contains a character not allowed in a scope (RFC 6749 scope-token)", quote(s))
	}
	return nil
}

// Hierarchy expands granted scopes through configured implications. It is
// immutable after [NewHierarchy] and safe for concurrent use. A nil
// *Hierarchy implies nothing.
type Hierarchy struct {
	closure map[string][]string // scope → every scope it implies, transitively, sorted, excluding itself
}

// NewHierarchy compiles implications such as {"docs:write": {"docs:read"}}:
// a token granted a key also satisfies every listed scope, transitively.
// Cycles are allowed and make their members equivalent. Every scope must be a
// valid RFC 6749 scope-token; all problems are reported together.
func NewHierarchy(implies map[string][]string) (*Hierarchy, error) {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(implies)) {
		if err := checkLiteralScope(k); err != nil {
			errs = append(errs, fmt.Errorf("hierarchy %s: %w", quote(k), err))
		}
		for i, v := range implies[k] {
			if err := checkLiteralScope(v); err != nil {
				errs = append(errs, fmt.Errorf("hierarchy %s[%d]: %w", quote(k), i, err))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	h := &Hierarchy{closure: make(map[string][]string, len(implies))}
	for k := range implies {
		seen := map[string]bool{k: true}
		stack := slices.Clone(implies[k])
		var out []string
		for len(stack) > 0 {
			s := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[s] {
				continue
			}
			seen[s] = true
			out = append(out, s)
			stack = append(stack, implies[s]...)
		}
		if len(out) > 0 {
			slices.Sort(out)
			h.closure[k] = slices.Clip(out)
		}
	}
	return h, nil
}

// Expand returns the grant for a token's scopes: the scopes themselves plus
// everything they imply. Call it once per request. Empty strings are ignored.
func (h *Hierarchy) Expand(granted []string) Grant {
	if isSortedSet(granted) {
		// Already sorted and unique (as authn hands them over): shared,
		// not copied; neither side changes it.
		g := slices.Clip(granted)
		implied := false
		for _, s := range g {
			if h != nil && len(h.closure[s]) > 0 {
				implied = true
				break
			}
		}
		if !implied {
			return Grant{granted: g, expanded: g}
		}
	}
	g := make([]string, 0, len(granted))
	n := len(granted)
	for _, s := range granted {
		if s == "" {
			continue
		}
		g = append(g, s)
		if h != nil {
			n += len(h.closure[s])
		}
	}
	slices.Sort(g)
	g = slices.Clip(slices.Compact(g))
	if h == nil || len(h.closure) == 0 {
		return Grant{granted: g, expanded: g}
	}
	x := make([]string, 0, n)
	for _, s := range g {
		x = append(x, s)
		x = append(x, h.closure[s]...)
	}
	slices.Sort(x)
	return Grant{granted: g, expanded: slices.Compact(x)}
}

// isSortedSet reports whether scopes are sorted, unique and non-empty.
func isSortedSet(scopes []string) bool {
	for i, s := range scopes {
		if s == "" || (i > 0 && scopes[i-1] >= s) {
			return false
		}
	}
	return true
}

// Grant is a token's scopes expanded through a [Hierarchy]. The zero value
// holds no scope. A Grant is immutable and safe for concurrent use.
type Grant struct {
	granted  []string // as granted, sorted, without duplicates
	expanded []string // granted plus implied, sorted, without duplicates
}

// Has reports whether the grant satisfies scope: it was granted or is
// implied by a granted scope.
func (g Grant) Has(scope string) bool {
	_, ok := slices.BinarySearch(g.expanded, scope)
	return ok
}

// Granted returns the scopes as granted (before expansion), sorted and
// without duplicates. The gateway adds them to an insufficient_scope
// challenge so that a client stepping up does not lose what it has.
func (g Grant) Granted() []string { return slices.Clone(g.granted) }

// Expanded returns the granted scopes and every scope they imply, sorted
// and without duplicates.
func (g Grant) Expanded() []string { return slices.Clone(g.expanded) }

// expandedScopes returns the expanded set; callers must not modify it.
func (g Grant) expandedScopes() []string { return g.expanded }

// maxQuoted bounds how much of an untrusted value is echoed in a Reason.
const maxQuoted = 64

// quote renders s for a message: Go-quoted with every non-ASCII or
// non-printable character escaped, and cut to maxQuoted bytes of input.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.QuoteToASCII(s)
	}
	cut := maxQuoted
	for cut > 0 && s[cut]&0xc0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return strconv.QuoteToASCII(s[:cut]) + "..."
}
