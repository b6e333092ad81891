package redact

import (
	"encoding/base64"
	"slices"
	"unicode/utf8"
)

// Built-in detector names, in priority order: when matches of several
// detectors overlap, the redaction is labelled with the earliest in this
// list (live_credential before all of them, user patterns after).
func builtinOrder() []string {
	return []string{
		"gcp_service_account",
		"private_key",
		"jwt",
		"github",
		"gitlab",
		"slack",
		"stripe",
		"anthropic",
		"openai",
		"aws_access_key",
		"aws_secret_key",
		"azure",
		"connection_string",
		"basic",
		"bearer",
	}
}

// BuiltinNames returns the names of the built-in detectors, sorted.
// live_credential is not among them: it cannot be configured.
func BuiltinNames() []string {
	n := builtinOrder()
	slices.Sort(n)
	return n
}

// ruleSpec is one regular expression of a built-in detector.
type ruleSpec struct {
	det string
	// keywords: the rule runs on a text only if one of them occurs in it
	// (ASCII case-insensitive). Lowercase.
	keywords []string
	// also: if set, one of these must occur in the text as well.
	also []string
	expr string
	// group is the submatch that is redacted (0: the whole match).
	group int
	// bound: the redacted part must not touch an ASCII letter or digit on
	// either side (a word boundary that, unlike \b, treats '_' as a
	// separator: "token_ghp_…" is found).
	bound bool
	// contextual: in JSON, the rule also runs on `<key>": "<value>` for a
	// member whose key holds one of the keywords, so that
	// {"SecretAccessKey": "…"} is found although key and value are
	// separate strings.
	contextual bool
	// verify, if set, must accept text[s:e] (the redacted part).
	verify func(text []byte, s, e int) bool
	// anchored: every match starts at one of the keywords, and an attempt
	// that fails does so within a bounded distance (or at the end of a
	// run that a success would consume whole). The expression is then
	// tried only at the keyword occurrences, \A-anchored, instead of over
	// the whole text: expressions without a literal prefix (case-folded
	// ones) are slow in Go's regexp when run unanchored.
	anchored bool
	// before, if set, must accept the text before an anchored match
	// starting at p (lookbehind, which RE2 lacks).
	before func(text []byte, p int) bool
	// match, if set, replaces the anchored expression at run time: a
	// hand-written equivalent for rules whose keyword is a common word,
	// where the regexp call overhead (~300ns) would dominate. It returns
	// the redacted span and the end of the whole match, ok false if there
	// is no match at p. Tests check it against expr.
	match func(text []byte, p int) (s, e, end int, ok bool)
}

