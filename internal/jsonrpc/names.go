package jsonrpc

import (
	"bytes"
	"hash/maphash"
)

// nameRef locates a decoded member name in one of three buffers.
type nameRef struct {
	off, end int
	where    nameBuf
}

type nameBuf uint8

const (
	inData       nameBuf = iota // the input itself: the raw name had no escapes
	inScratch                   // nameState.scratch
	inScratchExt                // nameState.scratchExt
)

// nameState tracks the member names of every open object, innermost last,
// to find duplicate and case-variant names. Its fixed arrays keep a typical
// message free of heap allocations; larger inputs spill into the Ext slices.
// It is only ever referenced through a pointer to a Decode stack variable,
// and never stores a slice of itself, so that it can stay on the stack.
type nameState struct {
	data    []byte
	stopped bool // a duplicate was found: stop checking

	n     int // number of names held
	names [32]nameRef
	ext   []nameRef // names[len(names):]

	scratchN   int // bytes used in scratch
	scratch    [128]byte
	scratchExt []byte

	fold *foldSet // hash sets of large objects, created on first need

	compares int // name comparisons made, to test the complexity bound

	// invalid is the first problem found that is not a syntax error. It
	// lives here rather than in scanner so that returning it does not make
	// the compiler move nameState to the heap.
	invalid *Error
}

func (ns *nameState) setInvalid(e *Error) {
	if ns.invalid == nil {
		ns.invalid = e
	}
}

// mark is the state to restore when an object closes.
type mark struct{ n, scratchN, scratchExt int }

func (ns *nameState) open() mark {
	return mark{ns.n, ns.scratchN, len(ns.scratchExt)}
}

// close forgets the names of the object opened at m and releases its hash
// set (nil when it has none).
func (ns *nameState) close(m mark, set *foldTable) {
	ns.n, ns.scratchN, ns.scratchExt = m.n, m.scratchN, ns.scratchExt[:m.scratchExt]
	ns.fold.release(set)
}

func (ns *nameState) at(i int) nameRef {
	if i < len(ns.names) {
		return ns.names[i]
	}
	return ns.ext[i-len(ns.names)]
}

func (ns *nameState) push(r nameRef) {
	if ns.n < len(ns.names) {
		ns.names[ns.n] = r
	} else {
		ns.ext = append(ns.ext[:ns.n-len(ns.names)], r)
	}
	ns.n++
}

func (ns *nameState) bytes(r nameRef) []byte {
	switch r.where {
	case inScratch:
		return ns.scratch[r.off:r.end]
	case inScratchExt:
		return ns.scratchExt[r.off:r.end]
	}
	return ns.data[r.off:r.end]
}

// decode returns a reference to the decoded form of the raw name
// data[start:end] (quotes excluded).
func (ns *nameState) decode(start, end int, escaped bool) nameRef {
	if !escaped {
		return nameRef{off: start, end: end}
	}
	body := ns.data[start:end]
	if off := ns.scratchN; len(ns.scratch)-off >= len(body) {
		// Decoding never lengthens a string, so this stays in the array.
		n := len(appendUnescaped(ns.scratch[off:off], body))
		ns.scratchN += n
		return nameRef{off: off, end: off + n, where: inScratch}
	}
	off := len(ns.scratchExt)
	ns.scratchExt = appendUnescaped(ns.scratchExt, body)
	return nameRef{off: off, end: len(ns.scratchExt), where: inScratchExt}
}

// add records the name ref of a member of the object opened at m and
// reports whether an earlier member's name equals it under simple case
// folding. set is the object's hash set, nil while it has none; add returns
// the possibly new set.
func (ns *nameState) add(m mark, ref nameRef, set *foldTable) (newSet *foldTable, dup bool) {
	name := ns.bytes(ref)
	frame, idx := m.n, ns.n
	ns.push(ref)
	if set != nil {
		j, seen := set.insert(ns.fold.hash(name), idx)
		// Same hash: almost surely the same folded name; if not, a
		// collision, settled by comparing with every sibling.
		if !seen {
			return set, false
		}
		ns.compares++
		return set, bytes.EqualFold(ns.bytes(ns.at(j)), name) || ns.foldsLinear(frame, idx, name)
	}
	if ns.foldsLinear(frame, idx, name) {
		return nil, true
	}
	if idx+1-frame < pairwiseMax {
		return nil, false
	}
	if ns.fold == nil {
		ns.fold = &foldSet{seed: maphash.MakeSeed()}
	}
	set = ns.fold.acquire()
	for j := frame; j <= idx; j++ {
		// These names are distinct under folding (checked pairwise), but
		// their hashes may collide; keeping the first is enough.
		set.insert(ns.fold.hash(ns.bytes(ns.at(j))), j)
	}
	return set, false
}

// foldsLinear reports whether name equals, under simple case folding, one
// of the names held at indexes frame to idx-1.
func (ns *nameState) foldsLinear(frame, idx int, name []byte) bool {
	for i := frame; i < idx; i++ {
		ns.compares++
		if bytes.EqualFold(ns.bytes(ns.at(i)), name) {
			return true
		}
	}
	return false
}
