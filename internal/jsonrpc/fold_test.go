package jsonrpc

import (
	"bytes"
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestFoldRuneMatchesEqualFold checks, for every rune, that the canonical
// fold agrees with bytes.EqualFold on every member of the rune's orbit.
func TestFoldRuneMatchesEqualFold(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		fr := foldRune(r)
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if foldRune(f) != fr {
				t.Fatalf("foldRune(%U) = %U but foldRune(%U) = %U", r, fr, f, foldRune(f))
			}
			if !bytes.EqualFold(utf8.AppendRune(nil, r), utf8.AppendRune(nil, f)) {
				t.Fatalf("EqualFold(%U, %U) = false", r, f)
			}
		}
		if r < utf8.RuneSelf {
			if got := appendFolded(nil, []byte{byte(r)}); !bytes.Equal(got, utf8.AppendRune(nil, fr)) {
				t.Fatalf("appendFolded(%q) = %q, want %q", r, got, fr)
			}
		}
	}
}

// FuzzFold checks that folded forms are equal exactly when bytes.EqualFold
// says so, which the hash-set path of the duplicate check relies on.
func FuzzFold(f *testing.F) {
	for _, s := range [][2]string{{"name", "NAME"}, {"k", "\u212a"}, {"s", "\u017f"}, {"ß", "ss"}, {"θ", "\u03f4"}, {"a", "ab"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		folded := bytes.Equal(appendFolded(nil, []byte(a)), appendFolded(nil, []byte(b)))
		if eq := bytes.EqualFold([]byte(a), []byte(b)); eq != folded {
			t.Fatalf("EqualFold(%q, %q) = %v, folded forms equal = %v", a, b, eq, folded)
		}
	})
}
