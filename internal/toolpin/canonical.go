// This file implements the canonical JSON form that tool fingerprints are
// computed over: a strict reading of RFC 8259 (duplicate member names,
// invalid UTF-8 and lone surrogates rejected) and an output in the spirit of
// RFC 8785 (JCS) with exact, not floating-point, number normalisation. See
// https://www.rfc-editor.org/rfc/rfc8259 and https://www.rfc-editor.org/rfc/rfc8785.

package toolpin

import (
	"bytes"
	"slices"
	"strings"
)

// maxDepth bounds the nesting of objects and arrays in a definition. JSON
// Schemas produced by real servers nest a few dozen levels at most.
const maxDepth = 128

// schemaCtx says how a value's arrays are compared. Only inside the tool's
// inputSchema and outputSchema, and only at JSON Schema keyword positions,
// is the order of "required", "enum" and "type" arrays not significant;
// everywhere else (tuples in prefixItems, anyOf, default values, examples,
// unknown keywords) order is kept, so a reordering there is a change.
type schemaCtx uint8

const (
	ctxData         schemaCtx = iota // plain JSON data: order significant
	ctxTool                          // the tool object itself
	ctxSchema                        // a JSON Schema
	ctxSchemaMap                     // an object whose member values are schemas
	ctxSchemaList                    // an array of schemas (order kept)
	ctxSchemaOrList                  // "items": a schema or an array of schemas
	ctxSet                           // an array whose order is not significant
)

// childContext returns the context of the member named key of an object in
// context parent.
func childContext(parent schemaCtx, key string) schemaCtx {
	switch parent {
	case ctxTool:
		if key == "inputSchema" || key == "outputSchema" {
			return ctxSchema
		}
	case ctxSchemaMap:
		return ctxSchema
	case ctxSchema:
		switch key {
		case "properties", "patternProperties", "$defs", "definitions", "dependentSchemas":
			return ctxSchemaMap
		case "additionalProperties", "not", "if", "then", "else", "contains",
			"propertyNames", "unevaluatedItems", "unevaluatedProperties",
			"additionalItems", "contentSchema":
			return ctxSchema
		case "items":
			return ctxSchemaOrList
		case "allOf", "anyOf", "oneOf", "prefixItems":
			return ctxSchemaList
		case "required", "enum", "type":
			return ctxSet
		}
	}
	return ctxData
}

// member is one decoded object member with its canonical value.
type member struct {
	key string
	val []byte
	off int // offset of the member name, for error messages
}

// canonicalizer reads one JSON value strictly and produces its canonical
// form. It is used once and discarded.
type canonicalizer struct {
	data     []byte
	pos      int
	maxDepth int // 0 → maxDepth
}

func (c *canonicalizer) tooDeep(depth int) bool {
	if c.maxDepth == 0 {
		return depth > maxDepth
	}
	return depth > c.maxDepth
}

func (c *canonicalizer) fail(at int, msg string) error {
	return &SyntaxError{Offset: at, Msg: msg}
}

// document reads the whole input as one object and returns its members,
// each value in canonical form, sorted by name.
func (c *canonicalizer) document(cx schemaCtx) ([]member, error) {
	c.ws()
	if c.pos >= len(c.data) || c.data[c.pos] != '{' {
		return nil, c.fail(c.pos, "not a JSON object")
	}
	ms, err := c.members(1, cx)
	if err != nil {
		return nil, err
	}
	c.ws()
	if c.pos != len(c.data) {
		return nil, c.fail(c.pos, "data after the object")
	}
	return ms, nil
}

