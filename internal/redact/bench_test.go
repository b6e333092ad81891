package redact

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// proseText is typical tool-result text of about n bytes: paragraphs,
// links, code with escapes, numbers. No credentials.
func proseText(r *rand.Rand, n int) string {
	words := strings.Fields(`the a of to and in is for on that with as this be by are from it at or an
		result request response server client tool file line function error value data user query search page
		returns contains should would could available configuration repository commit branch deploy build test
		basic example token session model context protocol gateway upstream downstream timeout retry`)
	var b strings.Builder
	for b.Len() < n {
		switch r.IntN(12) {
		case 0:
			fmt.Fprintf(&b, "See https://docs.example.com/%s/%s#%d for details. ", words[r.IntN(len(words))], words[r.IntN(len(words))], r.IntN(100))
		case 1:
			fmt.Fprintf(&b, "\n\tif err := %s(ctx, %q); err != nil {\n\t\treturn fmt.Errorf(\"%s: %%w\", err)\n\t}\n",
				words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))])
		case 2:
			fmt.Fprintf(&b, "Took %d.%03d ms (p99 %d). ", r.IntN(1000), r.IntN(1000), r.IntN(5000))
		default:
			for range 8 + r.IntN(10) {
				b.WriteString(words[r.IntN(len(words))])
				b.WriteByte(' ')
			}
			b.WriteString(".\n")
		}
	}
	return b.String()[:n]
}

// resultOf returns a tools/call result carrying text, padded so that the
// whole document is size bytes.
func resultOf(r *rand.Rand, size int, secret string) []byte {
	empty := len(toolResult(jsonQuote(secret)))
	for n := size - empty; ; n-- {
		txt := proseText(r, n)
		if secret != "" {
			i := len(txt) / 2
			txt = txt[:i] + " " + secret + " " + txt[i:]
		}
		if doc := toolResult(jsonQuote(txt)); len(doc) <= size {
			return []byte(doc + strings.Repeat(" ", size-len(doc)))
		}
	}
}

// manyStrings is a tools/list-like document of small strings.
func manyStrings(r *rand.Rand, size int) []byte {
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":2,"result":{"tools":[`)
	for i := 0; b.Len() < size-300; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"tool_%d","description":%s,"inputSchema":{"type":"object","properties":{"q":{"type":"string","maxLength":%d}},"required":["q"]}}`,
			i, jsonQuote(proseText(r, 60)), r.IntN(1000))
	}
	b.WriteString(`]}}`)
	return []byte(b.String())
}

// adversarial holds every keyword over and over, so that every rule runs
// on the whole text (and finds nothing).
func adversarial(size int) []byte {
	var kws []string
	for _, r := range builtinRules() {
		kws = append(kws, r.keywords...)
		kws = append(kws, r.also...)
	}
	unit := strings.Join(kws, " x ") + " "
	txt := strings.Repeat(unit, size/len(unit)+1)
	return []byte(toolResult(jsonQuote(txt[:size-len(toolResult(`""`))-200])))
}

func reportPerKiB(b *testing.B, size int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(float64(size)/1024), "ns/KiB")
}

func BenchmarkScanJSON(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	s := mustNew(b, Config{})
	live := []string{"opaque-client-token-" + randTok(r, alnumChars, 32), "upstream-" + randTok(r, b64Chars, 40)}
	gh := "gh" + "p_" + randTok(r, alnumChars, 36)
	cases := []struct {
		name string
		doc  []byte
	}{
		{"clean-1KiB", resultOf(r, 1<<10, "")},
		{"clean-64KiB", resultOf(r, 64<<10, "")},
		{"one-secret-64KiB", resultOf(r, 64<<10, gh)},
		{"small-strings-64KiB", manyStrings(r, 64<<10)},
		{"all-keywords-64KiB", adversarial(64 << 10)},
		{"all-keywords-1MiB", adversarial(1 << 20)},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.doc)))
			for b.Loop() {
				if _, err := s.ScanJSON(tc.doc, live); err != nil {
					b.Fatal(err)
				}
			}
			reportPerKiB(b, len(tc.doc))
		})
	}
}

func BenchmarkScanText(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	s := mustNew(b, Config{})
	live := []string{"opaque-client-token-" + randTok(r, alnumChars, 32)}
	cases := []struct {
		name string
		in   []byte
	}{
		{"header", []byte("Bearer " + randTok(r, alnumChars, 40))},
		{"clean-1KiB", []byte(proseText(r, 1<<10))},
		{"clean-64KiB", []byte(proseText(r, 64<<10))},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.in)))
			for b.Loop() {
				s.ScanText(tc.in, live)
			}
			reportPerKiB(b, len(tc.in))
		})
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(Config{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPrefilter(b *testing.B) {
	s := mustNew(b, Config{})
	txt := []byte(proseText(rand.New(rand.NewPCG(5, 6)), 64<<10))
	b.ReportAllocs()
	b.SetBytes(int64(len(txt)))
	var hits []hit
	for b.Loop() {
		_, hits = s.pf.scan(txt, hits[:0])
	}
}
