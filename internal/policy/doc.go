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
// # Sequence rules
//
// [CompileSequence] compiles a second kind of rule, shared by every route,
// that decides a call with what the agent's run has done so far; the
// gateway consults it after the request-level rules of a [Route] allowed
// the request, and the first decision that is not [Allow] wins. Sequence
// decisions name their rule "seq:<id>" (and "seq:identity", "seq:invalid",
// "seq:state" for a call without a principal, with an unusable tool name or
// labels, or when the store fails); an allowed call's RuleID is empty.
//
// A run's history is keyed by [HistoryConfig.Scope]: by default the
// principal (issuer, subject, client_id) across every route and MCP
// session, so that a chain that reads on one server and sends on another is
// seen whole; "subject" widens it to the user across clients, "session"
// narrows it to one Mcp-Session-Id (requests without one use the
// principal's history). A run id from a configured header narrows any
// scope. The principal is part of every key: state never crosses
// principals. A history ends when the store forgets it (its inactivity
// timeout); the store bounds its length (older entries are dropped; taint
// and per-tool counts are kept).
//
// Tools carry labels (configuration, and MCP annotations through
// [AnnotationLabels]); a run's taint is every label of the calls it made,
// plus labels learnt from results ([Sequence.AddResultLabels]). Rule forms:
//
//   - flow: fires when the taint (before this call) holds every listed
//     label and the call matches a matcher: the "lethal trifecta" is taint
//     [untrusted_input, private_data] to tools labelled egress;
//   - order: a call matching Call fires the rule unless an earlier allowed
//     call matched After, or if one matched NeverAfter; with
//     same_arguments, only earlier calls with equal values of those
//     arguments count. Arguments are compared as decoded JSON values:
//     exactly for after (1 and 1.0 are equal, key order and escapes do not
//     matter), loosely for never_after (also as 64-bit floats, numeric
//     strings as numbers, strings trimmed and lower-cased), so that a value
//     an upstream reads differently makes the rule stricter, never weaker.
//     An order rule remembers what it saw in the form it was loaded; a
//     changed rule starts afresh;
//   - budget: fires when Max matching calls were allowed within the sliding
//     Window (an event exactly Window old no longer counts), per run, user
//     or client;
//   - CEL: fires when a bool expression holds (below).
//
// [Sequence.Decide] evaluates every call-phase rule, in order:
//
//   - deny beats step_up: the first firing deny rule decides ([Deny]);
//     otherwise the firing step_up rules decide together
//     ([InsufficientScope], Required = their scopes, RuleID = the first);
//   - a step_up rule whose scope the caller holds (after hierarchy
//     expansion) does not fire;
//   - a rule that cannot be evaluated (a CEL error, the cost limit, an
//     argument it compares missing or not comparable) denies, naming
//     itself and why;
//   - the Reason tells the agent what is not allowed and why (or is the
//     rule's Message), so that it can choose another way;
//   - an allowed call is recorded — entry, labels into the taint, count,
//     argument digests, budget events — in the same store update that read
//     the history, before the call is forwarded: concurrent calls of a run
//     are serialised, lose no update and cannot overrun a budget. A refused
//     call records nothing.
//
// List-phase rules ([Sequence.ListFilter]) hide tools from tools/list: a
// firing rule hides the tool whatever its action (a step_up rule whose
// scope the caller holds does not fire), and so does one that cannot be
// evaluated. They see no arguments. A list rule does not refuse calls: pair
// it with a call rule.
//
// # CEL
//
// A rule's When expression must be of type bool; it is type-checked when
// the configuration loads. Variables: issuer, subject, client_id (string);
// scopes (list of string, expanded); route (string); call.tool,
// call.labels and, in the call phase only, call.args (map of decoded JSON
// values: numbers are doubles) — reading call.args in a list rule is a load
// error; session.history (list of {route, tool, labels, at}, oldest first,
// at most the newest 1000), session.taint (list of string), session.counts
// (map "route/tool" to int; a key never called reads 0, `k in
// session.counts` tells whether it was); request.client_ip and
// request.headers (map of string, headers a trusted proxy set); now
// (timestamp). Functions session.firstCall(tool), session.lastCall(tool),
// session.firstLabelled(label) and session.lastLabelled(label) return an
// index into session.history (-1 if none) by a native scan: prefer them to
// nested comprehensions for ordered patterns. The standard library is
// extended with cel-go's strings, lists, sets, math, bindings, optional
// types and two-variable comprehensions.
//
// Evaluation is bounded by [CELCostLimit]. A rule whose estimated worst
// case fits the limit runs without run-time accounting; others are
// accounted and, when they exceed it, deny. Rules over precomputed
// features (taint, counts, labels, scopes) allocate nothing that grows
// with the history; session.history is a view of the stored entries,
// built only when a rule reads it.
package policy
