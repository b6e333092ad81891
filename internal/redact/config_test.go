package redact

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAction(t *testing.T) {
	for _, a := range []Action{ActionRedact, ActionBlock, ActionAudit} {
		got, err := ParseAction(" " + strings.ToUpper(a.String()) + " ")
		if err != nil || got != a {
			t.Errorf("ParseAction(%s) = %v, %v", a, got, err)
		}
	}
	for _, s := range []string{"", "deny", "redacted", "off"} {
		if _, err := ParseAction(s); !errors.Is(err, ErrAction) {
			t.Errorf("ParseAction(%q) err = %v, want ErrAction", s, err)
		}
	}
	if s := Action(7).String(); s != "Action(7)" {
		t.Errorf("String = %q", s)
	}
	// Text round trip, as configuration files use it.
	var c struct{ Actions map[string]Action }
	if err := json.Unmarshal([]byte(`{"Actions":{"github":"block","jwt":"audit","slack":"redact"}}`), &c); err != nil {
		t.Fatal(err)
	}
	want := map[string]Action{"github": ActionBlock, "jwt": ActionAudit, "slack": ActionRedact}
	if d := cmp.Diff(want, c.Actions); d != "" {
		t.Error(d)
	}
	b, err := json.Marshal(c)
	if err != nil || string(b) != `{"Actions":{"github":"block","jwt":"audit","slack":"redact"}}` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
	if _, err := json.Marshal(Action(9)); !errors.Is(err, ErrAction) {
		t.Errorf("Marshal(Action(9)) err = %v", err)
	}
	if err := json.Unmarshal([]byte(`{"Actions":{"x":"nope"}}`), &c); !errors.Is(err, ErrAction) {
		t.Errorf("Unmarshal(nope) err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the joined error; nil: valid
	}{
		{"zero", Config{}, nil},
		{"full", Config{
			Actions:      map[string]Action{"github": ActionBlock, "jwt": ActionAudit},
			Disabled:     []string{"basic"},
			Patterns:     []Pattern{{Name: "acme", Regex: `acme_[a-z0-9]{16}`}, {Name: "t.k-2", Regex: `tok=(?P<secret>\w+)`, Action: ActionAudit}},
			MaxScanBytes: 1 << 20,
		}, nil},
		{"unknown action name", Config{Actions: map[string]Action{"githu": ActionBlock}}, []string{`unknown built-in detector "githu"`}},
		{"bad action value", Config{Actions: map[string]Action{"github": 5}}, []string{"github", "invalid action"}},
		{"live in actions", Config{Actions: map[string]Action{LiveCredential: ActionAudit}}, []string{"cannot be configured"}},
		{"live disabled", Config{Disabled: []string{LiveCredential}}, []string{"cannot be disabled"}},
		{"unknown disabled", Config{Disabled: []string{"nope"}}, []string{`unknown built-in detector "nope"`}},
		{"invalid regex", Config{Patterns: []Pattern{{Name: "x", Regex: `a(b`}}}, []string{"patterns[0] (x)", "missing closing )"}},
		{"empty regex", Config{Patterns: []Pattern{{Name: "x", Regex: ``}}}, []string{"empty regex"}},
		{"star", Config{Patterns: []Pattern{{Name: "x", Regex: `a*`}}}, []string{"empty string"}},
		{"word boundary", Config{Patterns: []Pattern{{Name: "x", Regex: `\b`}}}, []string{"empty string"}},
		{"alternative", Config{Patterns: []Pattern{{Name: "x", Regex: `abc|(?:)`}}}, []string{"empty string"}},
		{"optional", Config{Patterns: []Pattern{{Name: "x", Regex: `(?i)(?:key)?\d{0,4}`}}}, []string{"empty string"}},
		{"empty secret group", Config{Patterns: []Pattern{{Name: "x", Regex: `token=(?P<secret>\w*)`}}}, []string{"empty string"}},
		{"bad names", Config{Patterns: []Pattern{
			{Name: "", Regex: "a"}, {Name: "a b", Regex: "a"}, {Name: "x]", Regex: "a"}, {Name: strings.Repeat("n", 65), Regex: "a"},
		}}, []string{"patterns[0]", "patterns[1]", "patterns[2]", "patterns[3]"}},
		{"builtin name", Config{Patterns: []Pattern{{Name: "github", Regex: "a"}, {Name: LiveCredential, Regex: "b"}}}, []string{`"github" is a built-in`, `"live_credential" is a built-in`}},
		{"duplicate", Config{Patterns: []Pattern{{Name: "d", Regex: "a"}, {Name: "d", Regex: "b"}}}, []string{`duplicate name "d"`}},
		{"pattern action", Config{Patterns: []Pattern{{Name: "p", Regex: "a", Action: -1}}}, []string{"patterns[0] (p)", "invalid action"}},
		{"negative size", Config{MaxScanBytes: -1}, []string{"negative"}},
		{"everything at once", Config{
			Actions:      map[string]Action{"nope": ActionRedact},
			Disabled:     []string{LiveCredential},
			Patterns:     []Pattern{{Name: "x", Regex: "("}},
			MaxScanBytes: -5,
		}, []string{`"nope"`, "cannot be disabled", "patterns[0]", "negative"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			_, nerr := New(tc.cfg)
			if tc.want == nil {
				if err != nil || nerr != nil {
					t.Fatalf("Validate = %v, New = %v", err, nerr)
				}
				return
			}
			if err == nil || nerr == nil {
				t.Fatalf("Validate = %v, New = %v; want errors", err, nerr)
			}
			if !errors.Is(err, ErrConfig) || !errors.Is(nerr, ErrConfig) {
				t.Errorf("error does not wrap ErrConfig: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestBuiltinNames(t *testing.T) {
	want := []string{"anthropic", "aws_access_key", "aws_secret_key", "azure", "basic", "bearer",
		"connection_string", "gcp_service_account", "github", "gitlab", "jwt", "openai", "private_key",
		"slack", "stripe"}
	if d := cmp.Diff(want, BuiltinNames()); d != "" {
		t.Error(d)
	}
	BuiltinNames()[0] = "changed" // callers get a copy
	if BuiltinNames()[0] != "anthropic" {
		t.Error("BuiltinNames shares its slice")
	}
}

func TestActions(t *testing.T) {
	r := newRand(t)
	gh := "gh" + "p_" + randTok(r, alnumChars, 36)
	slack := "xo" + "xb-" + randStr(r, digitChars, 11) + "-" + randStr(r, digitChars, 12) + "-" + randTok(r, alnumChars, 24)
	acme := "acme_" + randStr(r, lowerChars+digitChars, 16)
	text := "gh=" + gh + " slack=" + slack + " acme=" + acme + " tok=" + acme
	doc := []byte(toolResult(jsonQuote(text)))

	tests := []struct {
		name        string
		cfg         Config
		wantOut     string // "" with wantBlocked
		wantBlocked bool
		want        []Finding
	}{
		{"default redacts", Config{},
			"gh=[REDACTED:github] slack=[REDACTED:slack] acme=" + acme + " tok=" + acme, false,
			[]Finding{{"github", ActionRedact, 1}, {"slack", ActionRedact, 1}}},
		{"block", Config{Actions: map[string]Action{"slack": ActionBlock}},
			"", true,
			[]Finding{{"github", ActionRedact, 1}, {"slack", ActionBlock, 1}}},
		{"audit", Config{Actions: map[string]Action{"github": ActionAudit, "slack": ActionAudit}},
			text, false,
			[]Finding{{"github", ActionAudit, 1}, {"slack", ActionAudit, 1}}},
		{"disabled", Config{Disabled: []string{"github"}},
			"gh=" + gh + " slack=[REDACTED:slack] acme=" + acme + " tok=" + acme, false,
			[]Finding{{"slack", ActionRedact, 1}}},
		{"user pattern", Config{Disabled: []string{"github", "slack"}, Patterns: []Pattern{{Name: "acme", Regex: `acme_[a-z0-9]{16}`}}},
			"gh=" + gh + " slack=" + slack + " acme=[REDACTED:acme] tok=[REDACTED:acme]", false,
			[]Finding{{"acme", ActionRedact, 2}}},
		{"user pattern secret group", Config{Disabled: []string{"github", "slack"}, Patterns: []Pattern{{Name: "tok", Regex: `tok=(?P<secret>\w+)`}}},
			"gh=" + gh + " slack=" + slack + " acme=" + acme + " tok=[REDACTED:tok]", false,
			[]Finding{{"tok", ActionRedact, 1}}},
		{"user pattern block", Config{Patterns: []Pattern{{Name: "acme", Regex: `acme_[a-z0-9]{16}`, Action: ActionBlock}}},
			"", true,
			[]Finding{{"acme", ActionBlock, 2}, {"github", ActionRedact, 1}, {"slack", ActionRedact, 1}}},
		{"user pattern audit", Config{Disabled: BuiltinNames(), Patterns: []Pattern{{Name: "acme", Regex: `acme_[a-z0-9]{16}`, Action: ActionAudit}}},
			text, false,
			[]Finding{{"acme", ActionAudit, 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, tc.cfg)
			rt := s.ScanText([]byte(text), nil)
			rj, err := s.ScanJSON(doc, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []Result{rt, rj} {
				if d := cmp.Diff(tc.want, r.Findings); d != "" {
					t.Errorf("findings (-want +got):\n%s", d)
				}
				if r.Blocked != tc.wantBlocked {
					t.Errorf("Blocked = %v", r.Blocked)
				}
				if tc.wantBlocked && (r.Out != nil || r.Reason != ReasonBlockAction) {
					t.Errorf("blocked result: Out=%q Reason=%q", r.Out, r.Reason)
				}
			}
			if tc.wantBlocked {
				return
			}
			if string(rt.Out) != tc.wantOut {
				t.Errorf("ScanText = %q\nwant       %q", rt.Out, tc.wantOut)
			}
			if want := toolResult(jsonQuote(tc.wantOut)); string(rj.Out) != want {
				t.Errorf("ScanJSON = %s\nwant       %s", rj.Out, want)
			}
			if unchanged := tc.wantOut == text; rt.Changed == unchanged || rj.Changed == unchanged ||
				unchanged && (!sameSlice(rt.Out, []byte(text)) && string(rt.Out) != text || !sameSlice(rj.Out, doc)) {
				t.Errorf("Changed = %v/%v, want %v", rt.Changed, rj.Changed, !unchanged)
			}
		})
	}
}

func TestAuditOverlappingRedact(t *testing.T) {
	// bearer is audited, jwt redacts: the token is still redacted.
	jwt := jwtOf(newRand(t), `{"alg":"HS256"}`, 32)
	s := mustNew(t, Config{Actions: map[string]Action{"bearer": ActionAudit}})
	r := s.ScanText([]byte("Authorization: Bearer "+jwt), nil)
	if string(r.Out) != "Authorization: Bearer [REDACTED:jwt]" {
		t.Errorf("Out = %q", r.Out)
	}
	want := []Finding{{"bearer", ActionAudit, 1}, {"jwt", ActionRedact, 1}}
	if d := cmp.Diff(want, r.Findings); d != "" {
		t.Error(d)
	}
}
