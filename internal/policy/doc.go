// Package policy is stage 4 of the gateway: request-level authorization.
//
// A route's policy is compiled once from a [RouteConfig] by [Compile] and then
// answers two questions on the hot path:
//
//   - [Route.Decide]: may this request (tools/call, prompts/get,
//     resources/read, resources/subscribe, resources/unsubscribe, or any other
//     method) go upstream? The answer is a [Decision]: [Allow],
//     [InsufficientScope] (the gateway steps up with 403 and a
//     WWW-Authenticate challenge listing [Decision.Required]) or [Deny] (a
//     JSON-RPC error; stepping up cannot help).
//   - [Route.Filter]: which items of a tools/list, prompts/list,
//     resources/list or resources/templates/list result may this caller see?
//
// Scopes are checked against a [Grant], the token's scopes expanded once per
// request through the configured [Hierarchy] (docs:write ⇒ docs:read).
//
// # Scopes
//
// A token satisfies scope S iff S is in the expanded grant. The route's
// RequiredScopes apply to every request; a tool, prompt or resource rule adds
// its own. When any is missing the decision lists every scope the operation
// needs at once, never one at a time.
//
// A rule's scope may be a template such as "document:read:{project}". The
// variable is filled from the tools/call or prompts/get argument of the same
// name, or from the resource URI segment the rule names {project}. A value is
// used only if it is a JSON string (for arguments), fully matches the
// configured RE2 pattern (anchored implicitly) and consists of RFC 6749 scope
// characters (%x21 / %x23-5B / %x5D-7E), whatever the pattern says. Anything
// else is a [Deny]: a different token cannot fix a bad argument.
//
// # Resource URIs
//
// Before any rule is consulted a resource URI is refused ([Deny]) if it is not
// an absolute URI that a normalising upstream would read the same way:
//
//   - it contains ".." anywhere, or a "." path segment;
//   - it contains a percent-encoded dot, slash or backslash (%2e, %2f, %5c in
//     any case), an encoded percent sign (%25, which decodes to one of those on
//     a second pass), an encoded control character, an encoded unreserved
//     character (letters, digits, "-", ".", "_", "~", which RFC 3986 §6.2.2.2
//     says are never encoded: "%73ecret" is "secret" to a decoding upstream),
//     or a malformed escape;
//   - it contains a backslash, a control character, whitespace or any
//     non-ASCII byte (IRIs must be percent-encoded);
//   - its path contains an empty segment ("//") other than the one after
//     "scheme:";
//   - it is longer than 4096 bytes.
//
// Rules are then tried in order and the first whose shape matches wins. An
// exact rule matches the URI text exactly, except that the scheme is compared
// case-insensitively. A template rule ("docs://projects/{project}/readme")
// matches a URI with the same number of segments whose literal segments are
// equal; each {var} stands for exactly one non-empty segment, whose raw text
// (not percent-decoded) must then satisfy the variable's pattern — if it does
// not, the request is denied rather than tried against later rules. A prefix
// rule ending in "/*" ("docs://public/*") matches only URIs that continue the
// prefix by at least one whole segment: "docs://public/a/b" but never
// "docs://publicity" or "docs://public". Deny rules compare every literal
// segment, authority and path, case-insensitively, so that they match at
// least what a case-insensitive upstream may treat as the same resource. Compile rejects a rule that an
// earlier rule makes unreachable.
//
// Prefer allow-lists (the default denies unlisted items) over broad allows
// with narrower denials: rules compare text, and an upstream may normalise
// URIs in ways (path parameters, case of a custom authority) that are not
// modelled here.
//
// # Further kinds of rule
//
// This package will also hold sequence-aware rules (labels, taint, ordered
// patterns, budgets, CEL). They are a second kind of rule evaluated after
// the request-level rules of a [Route]; they report through the same
// [Decision], with their own RuleID namespace, and the first decision that is
// not [Allow] wins.
package policy
