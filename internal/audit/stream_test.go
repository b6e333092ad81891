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

// gateWriter blocks every Write until its gate is closed, like a stdout
// pipe whose reader stalled.
type gateWriter struct {
	gate    chan struct{}
	entered chan struct{} // signalled (non-blocking) when a Write waits
	mu      sync.Mutex
	b       bytes.Buffer
	closed  bool
	blocked bool
}

func newGateWriter() *gateWriter {
	return &gateWriter{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
}

func (g *gateWriter) block(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.blocked = on
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	blocked := g.blocked
	g.mu.Unlock()
	if blocked {
		select {
		case g.entered <- struct{}{}:
		default:
		}
		<-g.gate
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.b.Write(p)
}

func (g *gateWriter) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	return nil
}

// TestStreamSinkStalledWriterFailsClosed: a stalled stream never hangs a
// Write past its ctx; once a record's write is undetermined, the sink
// fails closed (every later Write fails at once, logged once), a Write
// waiting behind the stalled one gives up with its own ctx, and Close is
// bounded.
func TestStreamSinkStalledWriterFailsClosed(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	g := newGateWriter()
	defer close(g.gate)
	var logs logBuffer
	s, err := NewStreamSink(g, StreamConfig{SigningKeyFile: k.path, CloseTimeout: 100 * time.Millisecond, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, event(1))
	g.block(true)
	ctx1, cancel1 := context.WithTimeout(context.Background(), 80*time.Millisecond)
	defer cancel1()
	first := make(chan error, 1)
	go func() { first <- s.Write(ctx1, event(2)) }()
	<-g.entered
	// A second Write waits behind the stalled one and gives up with its
	// own, shorter ctx; it was never written, so it does not break the sink.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	err = within(t, 5*time.Second, "a Write queued behind a stalled one", func() error { return s.Write(ctx2, event(3)) })
	if err == nil || errors.Is(err, ErrBroken) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued Write = %v", err)
	}
	err = within(t, 5*time.Second, "a Write to a stalled stream", func() error { return <-first })
	if !errors.Is(err, ErrBroken) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled Write = %v, want ErrBroken", err)
	}
	// Failed closed: later Writes fail at once, even without a deadline.
	for range 3 {
		err := within(t, time.Second, "a Write to a broken sink", func() error { return s.Write(context.Background(), event(4)) })
		if !errors.Is(err, ErrBroken) {
			t.Fatalf("Write after the stall = %v, want ErrBroken", err)
		}
	}
	if n := countLines(logs.String(), "level=ERROR"); n != 1 || !strings.Contains(logs.String(), "fails closed") {
		t.Fatalf("%d error lines, want one:\n%s", n, logs.String())
	}
	start := time.Now()
	err = within(t, 5*time.Second, "Close of a broken sink", s.Close)
	if !errors.Is(err, ErrBroken) || time.Since(start) > 2*time.Second {
		t.Fatalf("Close = %v after %v", err, time.Since(start))
	}
	if st := s.Stats(); st.Records != 1 || st.Failures != 5 {
		t.Fatalf("stats %+v", st)
	}
}

// TestStreamSinkCloseIsBounded: Close with the stream stalled mid-write
// (a Write holding the sink) returns an error within CloseTimeout, and a
// concurrent Close shares it.
func TestStreamSinkCloseIsBounded(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	g := newGateWriter()
	defer close(g.gate)
	s, err := NewStreamSink(g, StreamConfig{SigningKeyFile: k.path, CloseTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g.block(true)
	go s.Write(context.Background(), event(1)) // stuck for good
	<-g.entered
	errs := make(chan error, 2)
	start := time.Now()
	for range 2 {
		go func() { errs <- s.Close() }()
	}
	for range 2 {
		err := within(t, 5*time.Second, "Close with the stream stalled", func() error { return <-errs })
		if err == nil || !strings.Contains(err.Error(), "no shutdown checkpoint") {
			t.Fatalf("Close = %v", err)
		}
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("Close gave up after %v", d)
	}
	if err := s.Write(context.Background(), event(2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
	// A stalled stream at start: NewStreamSink fails within CloseTimeout.
	g2 := newGateWriter()
	defer close(g2.gate)
	g2.block(true)
	err = within(t, 5*time.Second, "NewStreamSink on a stalled stream", func() error {
		_, err := NewStreamSink(g2, StreamConfig{SigningKeyFile: k.path, CloseTimeout: 50 * time.Millisecond})
		return err
	})
	if !errors.Is(err, ErrBroken) {
		t.Fatalf("NewStreamSink = %v", err)
	}
}

// TestStreamSinkLogsCheckpointsAndRefusesHugeRecords: checkpoints are
// logged as anchors; a record over MaxRecordBytes is refused unwritten.
func TestStreamSinkLogsCheckpointsAndRefusesHugeRecords(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	clk := newFakeClock()
	var out closeBuffer
	var logs logBuffer
	s, err := NewStreamSink(&out, StreamConfig{SigningKeyFile: k.path, CheckpointInterval: time.Minute, Now: clk.Now, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		clk.Advance(40 * time.Second)
		mustWrite(t, s, event(i))
	}
	big := event(9)
	big.Reason = strings.Repeat("r", MaxRecordBytes)
	if err := s.Write(context.Background(), big); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("Write of a huge record = %.200v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "out.jsonl")
	writeFileMode(t, p, out.bytes(), 0o600)
	mustVerify(t, []string{p}, k.pub)
	checkLoggedAnchors(t, logs.String(), []string{p}, []string{ReasonStart, ReasonInterval, ReasonShutdown})
}
