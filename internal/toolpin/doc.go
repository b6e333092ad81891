// Package toolpin pins the tool definitions of upstream MCP servers and
// notices when they change: the defence against a "rug pull", where a tool
// that was benign when approved later gets a description carrying
// injected instructions, or a new schema.
//
// The gateway feeds [Pins.Observe] every tools/list result an upstream
// returns (never anything a client sent). The first definition seen of a
// tool is pinned (trust on first use, which a route may turn off with
// [Config.TrustFirstUse]); a later definition with another [Fingerprint]
// is a [Change]. At call time [Pins.Status] and [Decide] say whether the
// call may proceed under the route's [Mode]. An operator accepts a changed
// definition with [Pins.Approve], or from the command line with
// [ApproveInFile], which a running gateway picks up on [Pins.Reload].
//
// # Fingerprints
//
// A fingerprint is "c1:sha256:" and the lowercase hex SHA-256 of the
// definition's canonical form, version c1:
//
//   - Every member of the tool object except "_meta" is covered (the
//     contract names name, title, description, inputSchema, outputSchema
//     and annotations; members added by later protocol versions, such as
//     icons or execution, are covered too, so that nothing a client may
//     show a model escapes the pin).
//   - Objects: members sorted by name (byte order of UTF-8, which is code
//     point order). Duplicate names at any depth are an error, not
//     resolved: with a duplicate, readers that keep the first and readers
//     that keep the last see different definitions, and a change to the
//     one not fingerprinted would go unnoticed. Names that differ only in
//     case are different members and are both covered.
//   - Strings: escapes decoded; written back with only '"', '\' and
//     control characters escaped. No Unicode normalisation: a homoglyph
//     or a decomposed accent is a change. Invalid UTF-8 and unpaired
//     surrogate escapes are errors.
//   - Numbers: exact decimal normalisation (not IEEE doubles, so integers
//     beyond 2^53 keep every digit): significant digits without leading or
//     trailing zeros, then "e" and the exponent unless it is 0. 1, 1.0,
//     1e0 and 10e-1 are equal; -0 equals 0.
//   - Arrays keep their order, except the "required", "enum" and "type"
//     keywords of the JSON Schemas in inputSchema and outputSchema, which
//     are sets: their elements are sorted (duplicates kept). "Schema
//     position" follows the JSON Schema keywords (properties,
//     patternProperties, $defs, definitions, dependentSchemas, items,
//     prefixItems, allOf, anyOf, oneOf, not, if, then, else, contains,
//     additionalProperties, …), so a property named "required", or a
//     "required" array inside a default value or an example, keeps its
//     order. Order anywhere else (tuples, anyOf, defaults, enums outside
//     a schema) is significant: at worst a harmless reordering is flagged.
//   - No whitespace.
//
// A change of canonicalisation would get a new prefix, so that pins made
// under c1 are never compared with fingerprints made otherwise.
//
// # Status
//
// Status looks at the latest definition observed: a tool whose upstream
// goes back to its pinned definition is Pinned again. The gateway should
// therefore also act on the Changes of each list: in block mode, drop the
// changed tools from the list it forwards, so that the agent never reads a
// changed description. Tools that disappear from a list keep their pins
// (lists are paginated, so absence is not removal). Pins are kept per
// route and tool name, not per user: an upstream that serves different
// definitions to different users is seen as changing back and forth.
//
// # The pins file (version 1)
//
//	{
//	  "version": 1,
//	  "tools": [
//	    {
//	      "route": "/servers/docs/mcp",
//	      "tool": "search",
//	      "pin": "c1:sha256:…",            // accepted fingerprint; absent if none
//	      "pin_source": "first_use",       // or "approved"
//	      "pinned_at": "2026-05-01T10:00:00Z",
//	      "observed": "c1:sha256:…",       // latest fingerprint seen
//	      "observed_at": "2026-05-02T09:00:00Z",
//	      "definition": { … }              // only while observed ≠ pin: canonical definition for review
//	    }
//	  ],
//	  "approvals": [
//	    {"route": "/servers/docs/mcp", "tool": "search",
//	     "fingerprint": "c1:sha256:…", "approved_at": "2026-05-02T09:30:00Z"}
//	  ]
//	}
//
// The two sections have different writers. "tools" is the gateway's record
// of what it observed; the gateway rewrites it and never re-reads it while
// running (Reload reads only approvals), so editing it by hand has effect
// only at the next start, and only while the gateway is stopped. "approvals"
// is the operators' input: [ApproveInFile] (mcpgate pins approve) appends
// to it; an operator may append by hand. An approval makes its fingerprint
// the tool's pin; approvals apply in order, and applying them again changes
// nothing. A gateway that writes the file folds the approvals into
// "tools" (pin_source "approved") and empties the list.
//
// Every writer takes an exclusive flock(2) on the file's path plus ".lock"
// (an exclusively created lock file on systems without flock), reads the
// file, applies the approvals it finds and replaces the file atomically
// (temporary file, fsync, rename). So an approval recorded while the
// gateway writes is never lost, and a reader without the lock always sees
// a whole file. The file is created with mode 0600; one that group or
// others may write is refused. One gateway process owns one file: two
// gateways sharing a file would overwrite each other's observations.
//
// The reader is strict: an unknown member, a duplicate name, a version
// other than 1, an invalid fingerprint, a definition that does not match
// its observed fingerprint, or anything else out of place makes the file
// corrupt ([ErrCorrupt]). [New] then refuses to start, and [Pins.Reload]
// keeps the last good state. A file whose version is not 1 was written by
// another mcpgate version and is refused rather than guessed at; a future
// version 2 will read version 1 files.
package toolpin
