package policy

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCompileArg(t *testing.T) {
	for _, tt := range []struct {
		name, pattern string
		wantDisplay   string
		wantErr       string
	}{
		{name: "p", pattern: `^[a-z]+$`, wantDisplay: `^[a-z]+$`},
		{name: "p", pattern: `[a-z]+`, wantDisplay: `^[a-z]+$`},
		{name: "p", pattern: `a\$`, wantDisplay: `^a\$$`}, // an escaped $ is literal
		{name: "p", pattern: `a\\$`, wantDisplay: `^a\\$`},
		{name: "p", pattern: `(?i)[a-z]+`, wantDisplay: `^(?i)[a-z]+$`},
		{name: "p", pattern: "", wantErr: "pattern is empty"},
		{name: "p", pattern: "^$", wantErr: "pattern is empty"},
		{name: "p", pattern: "[a-z", wantErr: "missing closing ]"},
		{name: "p", pattern: "a)|(.*", wantErr: "unexpected )"},
		{name: "p", pattern: "a$|b", wantErr: "anchors and word boundaries"},
		{name: "p", pattern: `(?m)^a`, wantErr: "anchors and word boundaries"},
		{name: "p", pattern: `\ba`, wantErr: "anchors and word boundaries"},
		{name: "p", pattern: `\Aa`, wantErr: "anchors and word boundaries"},
		{name: "p", pattern: `[a-z]*`, wantErr: "matches the empty string"},
		{name: "p", pattern: `a?`, wantErr: "matches the empty string"},
		{name: "", pattern: `a`, wantErr: "argument name"},
		{name: "a b", pattern: `a`, wantErr: "argument name"},
		{name: "a.b", pattern: `a`, wantErr: "argument name"},
		{name: strings.Repeat("a", 65), pattern: `a`, wantErr: "argument name"},
	} {
		a, err := compileArg(tt.name, ArgRule{Pattern: tt.pattern})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("compileArg(%q, %q) error = %v, want containing %q", tt.name, tt.pattern, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("compileArg(%q, %q): %v", tt.name, tt.pattern, err)
			continue
		}
		if a.display != tt.wantDisplay {
			t.Errorf("compileArg(%q).display = %q, want %q", tt.pattern, a.display, tt.wantDisplay)
		}
	}
}

// TestArgValueTricks checks that traversal, case, whitespace and unicode
// tricks fail the realistic pattern and, where the pattern would let them
// through, the scope-token floor.
func TestArgValueTricks(t *testing.T) {
	strict, err := compileArg("project", projectRule)
	if err != nil {
		t.Fatal(err)
	}
	lower, err := compileArg("project", ArgRule{Pattern: `[a-z]+`})
	if err != nil {
		t.Fatal(err)
	}
	loose, err := compileArg("project", ArgRule{Pattern: `(?s).+`})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, v              string
		strict, lower, loose valueProblem
	}{
		{"ok", "roadmap", valueOK, valueOK, valueOK},
		{"ok with digits and dash", "q3-roadmap", valueOK, valueNoMatch, valueOK},
		{"traversal", "../x", valueNoMatch, valueNoMatch, valueOK},
		{"encoded traversal", "%2e%2e", valueNoMatch, valueNoMatch, valueOK},
		{"case", "Roadmap", valueNoMatch, valueNoMatch, valueOK},
		{"trailing space", "roadmap ", valueNotScopeSafe, valueNotScopeSafe, valueNotScopeSafe},
		{"leading space", " roadmap", valueNotScopeSafe, valueNotScopeSafe, valueNotScopeSafe},
		{"newline", "roadmap\n", valueNotScopeSafe, valueNotScopeSafe, valueNotScopeSafe},
		{"tab", "road\tmap", valueNotScopeSafe, valueNotScopeSafe, valueNotScopeSafe},
		{"zero width space", "road\u200bmap", valueNotScopeSafe, valueNotScopeSafe, valueNotScopeSafe},
		{"full-width letters", "\uff52\uff4f\uff41\uff44\uff4d\uff41\uff50", valueNotScopeSafe, valueNotScopeSafe, valueNotScopeSafe},
		{"cyrillic look-alike", "r\u043eadmap", valueNotScopeSafe, valueNotScopeSafe, valueNotScopeSafe},
		{"NUL", "road\x00map", valueNotScopeSafe, valueNotScopeSafe, valueNotScopeSafe},
		{"quote", `road"map`, valueNotScopeSafe, valueNotScopeSafe, valueNotScopeSafe},
		{"backslash", `road\map`, valueNotScopeSafe, valueNotScopeSafe, valueNotScopeSafe},
		{"DEL", "road\x7fmap", valueNotScopeSafe, valueNotScopeSafe, valueNotScopeSafe},
		{"invalid UTF-8", "road\xffmap", valueNotScopeSafe, valueNotScopeSafe, valueNotScopeSafe},
		{"empty", "", valueNotScopeSafe, valueNotScopeSafe, valueNotScopeSafe},
		{"too long for the pattern", strings.Repeat("a", 41), valueNoMatch, valueOK, valueOK},
		{"too long for any scope", strings.Repeat("a", 257), valueTooLong, valueTooLong, valueTooLong},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct {
				a    *argPattern
				want valueProblem
			}{{strict, tt.strict}, {lower, tt.lower}, {loose, tt.loose}} {
				if got := c.a.check(tt.v); got != c.want {
					t.Errorf("%s.check(%q) = %d, want %d", c.a.display, tt.v, got, c.want)
				}
			}
		})
	}
}

