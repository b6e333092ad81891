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
		// Without a transform the framer is a pure pass-through.
		s := newEventStream(io.NopCloser(iotest.OneByteReader(bytes.NewReader(in))), nil, nil, 1<<20, nil)
		out, err := io.ReadAll(s)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("stream altered (%v):\n in %q\nout %q", err, in, out)
		}
		// With a transform that keeps every event, the stream is unchanged
		// except that a leading BOM and an unterminated last event are
		// dropped (as a client would), and bare CRs are refused.
		s = newEventStream(io.NopCloser(iotest.OneByteReader(bytes.NewReader(in))),
			func([]byte) ([]byte, error) { return nil, nil }, nil, 1<<20, nil)
		out, err = io.ReadAll(s)
		want := bytes.TrimPrefix(in, []byte("\xEF\xBB\xBF"))
		if bytes.Contains(bareCRs(want), []byte("\r")) {
			if err == nil {
				t.Fatalf("bare CR accepted: %q", in)
			}
			return
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if !bytes.HasPrefix(want, out) {
			t.Fatalf("stream altered:\n in %q\nout %q", in, out)
		}
		rest := want[len(out):]
		if bytes.Contains(rest, []byte("\n\n")) || bytes.Contains(rest, []byte("\n\r\n")) {
			t.Fatalf("complete events lost:\n in %q\nout %q", in, out)
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
	}, nil, 1<<20, nil)
	out, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := "id: 1\r\ndata: c\ndata: d\nevent: m\r\n\n"; string(out) != want {
		t.Errorf("out = %q, want %q", out, want)
	}
}

// bareCRs returns in with every CRLF removed, so any CR left is bare.
func bareCRs(in []byte) []byte { return bytes.ReplaceAll(in, []byte("\r\n"), nil) }

func TestEventStreamFraming(t *testing.T) {
	keep := func([]byte) ([]byte, error) { return nil, nil }
	for _, tc := range []struct {
		name, in, want string
		wantErr        bool
	}{
		{"leading BOM dropped", "\xEF\xBB\xBFdata: x\n\n", "data: x\n\n", false},
		{"unterminated last event dropped", "data: x\n\ndata: y\n", "data: x\n\n", false},
		{"bare CR refused", "data: x\rdata: y\n\n", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := io.ReadAll(newEventStream(io.NopCloser(bytes.NewReader([]byte(tc.in))), keep, nil, 1<<20, nil))
			if (err != nil) != tc.wantErr || string(out) != tc.want {
				t.Fatalf("got %q, %v; want %q (error %v)", out, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestEventStreamDrop(t *testing.T) {
	in := "id: 1\ndata: keep\n\nid: 2\ndata: drop\n\n: comment\n\ndata: keep2\n\n"
	s := newEventStream(io.NopCloser(bytes.NewReader([]byte(in))), func(b []byte) ([]byte, error) {
		if string(b) == "drop" {
			return []byte{}, nil
		}
		return nil, nil
	}, nil, 1<<20, nil)
	out, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := "id: 1\ndata: keep\n\n: comment\n\ndata: keep2\n\n"; string(out) != want {
		t.Errorf("out = %q, want %q", out, want)
	}
}

// TestEventStreamFieldCheck: every line but data lines goes through the
// field check (comments, id, event, retry, unknown fields), and a line it
// refuses never reaches the client; data lines go to the transform only.
func TestEventStreamFieldCheck(t *testing.T) {
	in := ": ping SECRET\n\n: ok\n\nid: SECRET-7\nevent: message\ndata: {}\n: inner SECRET\nretry: 10\nSECRET\n\nid: 8\n\n"
	var seen []string
	s := newEventStream(io.NopCloser(iotest.OneByteReader(bytes.NewReader([]byte(in)))),
		func([]byte) ([]byte, error) { return nil, nil },
		func(line []byte) (bool, error) {
			seen = append(seen, string(line))
			return !bytes.Contains(line, []byte("SECRET")), nil
		}, 1<<20, nil)
	out, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := ": ok\n\nevent: message\ndata: {}\nretry: 10\n\nid: 8\n\n"; string(out) != want {
		t.Errorf("out = %q, want %q", out, want)
	}
	if want := 8; len(seen) != want {
		t.Errorf("checked %d lines %q, want %d (every line but data and blank ones)", len(seen), seen, want)
	}
}
