package jsonrpc

import (
	"hash/maphash"
	"unicode"
	"unicode/utf8"
)

// pairwiseMax is the member count up to which an object's names are
// compared pairwise (at most pairwiseMax²/2 comparisons per object). From
// there on, the object's names go into a hash set keyed by their case-folded
// form, so that checking n names costs O(n) expected time whatever their
// spelling. The hash is seeded at random per Decode, so an attacker cannot
// aim for collisions; a collision costs one linear scan, never a wrong answer.
const pairwiseMax = 16

// foldSet holds the hash sets of the open large objects, reused in LIFO
// order as objects open and close.
type foldSet struct {
	seed  maphash.Seed
	sets  []foldTable
	inUse int
	buf   []byte // scratch for folded names
}

func (f *foldSet) acquire() *foldTable {
	if f.inUse == len(f.sets) {
		f.sets = append(f.sets, foldTable{})
	}
	f.inUse++
	return &f.sets[f.inUse-1]
}

func (f *foldSet) release(t *foldTable) {
	if t == nil {
		return
	}
	clear(t.slots)
	t.n = 0
	f.inUse--
}

func (f *foldSet) hash(name []byte) uint64 {
	f.buf = appendFolded(f.buf[:0], name)
	return maphash.Bytes(f.seed, f.buf)
}

// foldTable is an open-addressing hash set from folded-name hash to the
// index of the first name with that hash. The hashes are random to anyone
// without the seed, so linear probing on their low bits stays short.
type foldTable struct {
	slots []foldSlot // len is 0 or a power of two, at most half full
	n     int
}

type foldSlot struct {
	h   uint64
	idx int // name index + 1; 0 marks an empty slot
}

// insert adds hash h for name index idx, unless h is present: then it
// returns the index stored with it and true.
func (t *foldTable) insert(h uint64, idx int) (int, bool) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		switch {
		case s.idx == 0:
			s.h, s.idx = h, idx+1
			t.n++
			return 0, false
		case s.h == h:
			return s.idx - 1, true
		}
	}
}

func (t *foldTable) grow() {
	old := t.slots
	t.slots = make([]foldSlot, max(4*pairwiseMax, 2*len(old)))
	t.n = 0
	for _, s := range old {
		if s.idx != 0 {
			t.insert(s.h, s.idx-1)
		}
	}
}

// appendFolded appends the canonical case-folded form of the UTF-8 text s:
// each rune is replaced by the smallest rune of its simple case-folding
// orbit. Two valid UTF-8 strings have the same folded form exactly when
// bytes.EqualFold reports them equal.
func appendFolded(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		dst = utf8.AppendRune(dst, foldRune(r))
		i += n
	}
	return dst
}

// foldRune returns the smallest rune in r's simple case-folding orbit.
func foldRune(r rune) rune {
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}
