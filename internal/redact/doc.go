// Package redact finds credentials in MCP traffic and removes them before
// they reach a model: tool arguments written by a model, and tool results
// returned to it.
//
// A [Scanner] is built once from a [Config] with [New] and is safe for
// concurrent use. [Scanner.ScanJSON] scans a JSON-RPC message or any JSON
// value; [Scanner.ScanText] scans a non-JSON body or a header value. Both
// return a [Result]: the bytes to send, whether anything changed, whether
// the message must be refused, and per-detector counts. Nothing a scan
// returns (findings, errors) contains matched or input text.
//
// # Detectors
//
// The built-in detectors ([BuiltinNames]) are jwt, bearer, basic,
// private_key, aws_access_key, aws_secret_key, gcp_service_account,
// azure, github, gitlab, slack, stripe, openai, anthropic and
// connection_string. Each has an [Action]: redact (the default) replaces
// the match with "[REDACTED:<name>]", block refuses the whole message,
// audit only reports. A built-in can be disabled. User [Pattern]s add
// named RE2 expressions with their own action.
//
// Decisions worth knowing:
//   - bearer and basic redact the credential after the scheme word,
//     keeping "Bearer "; connection_string redacts only the password of
//     scheme://user:password@host (and of password= in JDBC/ADO.NET
//     strings), keeping user, host and database for the reader. A
//     password containing an unencoded '/', '?' or '#' is cut there.
//   - private_key redacts a PEM private key block through its END line, or
//     to the end of the text when there is none (a truncated key is still
//     a key). Public keys and certificates are not matched.
//   - aws_secret_key matches 40 base64 characters only right after a
//     secret-key name (aws_secret_access_key=…, "SecretAccessKey": "…"),
//     and STS session tokens after a session-token name: a bare 40
//     character string is as likely a hash.
//   - gcp_service_account matches AIza API keys and, in a JSON object with
//     "type": "service_account", the private_key and private_key_id
//     values (whole).
//   - azure matches AccountKey= and SharedAccessKey= values, and sig= of a
//     SAS token when the text also has sv=, skn= or SharedAccessSignature.
//   - stripe matches secret and restricted keys and webhook secrets, not
//     publishable keys (pk_live_, pk_test_), which are public by design.
//   - openai matches sk- keys (sk-proj-, sk-svcacct-, legacy) with at least
//     one digit or capital among 32+ characters, and not sk-ant-
//     (anthropic). Stripe's keys use sk_, with an underscore.
//
// # Cost
//
// Each built-in rule has literal keywords; its regular expression runs on
// a text only when one occurs (one Aho-Corasick pass finds them all,
// ASCII case-insensitively), so clean text costs that pass plus the
// live-credential search. Rules whose matches start at a keyword and
// whose failed attempts stop within a bounded distance are tried only at
// the keyword occurrences (\A-anchored, or by an equivalent hand-written
// matcher for "basic" and "bearer", common words); the others search the
// whole text once. All expressions are RE2, so a scan is linear in the
// input for each rule that runs; the nested decodes (depth 4) add at most
// a constant factor. User patterns have no keywords and always run.
//
// # Live credentials
//
// Each scan takes the credentials in play for the request (the client's
// token, the credential the gateway attached upstream). Every occurrence
// of one is redacted as "[REDACTED:live_credential]" whatever the
// configuration, including in escaped forms (JSON with \/, percent
// encoding) and in JSON numbers. Values shorter than [MinLiveLen] bytes
// are ignored, without a report. If a live credential is still in the
// output after redaction (it would have to span JSON syntax), the result
// is blocked rather than sent.
//
// # JSON
//
// ScanJSON decodes every string, member names included (escapes, \u
// surrogate pairs), scans the decoded text and, when it changes, writes
// the new string back with the necessary escapes; all other bytes are
// kept. A string that holds a JSON object or array is walked in turn, and
// a string that still holds escape sequences is also scanned unescaped,
// to a depth of 4, so a secret escaped twice (a tool returning JSON as
// text) is found. When the unescaped form reveals a secret, the string is
// written back unescaped with the secret redacted. Overlapping matches are
// redacted once, labelled by priority: live_credential, then
// gcp_service_account, private_key, jwt, github, gitlab, slack, stripe,
// anthropic, openai, aws_access_key, aws_secret_key, azure,
// connection_string, basic, bearer, then user patterns.
//
// Input larger than Config.MaxScanBytes (16 MiB by default) is blocked
// with reason "too_large"; input ScanJSON cannot parse is an error
// wrapping [ErrInvalidJSON]. The gateway refuses both.
package redact
