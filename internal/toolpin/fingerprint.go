package toolpin

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// fingerprintPrefix names the canonicalisation version (c1, described in
// the package documentation) and the digest. A future canonicalisation
// gets a new prefix, so a pin made under one is never compared as if it
// were made under another.
const fingerprintPrefix = "c1:sha256:"

// maxNameBytes bounds a tool name (the MCP specification suggests at most
// 128 characters).
const maxNameBytes = 1024

// definition is one tool definition of a list: parsed, or found in the
// raw memo (then canonical is nil until needed).
type definition struct {
	name        string
	canonical   []byte // canonical JSON without _meta; nil when not parsed
	fingerprint string
	idx         int    // position in the list observed
	sum         rawSum // SHA-256 of the raw bytes
	parsed      bool   // canonicalized by this observation (not a memo hit)
}

// Fingerprint returns a stable digest of one tool definition, a raw JSON
// object taken from a tools/list result: "c1:sha256:" and 64 lowercase hex
// digits.
//
// Every member of the object except "_meta" is covered: name, title,
// description, inputSchema, outputSchema, annotations, and any member a
// later protocol version adds (icons, execution, …), since a client may
// show any of them to a model. Member order, insignificant whitespace,
// escaping and number spelling do not change the fingerprint; text does,
// to the byte (no Unicode normalisation). Array order is significant
// except for the "required", "enum" and "type" keywords of the JSON
// Schemas in inputSchema and outputSchema. See the package documentation
// for the canonical form.
//
// A definition that is not a JSON object, is not valid UTF-8, has a
// duplicate member name at any depth, an unpaired surrogate escape, nesting
// deeper than 128, no non-empty string "name", or a title or description
// that is not a string, or an inputSchema, outputSchema, annotations or
// _meta that is not an object, yields an error matching [ErrMalformed].
// null is accepted for the optional members and fingerprinted as written.
func Fingerprint(tool []byte) (string, error) {
	d, err := parseDefinition(tool)
	if err != nil {
		return "", err
	}
	return d.fingerprint, nil
}

func parseDefinition(tool []byte) (definition, error) {
	c := canonicalizer{data: tool}
	ms, err := c.document(ctxTool)
	if err != nil {
		return definition{}, err
	}
	var d definition
	kept := ms[:0]
	for _, m := range ms {
		switch m.key {
		case "name":
			if m.val[0] != '"' {
				return definition{}, fmt.Errorf("%w: name is not a string", ErrMalformed)
			}
			if err := json.Unmarshal(m.val, &d.name); err != nil { // canonical, cannot fail
				return definition{}, fmt.Errorf("%w: name: %w", ErrMalformed, err)
			}
		case "title", "description":
			if m.val[0] != '"' && m.val[0] != 'n' {
				return definition{}, fmt.Errorf("%w: %s is not a string", ErrMalformed, m.key)
			}
		case "inputSchema", "outputSchema", "annotations", "_meta":
			if m.val[0] != '{' && m.val[0] != 'n' {
				return definition{}, fmt.Errorf("%w: %s is not an object", ErrMalformed, m.key)
			}
		}
		if m.key != "_meta" {
			kept = append(kept, m)
		}
	}
	switch {
	case d.name == "":
		return definition{}, fmt.Errorf("%w: no tool name", ErrMalformed)
	case len(d.name) > maxNameBytes:
		return definition{}, fmt.Errorf("%w: tool name longer than %d bytes", ErrMalformed, maxNameBytes)
	}
	d.canonical = appendObject(nil, kept)
	sum := sha256.Sum256(d.canonical)
	d.fingerprint = fingerprintPrefix + hex.EncodeToString(sum[:])
	return d, nil
}

// validFingerprint reports whether s has the form Fingerprint returns.
func validFingerprint(s string) bool {
	h, ok := strings.CutPrefix(s, fingerprintPrefix)
	if !ok || len(h) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(h); i++ {
		if !('0' <= h[i] && h[i] <= '9' || 'a' <= h[i] && h[i] <= 'f') {
			return false
		}
	}
	return true
}