func (c *canonicalizer) ws() {
	for c.pos < len(c.data) {
		switch c.data[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

// value reads one value at nesting depth depth and returns its canonical
// bytes.
func (c *canonicalizer) value(depth int, cx schemaCtx) ([]byte, error) {
	c.ws()
	if c.pos >= len(c.data) {
		return nil, c.fail(c.pos, "unexpected end of input")
	}
	switch b := c.data[c.pos]; {
	case b == '{':
		if cx == ctxSchemaOrList {
			cx = ctxSchema
		}
		ms, err := c.members(depth+1, cx)
		if err != nil {
			return nil, err
		}
		return appendObject(nil, ms), nil
	case b == '[':
		return c.array(depth+1, cx)
	case b == '"':
		s, err := c.str()
		if err != nil {
			return nil, err
		}
		return appendString(nil, s), nil
	case b == 't':
		return c.literal("true")
	case b == 'f':
		return c.literal("false")
	case b == 'n':
		return c.literal("null")
	case b == '-' || isDigit(b):
		return c.number()
	default:
		return nil, c.fail(c.pos, "unexpected character")
	}
}

func (c *canonicalizer) literal(lit string) ([]byte, error) {
	if !bytes.HasPrefix(c.data[c.pos:], []byte(lit)) {
		return nil, c.fail(c.pos, "invalid literal")
	}
	c.pos += len(lit)
	return []byte(lit), nil
}

// members reads an object (c.pos at '{'), rejecting duplicate names, and
// returns its members sorted by name (byte order of the UTF-8 names, which
// is code point order).
func (c *canonicalizer) members(depth int, cx schemaCtx) ([]member, error) {
	if c.tooDeep(depth) {
		return nil, c.fail(c.pos, "nesting too deep")
	}
	c.pos++ // '{'
	var ms []member
	c.ws()
	if c.pos < len(c.data) && c.data[c.pos] == '}' {
		c.pos++
		return ms, nil
	}
	for {
		c.ws()
		if c.pos >= len(c.data) || c.data[c.pos] != '"' {
			return nil, c.fail(c.pos, "expected a member name")
		}
		off := c.pos
		key, err := c.str()
		if err != nil {
			return nil, err
		}
		c.ws()
		if c.pos >= len(c.data) || c.data[c.pos] != ':' {
			return nil, c.fail(c.pos, "expected ':'")
		}
		c.pos++
		val, err := c.value(depth, childContext(cx, key))
		if err != nil {
			return nil, err
		}
		ms = append(ms, member{key: key, val: val, off: off})
		c.ws()
		if c.pos >= len(c.data) {
			return nil, c.fail(c.pos, "unexpected end of input")
		}
		switch c.data[c.pos] {
		case ',':
			c.pos++
			continue
		case '}':
			c.pos++
		default:
			return nil, c.fail(c.pos, "expected ',' or '}'")
		}
		break
	}
	slices.SortStableFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) })
	for i := 1; i < len(ms); i++ {
		if ms[i].key == ms[i-1].key {
			return nil, c.fail(max(ms[i].off, ms[i-1].off), "duplicate member name")
		}
	}
	return ms, nil
}

// array reads an array (c.pos at '['). In ctxSet its canonical elements are
// sorted (duplicates kept); otherwise their order is kept.
func (c *canonicalizer) array(depth int, cx schemaCtx) ([]byte, error) {
	if c.tooDeep(depth) {
		return nil, c.fail(c.pos, "nesting too deep")
	}
	c.pos++ // '['
	elem := ctxData
	if cx == ctxSchemaList || cx == ctxSchemaOrList {
		elem = ctxSchema
	}
	var vals [][]byte
	c.ws()
	if c.pos < len(c.data) && c.data[c.pos] == ']' {
		c.pos++
		return []byte("[]"), nil
	}
	for {
		v, err := c.value(depth, elem)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
		c.ws()
		if c.pos >= len(c.data) {
			return nil, c.fail(c.pos, "unexpected end of input")
		}
		switch c.data[c.pos] {
		case ',':
			c.pos++
			continue
		case ']':
			c.pos++
		default:
			return nil, c.fail(c.pos, "expected ',' or ']'")
		}
		break
	}
	if cx == ctxSet {
		slices.SortFunc(vals, bytes.Compare)
	}
	n := 2 + len(vals) - 1
	for _, v := range vals {
		n += len(v)
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, v := range vals {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, v...)
	}
	return append(out, ']'), nil
}

// appendObject writes sorted members as a canonical object.
func appendObject(dst []byte, ms []member) []byte {
	dst = append(dst, '{')
	for i, m := range ms {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, m.key)
		dst = append(dst, ':')
		dst = append(dst, m.val...)
	}
	return append(dst, '}')
}
