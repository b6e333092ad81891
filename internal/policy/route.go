package policy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// RouteConfig is the request-level policy of one route. The zero value
// requires no scope and denies every tools/call, prompts/get and resource
// access (the defaults deny), while other methods are allowed.
type RouteConfig struct {
	// RequiredScopes are needed for any request to the route (initialize,
	// the GET stream, DELETE, lists, calls, ...), and are published as the
	// route's baseline (PRM scopes_supported, the 401 challenge). Literal
	// scopes only. Default: none.
	RequiredScopes []string
	// Tools holds tools/call rules by exact tool name. Default: none, so
	// every tool follows DefaultTool.
	Tools map[string]Rule
	// Prompts holds prompts/get rules by exact prompt name. Default: none,
	// so every prompt follows DefaultPrompt.
	Prompts map[string]Rule
	// Resources holds resources/read, resources/subscribe and
	// resources/unsubscribe rules by URI, tried in order; the first rule
	// whose shape matches wins. Default: none, so every resource follows
	// DefaultResource.
	Resources []ResourceRule
	// DefaultTool, DefaultPrompt and DefaultResource apply to tools,
	// prompts and resources no rule lists. Default (zero value): deny.
	DefaultTool, DefaultPrompt, DefaultResource Default
}

// Default is what happens to an item no rule lists.
type Default struct {
	// Allow lets unlisted items through. Default: false (deny).
	Allow bool
	// Scopes are required, besides the route's, for an unlisted item when
	// Allow is set. Literal scopes only; an error without Allow.
	// Default: none.
	Scopes []string
}

// Rule is the policy for one tool or prompt.
type Rule struct {
	// Scopes are required, besides the route's. A scope may contain
	// {var} placeholders filled from the argument of that name, e.g.
	// "document:read:{project}". Default: none (the route's scopes only).
	Scopes []string
	// Arguments holds a pattern for each argument used in Scopes (required)
	// and for any other argument to validate. Every argument named here
	// must be present in the call, a JSON string, and match. Default: none.
	Arguments map[string]ArgRule
	// Deny lists the item as never allowed through this route. It cannot
	// be combined with Scopes or Arguments. Default: false.
	Deny bool
}

// ArgRule validates one argument or URI variable.
type ArgRule struct {
	// Pattern is an RE2 expression the whole value must match; a leading
	// "^" and trailing "$" are optional. It must not match the empty
	// string. Whatever it allows, a value used in a scope must also be 1 to
	// 256 RFC 6749 scope characters (printable ASCII except space, '"' and
	// '\'). Required.
	Pattern string
}

// ResourceRule is the policy for the resources whose URI matches.
type ResourceRule struct {
	// URI is exact ("docs://readme"), a template whose {var}s each stand
	// for one whole path segment ("docs://projects/{project}/readme"), or a
	// prefix ending in "/*" that matches whole segments below it
	// ("docs://public/*"). See the package documentation. Required.
	URI string
	// Scopes are required, besides the route's; they may use the URI's
	// {var}s. Default: none.
	Scopes []string
	// Arguments holds the pattern of every {var} in URI (required for each,
	// unless Deny is set). Default: none.
	Arguments map[string]ArgRule
	// Deny refuses every matching resource. It cannot be combined with
	// Scopes or Arguments. Default: false.
	Deny bool
}

// Route is a compiled [RouteConfig]. It is immutable and safe for
// concurrent use.
type Route struct {
	h         *Hierarchy // kept for rule kinds that reason about scopes
	route     *compiledRule
	tools     map[string]*compiledRule
	prompts   map[string]*compiledRule
	resources []*compiledRule
	defTool   *compiledRule
	defPrompt *compiledRule
	defRes    *compiledRule
	maxVars   int // the most variables of any resource rule URI
}

// compiledRule is one rule (or default) ready for Decide and Filter.
type compiledRule struct {
	id     string // RuleID
	kind   string // "tool", "prompt", "resource", or "" for the route
	deny   bool
	args   []*argPattern    // tools/prompts: sorted by name; resources: in URI variable order
	static []string         // route scopes ∪ literal rule scopes: sorted, unique, clipped
	tmpls  []*scopeTemplate // templated scopes
	uri    *uriPattern      // resources only
}

// Compile validates rc and compiles it for h (nil: no implications). It
// reports every problem at once, joined, each naming the item and the field
// (by its YAML name, e.g. `tool "search": scopes[1]: ...`).
func Compile(h *Hierarchy, rc RouteConfig) (*Route, error) {
	var errs []error
	fail := func(where string, err error) {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("%s: %w", where, e))
		}
	}
	for i, s := range rc.RequiredScopes {
		if err := checkLiteralScope(s); err != nil {
			fail(fmt.Sprintf("required_scopes[%d]", i), err)
		}
	}
	base := sortedUnique(rc.RequiredScopes)
	r := &Route{
		h:       h,
		route:   &compiledRule{id: "route", static: base},
		tools:   make(map[string]*compiledRule, len(rc.Tools)),
		prompts: make(map[string]*compiledRule, len(rc.Prompts)),
	}
	for _, n := range slices.Sorted(maps.Keys(rc.Tools)) {
		c, err := compileRule("tool", n, rc.Tools[n], base)
		fail(fmt.Sprintf("tool %s", quote(n)), err)
		r.tools[n] = c
	}
	for _, n := range slices.Sorted(maps.Keys(rc.Prompts)) {
		c, err := compileRule("prompt", n, rc.Prompts[n], base)
		fail(fmt.Sprintf("prompt %s", quote(n)), err)
		r.prompts[n] = c
	}
	for i, rr := range rc.Resources {
		c, err := compileResource(i, rr, base)
		where := fmt.Sprintf("resource %d %s", i, quote(rr.URI))
		fail(where, err)
		r.resources = append(r.resources, c) // nil on error: the route is discarded
		if c == nil {
			continue
		}
		r.maxVars = max(r.maxVars, len(c.uri.vars))
		for j, prev := range r.resources[:i] {
			if prev != nil && prev.uri.covers(c.uri) {
				fail(where, fmt.Errorf("unreachable: resource %d already matches every URI this rule matches (duplicate or shadowed)", j))
				break
			}
		}
	}
	var err error
	r.defTool, err = compileDefault("tool", rc.DefaultTool, base)
	fail("default_tool", err)
	r.defPrompt, err = compileDefault("prompt", rc.DefaultPrompt, base)
	fail("default_prompt", err)
	r.defRes, err = compileDefault("resource", rc.DefaultResource, base)
	fail("default_resource", err)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// BaselineScopes returns the route's RequiredScopes, sorted and without
