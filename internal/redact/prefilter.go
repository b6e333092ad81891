package redact

// prefilter finds which keywords occur in a text in one pass: an
// Aho-Corasick automaton compiled to a DFA over byte classes, with ASCII
// case folding. Each keyword carries a bit; scan returns the union of the
// bits of the keywords that occur and, for the bits in hitBits, where
// each occurrence starts. Read-only after construction.
type prefilter struct {
	class  [256]uint32 // byte → class; 0 for bytes in no keyword
	nclass uint32
	// next[state*nclass+class] is the next state, premultiplied by
	// nclass, with outFlag set when that state ends a keyword.
	next []uint32
	out  [][]kwEnd // by state: keywords ending there
}

const outFlag = 1 << 31

type kwEnd struct {
	bit uint8 // bit index
	n   int   // keyword length
	hit bool  // report positions
}

// hit is an occurrence of a keyword whose bit is in hitBits.
type hit struct {
	bit   uint8
	start int
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// newPrefilter builds the automaton for keywords[i] → bit index bits[i].
// Keywords are matched case-insensitively (ASCII); they must be
// non-empty.
func newPrefilter(keywords []string, bits []uint8, hitBits uint64) *prefilter {
	p := &prefilter{}
	for _, k := range keywords {
		for i := range len(k) {
			c := lowerASCII(k[i])
			if p.class[c] == 0 {
				p.nclass++
				p.class[c] = p.nclass
			}
		}
	}
	p.nclass++
	for c := 'A'; c <= 'Z'; c++ {
		p.class[c] = p.class[c+'a'-'A']
	}
	type node struct {
		child map[uint32]int
		fail  int
		out   []kwEnd
	}
	nodes := []node{{child: map[uint32]int{}}}
	for i, k := range keywords {
		s := 0
		for j := range len(k) {
			c := p.class[k[j]]
			n, ok := nodes[s].child[c]
			if !ok {
				n = len(nodes)
				nodes = append(nodes, node{child: map[uint32]int{}})
				nodes[s].child[c] = n
			}
			s = n
		}
		nodes[s].out = append(nodes[s].out, kwEnd{bit: bits[i], n: len(k), hit: hitBits&(1<<bits[i]) != 0})
	}
	if uint64(len(nodes))*uint64(p.nclass) >= outFlag {
		panic("redact: keyword automaton too large") // built-in keywords only; cannot happen
	}
	nc := int(p.nclass)
	next := make([]int, len(nodes)*nc) // unmultiplied during construction
	queue := []int{0}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if s != 0 {
			nodes[s].out = append(nodes[s].out, nodes[nodes[s].fail].out...)
		}
		for c := range nc {
			n, ok := nodes[s].child[uint32(c)]
			switch {
			case ok:
				if s != 0 {
					nodes[n].fail = next[nodes[s].fail*nc+c]
				}
				next[s*nc+c] = n
				queue = append(queue, n)
			case s != 0:
				next[s*nc+c] = next[nodes[s].fail*nc+c]
			}
		}
	}
	p.next = make([]uint32, len(next))
	p.out = make([][]kwEnd, len(nodes))
	for s := range nodes {
		p.out[s] = nodes[s].out
	}
	for i, n := range next {
		p.next[i] = uint32(n * nc)
		if len(nodes[n].out) > 0 {
			p.next[i] |= outFlag
		}
	}
	return p
}

// scan returns the bits of the keywords occurring in b, and appends to
// hits the occurrences of keywords whose bit is in hitBits.
func (p *prefilter) scan(b []byte, hits []hit) (uint64, []hit) {
	var m uint64
	var s uint32
	next, class := p.next, &p.class
	for i, c := range b {
		e := next[s+class[c]]
		s = e &^ outFlag
		if e&outFlag != 0 {
			for _, k := range p.out[s/p.nclass] {
				m |= 1 << k.bit
				if k.hit {
					hits = append(hits, hit{bit: k.bit, start: i + 1 - k.n})
				}
			}
		}
	}
	return m, hits
}
