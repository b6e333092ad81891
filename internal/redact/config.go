package redact

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// Action says what happens to a match of a detector.
type Action int

const (
	// ActionRedact replaces the match with "[REDACTED:<name>]". It is the
	// zero value: a built-in detector not named in [Config.Actions], and a
	// [Pattern] without an Action, redact.
	ActionRedact Action = iota
	// ActionBlock refuses the whole message: [Result.Blocked] is set and
	// [Result.Out] is nil.
	ActionBlock
	// ActionAudit reports the match in [Result.Findings] and leaves the
	// text as it is.
	ActionAudit
)

// String returns "redact", "block" or "audit".
func (a Action) String() string {
	switch a {
	case ActionRedact:
		return "redact"
	case ActionBlock:
		return "block"
	case ActionAudit:
		return "audit"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

func (a Action) valid() bool { return a >= ActionRedact && a <= ActionAudit }

// ParseAction parses "redact", "block" or "audit" (case-insensitive,
// surrounding spaces ignored).
func ParseAction(s string) (Action, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "redact":
		return ActionRedact, nil
	case "block":
		return ActionBlock, nil
	case "audit":
		return ActionAudit, nil
	}
	return 0, fmt.Errorf("%w: %q (want redact, block or audit)", ErrAction, s)
}

// MarshalText implements encoding.TextMarshaler, so that an Action is
// written as its name in JSON and YAML configuration.
func (a Action) MarshalText() ([]byte, error) {
	if !a.valid() {
		return nil, fmt.Errorf("%w: %d", ErrAction, int(a))
	}
	return []byte(a.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with [ParseAction].
func (a *Action) UnmarshalText(b []byte) error {
	v, err := ParseAction(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Sentinel errors; match them with errors.Is.
var (
	// ErrConfig: a [Config] is invalid. Validate joins one wrapped error
	// per problem.
	ErrConfig = errors.New("invalid redact config")
	// ErrAction: an action name or value other than redact, block, audit.
	ErrAction = errors.New("invalid action")
	// ErrInvalidJSON: ScanJSON was given something that is not one
	// well-formed JSON value. The message carries a byte offset and a
	// reason, never input bytes.
	ErrInvalidJSON = errors.New("invalid JSON")
)

// LiveCredential is the detector name of the exact-match scan for the
// live credentials passed to a scan. It always redacts and cannot be
// configured or disabled.
const LiveCredential = "live_credential"

// MinLiveLen is the shortest live credential looked for; shorter values
// are silently ignored (they would redact ordinary text).
const MinLiveLen = 8

// DefaultMaxScanBytes is the size cap used when Config.MaxScanBytes is 0.
const DefaultMaxScanBytes = 16 << 20

// Pattern is a user-defined detector.
type Pattern struct {
	// Name labels findings and redactions ("[REDACTED:<Name>]"): 1 to 64
	// of A-Z a-z 0-9 _ . -, not a built-in name, unique.
	Name string
	// Regex is Go RE2 syntax (regexp package). If it has a capture group
	// named "secret", only that group is redacted (so a pattern can use
	// surrounding context, e.g. `token=(?P<secret>\w{20,})`); otherwise
	// the whole match is. The redacted part must not be able to match the
	// empty string.
	Regex string
	// Action for matches; the zero value redacts.
	Action Action
}

// Config selects and tunes the detectors. The zero Config runs every
// built-in detector with ActionRedact and a 16 MiB size cap.
type Config struct {
	// Actions maps a built-in detector name (see [BuiltinNames]) to its
	// action. Built-ins not named redact.
	Actions map[string]Action
	// Disabled names built-in detectors that do not run.
	Disabled []string
	// Patterns are user-defined detectors. They run on every scanned
	// string (they have no keyword prefilter), after the built-ins.
	Patterns []Pattern
	// MaxScanBytes caps the input of one scan; larger input is blocked
	// with reason "too_large", never passed unscanned. 0 means
	// DefaultMaxScanBytes.
	MaxScanBytes int64
}

// validName reports whether s is 1 to 64 of A-Z a-z 0-9 _ . -.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// Validate reports every problem of c, joined; nil if c is usable.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	builtin := make(map[string]bool)
	for _, n := range BuiltinNames() {
		builtin[n] = true
	}
	for name, a := range c.Actions {
		switch {
		case name == LiveCredential:
			bad("actions: %s always redacts and cannot be configured", LiveCredential)
		case !builtin[name]:
			bad("actions: unknown built-in detector %q", name)
		case !a.valid():
			bad("actions: %s: %v", name, fmt.Errorf("%w: %d", ErrAction, int(a)))
		}
	}
	for _, name := range c.Disabled {
		switch {
		case name == LiveCredential:
			bad("disabled: %s cannot be disabled", LiveCredential)
		case !builtin[name]:
			bad("disabled: unknown built-in detector %q", name)
		}
	}
	seen := make(map[string]bool)
	for i, p := range c.Patterns {
		switch {
		case !validName(p.Name):
			bad("patterns[%d]: name %q: want 1 to 64 of A-Z a-z 0-9 _ . -", i, p.Name)
		case builtin[p.Name] || p.Name == LiveCredential:
			bad("patterns[%d]: name %q is a built-in detector", i, p.Name)
		case seen[p.Name]:
			bad("patterns[%d]: duplicate name %q", i, p.Name)
		}
		seen[p.Name] = true
		if !p.Action.valid() {
			bad("patterns[%d] (%s): %v", i, p.Name, fmt.Errorf("%w: %d", ErrAction, int(p.Action)))
		}
		if _, _, err := compilePattern(p.Regex); err != nil {
			bad("patterns[%d] (%s): %w", i, p.Name, err)
		}
	}
	if c.MaxScanBytes < 0 {
		bad("max scan bytes %d is negative", c.MaxScanBytes)
	}
	return errors.Join(errs...)
}

// compilePattern compiles a user regex and returns the index of the
// group to redact (0: whole match). It refuses a regex whose redacted part
// can match the empty string.
func compilePattern(expr string) (*regexp.Regexp, int, error) {
	if expr == "" {
		return nil, 0, errors.New("empty regex")
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, 0, fmt.Errorf("regex: %w", err)
	}
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil { // unreachable: Compile parsed it the same way
		return nil, 0, fmt.Errorf("regex: %w", err)
	}
	group := re.SubexpIndex("secret")
	part := tree
	if group > 0 {
		part = findCapture(tree, "secret")
	}
	if part == nil || minLen(part) == 0 {
		return nil, 0, errors.New("regex can match the empty string")
	}
	if group < 0 {
		group = 0
	}
	return re, group, nil
}

func findCapture(re *syntax.Regexp, name string) *syntax.Regexp {
	if re.Op == syntax.OpCapture && re.Name == name {
		return re
	}
	for _, s := range re.Sub {
		if f := findCapture(s, name); f != nil {
			return f
		}
	}
	return nil
}

// minLen is the length in runes of the shortest text re can match,
// capped at 1<<20. Zero-width assertions count 0; a class that matches
// nothing counts 1 (it can never produce an empty match).
func minLen(re *syntax.Regexp) int {
	const limit = 1 << 20
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune)
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL, syntax.OpNoMatch:
		return 1
	case syntax.OpCapture, syntax.OpPlus:
		return minLen(re.Sub[0])
	case syntax.OpRepeat:
		return min(limit, re.Min*minLen(re.Sub[0]))
	case syntax.OpConcat:
		n := 0
		for _, s := range re.Sub {
			n = min(limit, n+minLen(s))
		}
		return n
	case syntax.OpAlternate:
		n := limit
		for _, s := range re.Sub {
			n = min(n, minLen(s))
		}
		return n
	}
	// OpEmptyMatch, OpStar, OpQuest and the zero-width assertions.
	return 0
}
