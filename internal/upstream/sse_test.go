package upstream

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzEventStream checks that the SSE framer never alters a stream whose
// events it does not transform, whatever the bytes, and never loses bytes.
func FuzzEventStream(f *testing.F) {
	for _, s := range []string{
		"data: x\n\n",
		": ping\n\ndata: {\"jsonrpc\":\"2.0\"}\nid: 1\n\n",
		"data:a\r\ndata:b\r\n\r\n",
		"event: e\nretry: 10\n\n\n\ndata",
		"data: unterminated",
		"\n\n\n",
		":c1\n:c2\ndata: z\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, tf := range []func([]byte) ([]byte, error){
			nil,
			func([]byte) ([]byte, error) { return nil, nil },
		} {
			var calls int
			wrapped := tf
			if tf != nil {
				wrapped = func(b []byte) ([]byte, error) { calls++; return tf(b) }
			}
			s := newEventStream(io.NopCloser(iotest.OneByteReader(bytes.NewReader(in))), wrapped, 1<<20, nil)
			out, err := io.ReadAll(s)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("stream altered:\n in %q\nout %q", in, out)
			}
		}
	})
}

func TestEventStreamRewritesOnlyData(t *testing.T) {
	in := "id: 1\r\ndata: a\r\ndata: b\r\nevent: m\r\n\r\n"
	s := newEventStream(io.NopCloser(bytes.NewReader([]byte(in))), func(b []byte) ([]byte, error) {
		if string(b) != "a\nb" {
			t.Errorf("data = %q, want a\\nb", b)
		}
		return []byte("c\nd"), nil
	}, 1<<20, nil)
	out, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := "id: 1\r\ndata: c\ndata: d\nevent: m\r\n\n"; string(out) != want {
		t.Errorf("out = %q, want %q", out, want)
	}
}
