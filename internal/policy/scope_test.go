package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestValidScope(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"docs:read", true},
		{"a", true},
		{"!#[]^~{}", true},
		{"", false},
		{"a b", false},
		{`a"b`, false},
		{`a\b`, false},
		{"a\x00", false},
		{"a\x7f", false},
		{"caf\u00e9", false},
		{"tab\t", false},
	} {
		if got := validScope(tt.in); got != tt.want {
			t.Errorf("validScope(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestHierarchyExpand(t *testing.T) {
	h, err := NewHierarchy(map[string][]string{
		"admin":      {"docs:write", "mail:send"},
		"docs:write": {"docs:read"},
		"docs:read":  {"docs:list"},
		// A cycle: a, b and c are equivalent.
		"a": {"b"},
		"b": {"c"},
		"c": {"a"},
		// Self-implication is harmless.
		"self": {"self"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name         string
		h            *Hierarchy
		granted      []string
		has, hasNot  []string
		wantGranted  []string
		wantExpanded []string
	}{
		{
			name:         "transitive",
			h:            h,
			granted:      []string{"admin"},
			has:          []string{"admin", "docs:write", "docs:read", "docs:list", "mail:send"},
			hasNot:       []string{"a", "mail:read", ""},
			wantGranted:  []string{"admin"},
			wantExpanded: []string{"admin", "docs:list", "docs:read", "docs:write", "mail:send"},
		},
		{
			name:         "middle of a chain implies only below",
			h:            h,
			granted:      []string{"docs:read"},
			has:          []string{"docs:read", "docs:list"},
			hasNot:       []string{"docs:write", "admin"},
			wantGranted:  []string{"docs:read"},
			wantExpanded: []string{"docs:list", "docs:read"},
		},
		{
			name:         "cycle means equivalence",
			h:            h,
			granted:      []string{"b"},
			has:          []string{"a", "b", "c"},
			wantGranted:  []string{"b"},
			wantExpanded: []string{"a", "b", "c"},
		},
		{
			name:         "self implication",
			h:            h,
			granted:      []string{"self"},
			has:          []string{"self"},
			wantGranted:  []string{"self"},
			wantExpanded: []string{"self"},
		},
		{
			name:         "granted sorted, duplicates and empty strings dropped",
			h:            h,
			granted:      []string{"z", "docs:write", "", "z", "docs:read"},
			has:          []string{"z", "docs:write", "docs:read", "docs:list"},
			hasNot:       []string{""},
			wantGranted:  []string{"docs:read", "docs:write", "z"},
			wantExpanded: []string{"docs:list", "docs:read", "docs:write", "z"},
		},
		{
			name:         "nil hierarchy implies nothing",
			h:            nil,
			granted:      []string{"admin", "x"},
			has:          []string{"admin", "x"},
			hasNot:       []string{"docs:write"},
			wantGranted:  []string{"admin", "x"},
			wantExpanded: []string{"admin", "x"},
		},
		{
			name:    "nothing granted",
			h:       h,
			granted: nil,
			hasNot:  []string{"admin", ""},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := tt.h.Expand(tt.granted)
			for _, s := range tt.has {
				if !g.Has(s) {
					t.Errorf("Has(%q) = false", s)
				}
			}
			for _, s := range tt.hasNot {
				if g.Has(s) {
					t.Errorf("Has(%q) = true", s)
				}
			}
			if diff := cmp.Diff(tt.wantGranted, g.Granted(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Granted() (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantExpanded, g.expandedScopes(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("expanded (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGrantImmutable(t *testing.T) {
	in := []string{"b", "a"}
	g := (*Hierarchy)(nil).Expand(in)
	in[0] = "admin"
	out := g.Granted()
	out[0] = "admin"
	if g.Has("admin") || !g.Has("a") || !g.Has("b") {
		t.Errorf("grant changed through its input or output slices: %v", g.expandedScopes())
	}
	var zero Grant
	if zero.Has("a") || len(zero.Granted()) != 0 {
		t.Error("zero Grant holds scopes")
	}
}

func TestNewHierarchyErrors(t *testing.T) {
	_, err := NewHierarchy(map[string][]string{
		"":          {"docs:read"},
		"bad scope": {"ok"},
		"docs:read": {"", "caf\u00e9", `q"uote`},
	})
	if err == nil {
		t.Fatal("NewHierarchy accepted invalid scopes")
	}
	for _, want := range []string{
		`hierarchy "": empty scope`,
		`hierarchy "bad scope": scope "bad scope" contains a character`,
		`hierarchy "docs:read"[0]: empty scope`,
		`hierarchy "docs:read"[1]: scope "caf\u00e9" contains`,
		`hierarchy "docs:read"[2]: scope "q\"uote" contains`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestQuote(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"plain", `"plain"`},
		{"road\u200bmap", `"road\u200bmap"`},
		{"\x00\n", `"\x00\n"`},
		{"\u202egnp.exe", `"\u202egnp.exe"`},
		{strings.Repeat("a", 100), `"` + strings.Repeat("a", 64) + `"...`},
		// The cut does not split a multi-byte character.
		{strings.Repeat("a", 63) + "\u00e9" + strings.Repeat("b", 10), `"` + strings.Repeat("a", 63) + `"...`},
	} {
		if got := quote(tt.in); got != tt.want {
			t.Errorf("quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestExpandSortedInput: scopes already sorted and unique (as authn hands
// them over) take a path that shares the slice; its grant equals that of
// the same scopes in any order, with or without implied scopes, and the
// input is never modified.
func TestExpandSortedInput(t *testing.T) {
	h, err := NewHierarchy(map[string][]string{"docs:write": {"docs:read"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, sorted := range [][]string{
		{"docs:read", "mail:read"},       // nothing implied
		{"docs:write", "mail:read"},      // docs:read implied
		{"a"},                            // one scope
		{},                               // none
		{"docs:read", "docs:read"},       // duplicate: not a set
		{"", "docs:read"},                // empty string: ignored
		{"mail:read", "docs:read"},       // unsorted
		{"docs:read", "docs:write", "z"}, // implied already granted
	} {
		in := slices.Clone(sorted)
		got := h.Expand(in)
		shuffled := slices.Clone(sorted)
		slices.Reverse(shuffled)
		want := h.Expand(shuffled)
		if !slices.Equal(got.granted, want.granted) || !slices.Equal(got.expanded, want.expanded) {
			t.Errorf("Expand(%q) = %q/%q, in another order %q/%q", sorted, got.granted, got.expanded, want.granted, want.expanded)
		}
		if !slices.Equal(in, sorted) {
			t.Errorf("Expand modified its input: %q", in)
		}
	}
}