// duplicates: the scopes_supported of the route's protected resource
// metadata and the scope of its 401 challenge.
func (r *Route) BaselineScopes() []string { return slices.Clone(r.route.static) }

// compileRule compiles the rule for the tool or prompt name.
func compileRule(kind, name string, rule Rule, base []string) (*compiledRule, error) {
	c := &compiledRule{id: kind + ":" + name, kind: kind, deny: rule.Deny, static: base}
	var errs []error
	if !validName(name) {
		errs = append(errs, errors.New("name must be 1-128 printable ASCII characters without spaces"))
	}
	if rule.Deny {
		if len(rule.Scopes) > 0 || len(rule.Arguments) > 0 {
			errs = append(errs, errors.New("deny cannot be combined with scopes or arguments"))
		}
		return c, errors.Join(errs...)
	}
	vars := make(map[string]int, len(rule.Arguments))
	for _, n := range slices.Sorted(maps.Keys(rule.Arguments)) {
		a, err := compileArg(n, rule.Arguments[n])
		if err != nil {
			errs = append(errs, fmt.Errorf("arguments[%s]: %w", quote(n), err))
		}
		vars[n] = len(c.args)
		c.args = append(c.args, a) // nil on error: the route is discarded
	}
	errs = append(errs, c.compileScopes(rule.Scopes, vars, "has no argument rule (arguments)"))
	return c, errors.Join(errs...)
}

// compileResource compiles resource rule i.
func compileResource(i int, rr ResourceRule, base []string) (*compiledRule, error) {
	c := &compiledRule{id: fmt.Sprintf("resource:%d", i), kind: "resource", deny: rr.Deny, static: base}
	p, err := parseURIPattern(rr.URI, rr.Deny)
	if err != nil {
		return nil, err
	}
	c.uri = p
	if rr.Deny {
		if len(rr.Scopes) > 0 || len(rr.Arguments) > 0 {
			return c, errors.New("deny cannot be combined with scopes or arguments")
		}
		return c, nil
	}
	var errs []error
	vars := make(map[string]int, len(p.vars))
	c.args = make([]*argPattern, len(p.vars))
	for j, n := range p.vars {
		vars[n] = j
		ar, ok := rr.Arguments[n]
		if !ok {
			errs = append(errs, fmt.Errorf("arguments: URI variable %s has no pattern", quote(n)))
			continue
		}
		a, err := compileArg(n, ar)
		if err != nil {
			errs = append(errs, fmt.Errorf("arguments[%s]: %w", quote(n), err))
		}
		c.args[j] = a // nil on error: the route is discarded
	}
	for _, n := range slices.Sorted(maps.Keys(rr.Arguments)) {
		if _, ok := vars[n]; !ok {
			errs = append(errs, fmt.Errorf("arguments[%s]: not a variable of the URI", quote(n)))
		}
	}
	errs = append(errs, c.compileScopes(rr.Scopes, vars, "is not a variable of the URI"))
	return c, errors.Join(errs...)
}

// compileDefault compiles the default for unlisted items of kind.
func compileDefault(kind string, d Default, base []string) (*compiledRule, error) {
	c := &compiledRule{id: "default:" + kind, kind: kind, deny: !d.Allow, static: base}
	if !d.Allow {
		if len(d.Scopes) > 0 {
			return c, errors.New("scopes given but allow is false")
		}
		return c, nil
	}
	var errs []error
	for i, s := range d.Scopes {
		if err := checkLiteralScope(s); err != nil {
			errs = append(errs, fmt.Errorf("scopes[%d]: %w", i, err))
		}
	}
	c.static = sortedUnique(append(slices.Clone(base), d.Scopes...))
	return c, errors.Join(errs...)
}

// compileScopes parses scopes into c.static and c.tmpls.
func (c *compiledRule) compileScopes(scopes []string, vars map[string]int, what string) error {
	var errs []error
	lits := slices.Clone(c.static)
	for i, s := range scopes {
		t, err := parseScope(s, vars, c.args, what)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("scopes[%d]: %w", i, err))
		case t != nil:
			c.tmpls = append(c.tmpls, t)
		default:
			lits = append(lits, s)
		}
	}
	c.static = sortedUnique(lits)
	return errors.Join(errs...)
}

// validName reports whether a tool or prompt name is 1–128 printable ASCII
// characters without spaces.
func validName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func sortedUnique(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Clip(slices.Compact(out))
}

// unjoin splits an errors.Join result into its parts.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}
