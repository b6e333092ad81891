package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// closeBuffer is a bytes.Buffer that records Close and can fail writes.
type closeBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	closed  bool
	failing bool // the next Write writes half and fails
}

func (c *closeBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failing {
		c.failing = false
		n, _ := c.b.Write(p[:len(p)/2])
		return n, errDiskFull
	}
	return c.b.Write(p)
}

func (c *closeBuffer) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *closeBuffer) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.b.Bytes())
}

func TestStreamSinkChainsAndCheckpoints(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	clk := newFakeClock()
	var out closeBuffer
	s, err := NewStreamSink(&out, StreamConfig{SigningKeyFile: k.path, CheckpointInterval: time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		clk.Advance(20 * time.Second)
		mustWrite(t, s, event(i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !out.closed {
		t.Error("the owned writer was not closed")
	}
	if err := s.Write(context.Background(), event(99)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
	p := filepath.Join(dir, "stdout.jsonl")
	writeFileMode(t, p, out.bytes(), 0o600)
	var reasons []string
	for _, l := range readLines(t, p) {
		if e := parseLine(t, l); e.Kind == KindCheckpoint {
			reasons = append(reasons, e.Checkpoint.Reason)
		}
	}
	if got := strings.Join(reasons, ","); got != "start,interval,interval,interval,shutdown" {
		t.Fatalf("checkpoints %s", got)
	}
	r := mustVerify(t, []string{p}, k.pub)
	if st := s.Stats(); r.Records != 15 || st.Records != 10 || st.Checkpoints != 5 || st.Failures != 1 || r.UnsignedTail != 0 {
		t.Fatalf("report %+v stats %+v", r, st)
	}
}

// TestStreamSinkTornWrite: a write that fails part way returns an error
// and does not advance the chain; the next record starts a new line, and
// Verify reports the torn line, nothing else.
func TestStreamSinkTornWrite(t *testing.T) {
	var out closeBuffer
	s, err := NewStreamSink(&out, StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, event(1))
	out.failing = true
	if err := s.Write(context.Background(), event(2)); !errors.Is(err, errDiskFull) {
		t.Fatalf("Write = %v", err)
	}
	e := event(3)
	mustWrite(t, s, e)
	if e.Seq != 2 {
		t.Fatalf("seq %d after a failed write, want 2", e.Seq)
	}
	s.Close()
	p := filepath.Join(t.TempDir(), "out.jsonl")
	writeFileMode(t, p, out.bytes(), 0o600)
	r, err := Verify([]string{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 1 || r.Problems[0].Kind != ProblemMalformed || r.Problems[0].Line != 2 {
		t.Fatalf("problems %+v", r.Problems)
	}
}

func TestStreamSinkIdleCheckpointAndStdout(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	clk := newFakeClock()
	var out closeBuffer
	s, err := NewStreamSink(&out, StreamConfig{SigningKeyFile: k.path, CheckpointInterval: 20 * time.Millisecond, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, event(1))
	clk.Advance(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Checkpoints != 2 {
		if time.Now().After(deadline) {
			t.Fatal("no idle checkpoint")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Close()

	if _, err := NewStreamSink(nil, StreamConfig{CheckpointInterval: -1}); err == nil ||
		!strings.Contains(err.Error(), "writer is required") || !strings.Contains(err.Error(), "must not be negative") {
		t.Fatalf("NewStreamSink(nil) = %v", err)
	}
	// os.Stdout is never closed by the sink.
	so, err := NewStreamSink(os.Stdout, StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if so.c != nil {
		t.Fatal("the sink would close os.Stdout")
	}
	so.Close()
}

func TestStreamSinkConcurrent(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	var out closeBuffer
	s, err := NewStreamSink(&out, StreamConfig{SigningKeyFile: k.path, CheckpointInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 100 {
				mustWrite(t, s, event(w*100+i))
			}
		})
	}
	wg.Wait()
	s.Close()
	p := filepath.Join(dir, "out.jsonl")
	writeFileMode(t, p, out.bytes(), 0o600)
	r := mustVerify(t, []string{p}, k.pub)
	if r.Records != 1600+int(s.Stats().Checkpoints) {
		t.Fatalf("report %+v", r)
	}
}
