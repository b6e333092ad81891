package revoke

import (
	"iter"
	"time"
)

// Kind indexes in a set.
const (
	ixJTI = iota
	ixSubject
	ixClient
	numKinds
)

// kindIndex returns k's index in a set.
func kindIndex(k Kind) (int, bool) {
	switch k {
	case KindJTI:
		return ixJTI, true
	case KindSubject:
		return ixSubject, true
	case KindClient:
		return ixClient, true
	}
	return 0, false
}

// key identifies an entry unambiguously: kind index, issuer, value.
type key struct {
	kind          int
	issuer, value string
}

// keyOf returns e's key; e.Kind must be valid.
func keyOf(e *Entry) key {
	i, _ := kindIndex(e.Kind)
	return key{i, e.Issuer, e.Value}
}

// ikey is a key within one kind's map.
type ikey struct{ issuer, value string }

// set is a set of entries, one map per kind: a lookup hashes issuer and
// value only, and the maps hold pointers so their slots stay small. A set
// published in a snapshot is never modified, nor are its entries.
type set [numKinds]map[ikey]*Entry

func makeSet(hint int) set {
	var s set
	for i := range s {
		s[i] = make(map[ikey]*Entry, hint/numKinds+1)
	}
	return s
}

func (s set) size() int { return len(s[ixJTI]) + len(s[ixSubject]) + len(s[ixClient]) }

func (s set) get(k key) (*Entry, bool) {
	e, ok := s[k.kind][ikey{k.issuer, k.value}]
	return e, ok
}

func (s set) put(e *Entry) {
	k := keyOf(e)
	s[k.kind][ikey{k.issuer, k.value}] = e
}

func (s set) remove(k key) { delete(s[k.kind], ikey{k.issuer, k.value}) }

// all yields every entry with its key, in no particular order.
func (s set) all() iter.Seq2[key, *Entry] {
	return func(yield func(key, *Entry) bool) {
		for i, m := range s {
			for ik, e := range m {
				if !yield(key{i, ik.issuer, ik.value}, e) {
					return
				}
			}
		}
	}
}

// liveCopy returns a copy of s without the entries expired at now.
func (s set) liveCopy(now time.Time) set {
	c := makeSet(s.size() + 1)
	for _, e := range s.all() {
		if now.Before(e.Until) {
			c.put(e)
		}
	}
	return c
}