func TestJSONString(t *testing.T) {
	for _, tt := range []struct {
		raw    string
		want   string
		wantOK bool
	}{
		{`"roadmap"`, "roadmap", true},
		{" \t\"roadmap\"\n", "roadmap", true},
		{`"\u0072oadmap"`, "roadmap", true}, // escapes decode like upstream decodes them
		{`"road\u200bmap"`, "road\u200bmap", true},
		{`"road\u0000map"`, "road\x00map", true},
		{`"caf` + "\u00e9" + `"`, "caf\u00e9", true},
		{`""`, "", true},
		{`null`, "", false},
		{`42`, "", false},
		{`true`, "", false},
		{`["roadmap"]`, "", false},
		{`{"a":"roadmap"}`, "", false},
		{`"roadmap`, "", false},
		{`"a" "b"`, "", false},
		{`"a"x`, "", false},
		{`"`, "", false},
		{``, "", false},
		{`"bad \q escape"`, "", false},
	} {
		got, ok := jsonString(json.RawMessage(tt.raw))
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("jsonString(%s) = %q, %v; want %q, %v", tt.raw, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestParseScope(t *testing.T) {
	p, _ := compileArg("p", projectRule)
	q, _ := compileArg("q", ArgRule{Pattern: `[0-9]+`})
	args := []*argPattern{p, q}
	vars := map[string]int{"p": 0, "q": 1}
	for _, tt := range []struct {
		scope      string
		vals       []string
		want       string // expansion; "" for a literal scope
		wantPrefix string
		wantErr    string
	}{
		{scope: "docs:read"},
		{scope: "document:read:{p}", vals: []string{"roadmap", ""}, want: "document:read:roadmap", wantPrefix: "document:read:"},
		{scope: "{p}:read", vals: []string{"x", ""}, want: "x:read", wantPrefix: ""},
		{scope: "doc:{p}:{q}", vals: []string{"x", "42"}, want: "doc:x:42", wantPrefix: "doc:"},
		{scope: "doc:{p}{q}", vals: []string{"x", "42"}, want: "doc:x42", wantPrefix: "doc:"},
		{scope: "", wantErr: "empty scope"},
		{scope: "docs read", wantErr: "not allowed in a scope"},
		{scope: "doc read:{p}", wantErr: "literal text contains a character not allowed"},
		{scope: "doc:{x}", wantErr: `variable "x" has no argument rule`},
		{scope: "doc:{p", wantErr: "unterminated or nested"},
		{scope: "doc:{{p}}", wantErr: "unterminated or nested"},
		{scope: "doc:p}", wantErr: "unbalanced '}'"},
		{scope: "doc:{}", wantErr: "variable name"},
		{scope: "doc:{a b}", wantErr: "variable name"},
		{scope: "{p}", wantErr: "must contain literal text"},
		{scope: "{p}{q}", wantErr: "must contain literal text"},
	} {
		tm, err := parseScope(tt.scope, vars, args, "has no argument rule")
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseScope(%q) error = %v, want containing %q", tt.scope, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseScope(%q): %v", tt.scope, err)
			continue
		}
		if tt.want == "" {
			if tm != nil {
				t.Errorf("parseScope(%q) returned a template for a literal scope", tt.scope)
			}
			continue
		}
		if got := tm.expand(tt.vals); got != tt.want {
			t.Errorf("expand(%q) = %q, want %q", tt.scope, got, tt.want)
		}
		if tm.prefix != tt.wantPrefix {
			t.Errorf("prefix(%q) = %q, want %q", tt.scope, tm.prefix, tt.wantPrefix)
		}
		if !tm.re.MatchString(tt.want) {
			t.Errorf("template %q does not recognise its own expansion %q", tt.scope, tt.want)
		}
	}
}

func TestProducible(t *testing.T) {
	p, _ := compileArg("p", projectRule)
	tm, err := parseScope("document:read:{p}", map[string]int{"p": 0}, []*argPattern{p}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		granted string
		want    bool
	}{
		{"document:read:roadmap", true},
		{"mcp:basic document:read:x-1", true},
		{"document:read:", false},
		{"document:read:Roadmap", false},
		{"document:read:../x", false},
		{"document:read:a document:write:b", true},
		{"document:write:roadmap", false},
		{"xdocument:read:roadmap", false},
		{"document:read:roadmap\u200b", false},
		{"", false},
	} {
		g := (*Hierarchy)(nil).Expand(strings.Fields(tt.granted))
		if got := tm.producible(g); got != tt.want {
			t.Errorf("producible(%q) = %v, want %v", tt.granted, got, tt.want)
		}
	}
}

// FuzzTemplatedArgument drives argument validation and scope expansion with
// arbitrary JSON values and patterns: no panic, and every value that passes
// yields a scope that is a valid RFC 6749 scope-token, that the template's
// own matcher recognises, and that matches the pattern.
func FuzzTemplatedArgument(f *testing.F) {
	for _, s := range [][2]string{
		{`"roadmap"`, `[a-z0-9-]{1,40}`},
		{`"../x"`, `.+`},
		{`"%2e%2e"`, `(?s).+`},
		{`"Roadmap"`, `[a-z]+`},
		{`"roadmap "`, `.+`},
		{`" roadmap"`, `(?s).*x`},
		{`"road\u200bmap"`, `(?s).+`},
		{`"\uff52oadmap"`, `\PL*.+`},
		{`"r\u043eadmap"`, `[\p{Cyrillic}a-z]+`},
		{`"road\u0000map"`, `(?s).+`},
		{`null`, `.+`},
		{`42`, `[0-9]+`},
		{`"a\"b"`, `.+`},
		{`"a\\b"`, `.+`},
		{`"a b"`, `(?i)A B`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, raw, pattern string) {
		a, err := compileArg("v", ArgRule{Pattern: pattern})
		if err != nil {
			return
		}
		tm, err := parseScope("document:read:{v}", map[string]int{"v": 0}, []*argPattern{a}, "")
		if err != nil {
			t.Fatalf("parseScope with a valid pattern %q: %v", pattern, err)
		}
		v, ok := jsonString(json.RawMessage(raw))
		if !ok || a.check(v) != valueOK {
			return
		}
		scope := tm.expand([]string{v})
		if !validScope(scope) {
			t.Fatalf("value %q (pattern %q) produced scope %q, not a scope-token", v, pattern, scope)
		}
		if !a.re.MatchString(v) || !tm.re.MatchString(scope) {
			t.Fatalf("value %q (pattern %q): scope %q not recognised", v, pattern, scope)
		}
		if !tm.producible((*Hierarchy)(nil).Expand([]string{scope})) {
			t.Fatalf("scope %q is not producible by its own template", scope)
		}
	})
}
