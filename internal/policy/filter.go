package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrMalformedResult is returned (wrapped) by Filter for a list result it
// cannot parse unambiguously. The gateway must not pass such a result on.
var ErrMalformedResult = errors.New("policy: malformed list result")

// Filter removes from a list result the items the holder of g may not use,
// and returns the result and how many items it removed. Every other member
// of the result object (nextCursor, _meta, ...) and every kept item is
// passed through byte for byte; with nothing removed, result itself is
// returned.
//
// method is tools/list, prompts/list, resources/list or
// resources/templates/list. Items are identified by their exactly named
// "name" (tools, prompts), "uri" (resources) or "uriTemplate" (resource
// templates) member. An item that is not an object, lacks that member, has
// it twice or in another letter case, or whose value is not a string is
// removed. A result that is not a JSON object, has no list member (or has it
// twice, or a case variant of it), or whose list is neither an array nor
// null is an error wrapping [ErrMalformedResult].
//
// A tool or prompt is kept iff its rule (or the default) allows it, the
// grant holds every literal scope it needs, and for each templated scope
// the grant holds at least one scope the template could produce. A
// resource is kept iff Decide would let the grant read it. A resource
// template is kept iff, trying the rules in order, some allow rule whose
// scopes the grant could satisfy matches URIs the template can produce
// before a rule matching all of them (or, failing both, the default allows
// it); a template whose literal text is an unsafe URI is removed.
func (r *Route) Filter(method string, result []byte, g Grant) ([]byte, int, error) {
	var member, key string
	var keep func(name []byte) bool
	switch method {
	case "tools/list":
		member, key = "tools", "name"
		keep = func(n []byte) bool { return lookup(r.tools, r.defTool, n).visible(g) }
	case "prompts/list":
		member, key = "prompts", "name"
		keep = func(n []byte) bool { return lookup(r.prompts, r.defPrompt, n).visible(g) }
	case "resources/list":
		member, key = "resources", "uri"
		keep = func(n []byte) bool { return r.resourceVisible(string(n), g) }
	case "resources/templates/list":
		member, key = "resourceTemplates", "uriTemplate"
		keep = func(n []byte) bool { return r.templateVisible(string(n), g) }
	default:
		return nil, 0, fmt.Errorf("filter: method %s has no list filter", quote(method))
	}
	malformed := func(why string) ([]byte, int, error) {
		return nil, 0, fmt.Errorf("filter %s: %w: %s", method, ErrMalformedResult, why)
	}
	if !json.Valid(result) {
		return malformed("not valid JSON")
	}
	start, end, why := findMember(result, member)
	if why != "" {
		return malformed(why)
	}
	if result[start] == 'n' { // null: nothing to filter
		return result, 0, nil
	}
	if result[start] != '[' {
		return malformed(fmt.Sprintf("%q is not an array", member))
	}
	var kept [][2]int
	removed := 0
	for i := skipWS(result, start+1); result[i] != ']'; {
		e := skipValue(result, i)
		if n, ok := itemName(result[i:e], key); ok && keep(n) {
			kept = append(kept, [2]int{i, e})
		} else {
			removed++
		}
		i = skipWS(result, e)
		if result[i] == ',' {
			i = skipWS(result, i+1)
		}
	}
	if removed == 0 {
		return result, 0, nil
	}
	out := make([]byte, 0, len(result))
	out = append(out, result[:start]...)
	out = append(out, '[')
	for j, k := range kept {
		if j > 0 {
			out = append(out, ',')
		}
		out = append(out, result[k[0]:k[1]]...)
	}
	out = append(out, ']')
	out = append(out, result[end:]...)
	return out, removed, nil
}

func lookup(rules map[string]*compiledRule, def *compiledRule, name []byte) *compiledRule {
	if c, ok := rules[string(name)]; ok {
		return c
	}
	return def
}

// visible reports whether the rule could allow the grant anything.
func (c *compiledRule) visible(g Grant) bool {
	if c.deny {
		return false
	}
	for _, s := range c.static {
		if !g.Has(s) {
			return false
		}
	}
	for _, t := range c.tmpls {
		if !t.producible(g) {
			return false
		}
	}
	return true
}

// resourceVisible reports whether Decide would allow reading u.
func (r *Route) resourceVisible(u string, g Grant) bool {
	if uriProblem(u) != "" {
		return false
	}
	var buf [8]string
	c, vals := r.matchResource(u, buf[:])
	if c.deny {
		return false
	}
	for i, a := range c.args {
		if a.check(vals[i]) != valueOK {
			return false
		}
	}
	for _, s := range c.required(vals) {
		if !g.Has(s) {
			return false
		}
	}
	return true
}

// templateVisible applies the resource-template rule documented on Filter.
func (r *Route) templateVisible(tmpl string, g Grant) bool {
	t, ok := parseURITemplate(tmpl)
	if !ok {
		return false
	}
	for _, c := range r.resources {
		if c.uri.coversTemplate(t) {
			return c.visible(g)
		}
		if !c.deny && c.overlaps(t) && c.visible(g) {
			return true
		}
	}
	return r.defRes.visible(g)
}

// findMember finds the value of member in the JSON object b (already
// validated), requiring exactly one member of that name and no case variant.
func findMember(b []byte, member string) (start, end int, why string) {
	i := skipWS(b, 0)
	if b[i] != '{' {
		return 0, 0, "not a JSON object"
	}
	start = -1
	for i = skipWS(b, i+1); b[i] != '}'; {
		k, ke := keyAt(b, i)
		vs := skipWS(b, skipWS(b, ke)+1) // past ':'
		ve := skipValue(b, vs)
		switch {
		case string(k) == member:
			if start >= 0 {
				return 0, 0, fmt.Sprintf("member %q appears twice", member)
			}
			start, end = vs, ve
		case bytes.EqualFold(k, []byte(member)):
			return 0, 0, fmt.Sprintf("member %s is a case variant of %q", quote(string(k)), member)
		}
		i = skipWS(b, ve)
		if b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	if start < 0 {
		return 0, 0, fmt.Sprintf("member %q is missing", member)
	}
	return start, end, ""
}

// itemName returns the string value of the item's key member, and false if
// the item is not an object or has no single, exactly named, string key.
func itemName(item []byte, key string) ([]byte, bool) {
	if item[0] != '{' {
		return nil, false
	}
	var name []byte
	found := false
	for i := skipWS(item, 1); item[i] != '}'; {
		k, ke := keyAt(item, i)
		vs := skipWS(item, skipWS(item, ke)+1)
		ve := skipValue(item, vs)
		switch {
		case string(k) == key:
			if found {
				return nil, false
			}
			found = true
			var ok bool
			if name, ok = jsonStringBytes(item[vs:ve]); !ok {
				return nil, false
			}
		case bytes.EqualFold(k, []byte(key)):
			return nil, false
		}
		i = skipWS(item, ve)
		if item[i] == ',' {
			i = skipWS(item, i+1)
		}
	}
	return name, found
}