// builtinRules returns the rules of the built-in detectors. The regular
// expressions are RE2 (linear time); unbounded repetitions are written
// as {n}x* rather than {n,m} to keep the compiled programs small.
func builtinRules() []ruleSpec {
	const b64url = `[A-Za-z0-9_\-]`
	return []ruleSpec{
		// A service-account key file carried as text (JSON values are
		// handled structurally by the JSON walker).
		{det: "gcp_service_account", keywords: []string{`"private_key`}, also: []string{"service_account"},
			expr: `"private_key(?:_id)?"\s*:\s*"((?:[^"\\]|\\.)+)"`, group: 1},
		{det: "gcp_service_account", keywords: []string{"aiza"},
			expr: `AIza[0-9A-Za-z_\-]{35}`, bound: true, anchored: true},
		// PEM private keys (PKCS#1/#8, EC, DSA, OpenSSH, encrypted, PGP):
		// the whole block through END, or to the end of the text.
		{det: "private_key", keywords: []string{"private key"},
			expr: `-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|\z)`},
		// JWS (3 segments) or JWE (5), header a base64url JSON object.
		{det: "jwt", keywords: []string{"eyj"},
			expr: `eyJ` + b64url + `{8}` + b64url + `*\.(?:` +
				b64url + `*\.` + b64url + `{2}` + b64url + `*\.` + b64url + `{2}` + b64url + `*\.` + b64url + `*|` +
				b64url + `{2}` + b64url + `*\.` + b64url + `*)`},
		{det: "github", keywords: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"},
			expr: `gh[pousr]_[A-Za-z0-9]{36}[A-Za-z0-9]*`, bound: true, anchored: true},
		{det: "github", keywords: []string{"github_pat_"},
			expr: `github_pat_[A-Za-z0-9_]{22}[A-Za-z0-9_]*`, bound: true, anchored: true},
		{det: "gitlab", keywords: []string{"glpat-", "gldt-", "glptt-", "glrt-", "glcbt-", "glft-", "glimt-",
			"glagent-", "gloas-", "glsoat-", "glffct-", "glwt-", "gr1348941"},
			expr:  `(?:gl(?:pat|dt|ptt|rt|cbt|ft|imt|agent|oas|soat|ffct|wt)-|GR1348941)[A-Za-z0-9_\-]{20}(?:[A-Za-z0-9_\-]|\.[A-Za-z0-9_\-])*`,
			bound: true, anchored: true},
		{det: "slack", keywords: []string{"xox", "xapp-"},
			expr: `(?:xox[abeoprs]|xoxe\.xox[bp]|xapp)-[0-9]+-[0-9A-Za-z\-]{8}[0-9A-Za-z\-]*`, bound: true, anchored: true},
		{det: "slack", keywords: []string{"hooks.slack.com"},
			expr: `hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_\-]{16}[A-Za-z0-9+/_\-]*`},
		// Secret and restricted keys and webhook signing secrets. Publishable
		// keys (pk_live_, pk_test_) are public by design and not matched.
		{det: "stripe", keywords: []string{"sk_live_", "sk_test_", "sk_prod_", "rk_live_", "rk_test_", "rk_prod_", "whsec_"},
			expr:  `[sr]k_(?:live|test|prod)_[A-Za-z0-9]{10}[A-Za-z0-9]*|whsec_[A-Za-z0-9+/]{24}[A-Za-z0-9+/]*={0,2}`,
			bound: true, anchored: true},
		{det: "anthropic", keywords: []string{"sk-ant-"},
			expr: `sk-ant-[A-Za-z0-9_\-]{32}[A-Za-z0-9_\-]*`, bound: true, anchored: true},
		// sk-…, sk-proj-…, sk-svcacct-…, sk-admin-… (and the many
		// OpenAI-compatible APIs using sk-). Not sk-ant- (anthropic); the
		// dash keeps it apart from Stripe's sk_.
		{det: "openai", keywords: []string{"sk-"},
			expr: `sk-[A-Za-z0-9_\-]{32}[A-Za-z0-9_\-]*`, bound: true, anchored: true, verify: openAIKey},
		{det: "aws_access_key", keywords: []string{"akia", "asia", "abia", "acca", "a3t"},
			expr: `(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}`, bound: true, anchored: true},
		// 40 base64 characters only right after a secret-key name (a bare
		// 40-character string is as likely a hash).
		{det: "aws_secret_key", contextual: true,
			keywords: []string{"secretaccess", "secret_access", "secret-access", "secret access",
				"aws_secret", "aws-secret", "awssecret", "aws secret"},
			expr:  `(?i)(?:secret[_\- ]?access[_\- ]?key|aws[_\- ]?secret(?:[_\- ]?key)?)[^A-Za-z0-9/+\r\n]{1,8}([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|\z)`,
			group: 1, anchored: true},
		// STS session tokens travel with ASIA keys.
		{det: "aws_secret_key", contextual: true,
			keywords: []string{"sessiontoken", "session_token", "session-token", "securitytoken", "security_token", "security-token"},
			expr:     `(?i)(?:session|security)[_\-]?token[^A-Za-z0-9/+\r\n]{1,8}([A-Za-z0-9/+]{100}[A-Za-z0-9/+]*={0,2})`,
			group:    1, anchored: true},
		// Storage account keys and Service Bus / Event Hubs shared access
		// keys in connection strings.
		{det: "azure", contextual: true, keywords: []string{"accountkey", "sharedaccesskey"},
			expr:  `(?i)(?:AccountKey|SharedAccessKey)["']?[ \t]*[=:][ \t]*["']?([A-Za-z0-9+/]{40}[A-Za-z0-9+/]*={0,2})`,
			group: 1, anchored: true},
		// SAS signatures, when the text also looks like a SAS token.
		{det: "azure", keywords: []string{"sig="}, also: []string{"sv=", "sharedaccesssignature", "skn="},
			expr: `(?i)sig=([A-Za-z0-9%+/=]{16}[A-Za-z0-9%+/=]*)`, group: 1, anchored: true, before: afterParamSep},
		// The password of a URL's userinfo (scheme://user:password@host);
		// user, host and path are kept.
		{det: "connection_string", keywords: []string{"://"},
			expr: `://[^\s/?#@:'"<>]*:([^\s/?#'"<>]+)@`, group: 1},
		// password= in JDBC query strings and ADO.NET connection strings.
		{det: "connection_string", keywords: []string{"password"},
			expr: `(?i)password[ \t]*=[ \t]*([^&;\s'"<>=][^&;\s'"<>]*)`, group: 1, anchored: true, before: afterParamSepSpace},
		{det: "basic", keywords: []string{"basic"},
			expr: `(?i)basic[ \t]+([A-Za-z0-9+/]{6}[A-Za-z0-9+/]*={0,2})`, group: 1, verify: basicCredentials,
			anchored: true, before: notAfterWord, match: matchBasic},
		{det: "bearer", keywords: []string{"bearer"},
			expr: `(?i)bearer[ \t]+([A-Za-z0-9\-._~+/]{16}[A-Za-z0-9\-._~+/]*=*)`, group: 1, verify: bearerToken,
			anchored: true, before: notAfterWord, match: matchBearer},
	}
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// notAfterWord is \b before a word: no letter, digit or _ before p.
func notAfterWord(text []byte, p int) bool {
	return p == 0 || !isAlnum(text[p-1]) && text[p-1] != '_'
}

// afterParamSep: p starts the text or follows ? & ; or whitespace.
func afterParamSep(text []byte, p int) bool {
	if p == 0 {
		return true
	}
	switch text[p-1] {
	case '?', '&', ';', ' ', '\t', '\r', '\n', '\f', '\v':
		return true
	}
	return false
}

// afterParamSepSpace: p follows ? & or ;, with spaces or tabs between.
func afterParamSepSpace(text []byte, p int) bool {
	for p > 0 && (text[p-1] == ' ' || text[p-1] == '\t') {
		p--
	}
	return p > 0 && (text[p-1] == '?' || text[p-1] == '&' || text[p-1] == ';')
}

// schemeToken matches, at p, the ASCII case-insensitive word kw, one or
// more spaces or tabs, at least min bytes accepted by tok, and up to pad
// '=' (pad < 0: any number).
func schemeToken(text []byte, p int, kw string, tok func(byte) bool, min, pad int) (s, e, end int, ok bool) {
	if len(text)-p < len(kw) {
		return 0, 0, 0, false
	}
	for i := range len(kw) {
		if lowerASCII(text[p+i]) != kw[i] {
			return 0, 0, 0, false
		}
	}
	i := p + len(kw)
	j := i
	for j < len(text) && (text[j] == ' ' || text[j] == '\t') {
		j++
	}
	if j == i {
		return 0, 0, 0, false
	}
	s = j
	for j < len(text) && tok(text[j]) {
		j++
	}
	if j-s < min {
		return 0, 0, 0, false
	}
	for n := 0; j < len(text) && text[j] == '=' && (pad < 0 || n < pad); n++ {
		j++
	}
	return s, j, j, true
}

func isBase64(c byte) bool { return isAlnum(c) || c == '+' || c == '/' }

func isB64Token(c byte) bool { // RFC 6750 b64token, without the '=' padding
	return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

func matchBasic(text []byte, p int) (int, int, int, bool) {
	return schemeToken(text, p, "basic", isBase64, 6, 2)
}

func matchBearer(text []byte, p int) (int, int, int, bool) {
	return schemeToken(text, p, "bearer", isB64Token, 16, -1)
}

// bearerToken accepts a token with a digit or with both cases: an opaque
// token, not a word ("Bearer authentication-required").
func bearerToken(text []byte, s, e int) bool {
	var digit, upper, lower bool
	for _, c := range text[s:e] {
		switch {
		case isDigit(c):
			digit = true
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		}
	}
	return digit || upper && lower
}

// openAIKey rejects Anthropic keys and kebab-case words ("sk-" ending an
// identifier followed by lowercase words).
func openAIKey(text []byte, s, e int) bool {
	t := text[s:e]
	if len(t) >= 7 && string(t[:7]) == "sk-ant-" {
		return false
	}
	for _, c := range t[3:] {
		if isDigit(c) || c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}

// basicCredentials accepts base64 that decodes to printable "user:password".
func basicCredentials(text []byte, s, e int) bool {
	t := text[s:e]
	for len(t) > 0 && t[len(t)-1] == '=' {
		t = t[:len(t)-1]
	}
	var small [96]byte
	var buf []byte
	if n := base64.RawStdEncoding.DecodedLen(len(t)); n <= len(small) {
		buf = small[:n]
	} else {
		buf = make([]byte, n)
	}
	n, err := base64.RawStdEncoding.Decode(buf, t)
	if err != nil || n < 2 || !utf8.Valid(buf[:n]) {
		return false
	}
	colon := false
	for _, c := range buf[:n] {
		if c < 0x20 || c == 0x7f {
			return false
		}
		colon = colon || c == ':'
	}
	return colon
}
