// This file implements labels and call matchers for sequence rules; tool
// annotations are read as the MCP specification defines them. See
// https://modelcontextprotocol.io/specification/2025-11-25/server/tools#tool-annotations

package policy

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Well-known labels. Any label matching [ValidLabel] may be used; these
// are the ones [AnnotationLabels] produces and the examples use.
const (
	LabelPrivateData    = "private_data"
	LabelUntrustedInput = "untrusted_input"
	LabelEgress         = "egress"
	LabelDestructive    = "destructive"
	LabelReadOnly       = "read_only"
)

// AnnotationLabels seeds a tool's labels from its MCP annotations (nil: the
// hint is absent): destructiveHint true → "destructive"; openWorldHint true
// → "egress" and "untrusted_input"; readOnlyHint true → "read_only". An
// absent or false hint adds nothing: the MCP defaults (destructive and
// open-world when absent) are not applied, so that configuration, not a
// server's silence, decides. The result is sorted; nil if empty.
// Annotations come from the upstream server and are hints: configure
// labels for tools that matter instead of trusting them.
func AnnotationLabels(readOnly, destructive, openWorld *bool) []string {
	var out []string
	if destructive != nil && *destructive {
		out = append(out, LabelDestructive)
	}
	if openWorld != nil && *openWorld {
		out = append(out, LabelEgress)
	}
	if readOnly != nil && *readOnly {
		out = append(out, LabelReadOnly)
	}
	if openWorld != nil && *openWorld {
		out = append(out, LabelUntrustedInput)
	}
	return out
}

// ValidLabel reports whether l is a valid label: 1 to 64 characters from
// [a-z0-9_.:-].
func ValidLabel(l string) bool {
	if l == "" || len(l) > 64 {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// checkLabels returns every invalid label in ls, joined.
func checkLabels(ls []string) error {
	var errs []error
	for i, l := range ls {
		if !ValidLabel(l) {
			errs = append(errs, fmt.Errorf("[%d]: label %s must be 1 to 64 characters from [a-z0-9_.:-]", i, quote(l)))
		}
	}
	return errors.Join(errs...)
}

// matcher is a compiled [Matcher].
type matcher struct {
	routes []string
	tools  []string // exact names
	globs  []string // path.Match patterns
	labels []string
	desc   string // for messages: "a tool labelled egress on route mail"
}

// compileMatcher compiles m, reporting problems through fail under field.
// It returns the matcher and a canonical text of it (for fingerprints).
func compileMatcher(m Matcher, field string, fail func(string, error)) (*matcher, string) {
	c := &matcher{}
	if len(m.Routes) == 0 && len(m.Tools) == 0 && len(m.Labels) == 0 {
		fail(field, errors.New("empty: set routes, tools or labels (tools: [\"*\"] matches every tool)"))
	}
	for i, r := range m.Routes {
		if r == "" {
			fail(fmt.Sprintf("%s.routes[%d]", field, i), errors.New("empty route name"))
		}
	}
	for i, t := range m.Tools {
		switch {
		case t == "":
			fail(fmt.Sprintf("%s.tools[%d]", field, i), errors.New("empty tool name"))
		case strings.ContainsAny(t, `*?[\`):
			if _, err := path.Match(t, ""); err != nil {
				fail(fmt.Sprintf("%s.tools[%d]", field, i), fmt.Errorf("glob %s: %w", quote(t), err))
			}
			c.globs = append(c.globs, t)
		default:
			c.tools = append(c.tools, t)
		}
	}
	if err := checkLabels(m.Labels); err != nil {
		fail(field+".labels", err)
	}
	c.routes = sortedUnique(m.Routes)
	c.tools = sortedUnique(c.tools)
	c.globs = sortedUnique(c.globs)
	c.labels = sortedUnique(m.Labels)

	var b strings.Builder
	if names := append(slices.Clone(c.tools), c.globs...); len(names) > 0 {
		b.WriteString("tool " + orList(names))
	} else {
		b.WriteString("a tool")
	}
	if len(c.labels) > 0 {
		b.WriteString(" labelled " + orList(c.labels))
	}
	if len(c.routes) > 0 {
		b.WriteString(" on route " + orList(c.routes))
	}
	c.desc = b.String()
	return c, fmt.Sprintf("%q %q %q %q", c.routes, c.tools, c.globs, c.labels)
}

// match reports whether a call of tool on route, carrying labels, matches.
func (m *matcher) match(route, tool string, labels []string) bool {
	if len(m.routes) > 0 && !slices.Contains(m.routes, route) {
		return false
	}
	if len(m.tools) > 0 || len(m.globs) > 0 {
		ok := slices.Contains(m.tools, tool)
		for _, g := range m.globs {
			if ok {
				break
			}
			ok, _ = path.Match(g, tool)
		}
		if !ok {
			return false
		}
	}
	if len(m.labels) > 0 {
		for _, l := range labels {
			if slices.Contains(m.labels, l) {
				return true
			}
		}
		return false
	}
	return true
}

// orList renders "a", "a or b", "a, b or c".
func orList(s []string) string { return joinList(s, "or") }

// andList renders "a", "a and b", "a, b and c".
func andList(s []string) string { return joinList(s, "and") }

func joinList(s []string, conj string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " " + conj + " " + s[len(s)-1]
}
