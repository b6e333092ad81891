package redact

import "bytes"

// needle is a byte string searched for with a rare-byte prefilter: the
// search jumps (with the vectorised bytes.IndexByte) between occurrences
// of the needle's least common byte, and falls back to bytes.Index when
// that byte proves common in the text, so it stays linear.
type needle struct {
	b    []byte
	rare int // offset in b of the byte looked for
}

// byteRanks estimates how common each byte is in text and JSON (higher:
// more common).
func byteRanks() *[256]uint8 {
	var r [256]uint8
	for c := range 256 {
		switch b := byte(c); {
		case b == ' ' || b == '"' || b == 'e' || b == 't' || b == 'a' || b == 'o':
			r[c] = 100
		case b == 'i' || b == 'n' || b == 's' || b == 'r' || b == 'h' || b == 'l' || b == ':' || b == ',':
			r[c] = 90
		case b >= 'a' && b <= 'z':
			r[c] = 70
		case b == '\n' || b == '.' || b == '/' || b == '-' || b == '_' || b == '0' || b == '1':
			r[c] = 60
		case b >= '0' && b <= '9':
			r[c] = 45
		case b == 'Q' || b == 'X' || b == 'Z' || b == 'J' || b == 'K' || b == 'V':
			r[c] = 10
		case b >= 'A' && b <= 'Z':
			r[c] = 30
		default:
			r[c] = 20
		}
	}
	return &r
}

func newNeedle(b []byte, rank *[256]uint8) needle {
	n := needle{b: b}
	best := rank[b[0]]
	for i, c := range b {
		if rank[c] < best {
			n.rare, best = i, rank[c]
		}
	}
	return n
}

// index is bytes.Index(s, n.b).
func (n needle) index(s []byte) int {
	m := len(n.b)
	c := n.b[n.rare]
	fails := 0
	for i := 0; i+m <= len(s); i++ {
		j := bytes.IndexByte(s[i+n.rare:len(s)-m+n.rare+1], c)
		if j < 0 {
			return -1
		}
		i += j
		if bytes.Equal(s[i:i+m], n.b) {
			return i
		}
		// Like bytes.Index: about one false candidate per 8 bytes is
		// where the prefilter stops paying.
		if fails++; fails > (i+16)/8 {
			if k := bytes.Index(s[i+1:], n.b); k >= 0 {
				return i + 1 + k
			}
			return -1
		}
	}
	return -1
}
