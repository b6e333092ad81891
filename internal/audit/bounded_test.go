package audit

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestFileSinkWriteTimeout: with WriteTimeout, a Write with no deadline of
// its own gives up on a stalled disk after the timeout, and a record
// abandoned in the queue is not written later.
func TestFileSinkWriteTimeout(t *testing.T) {
	fl := &faults{entered: make(chan struct{}, 1)}
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	s, err := openFileSink(FileConfig{Path: path, SigningKeyFile: k.path, WriteTimeout: 60 * time.Millisecond}, fl.open)
	if err != nil {
		t.Fatal(err)
	}
	if !s.BoundsWrites() {
		t.Fatal("BoundsWrites = false with a WriteTimeout")
	}
	gate := make(chan struct{})
	fl.set(func(fl *faults) { fl.writeGate = gate })
	var wg sync.WaitGroup
	var first error
	wg.Go(func() { first = s.Write(context.Background(), event(1)) }) // taken by the writer, stalls
	<-fl.entered
	start := time.Now()
	err = within(t, 5*time.Second, "a Write queued behind a stalled disk", func() error { return s.Write(context.Background(), event(2)) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write = %v, want a deadline error", err)
	}
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Fatalf("gave up after %v, before the write timeout", d)
	}
	fl.set(func(fl *faults) { fl.writeGate = nil })
	close(gate)
	wg.Wait()
	if !errors.Is(first, context.DeadlineExceeded) {
		t.Fatalf("stalled Write = %v, want a deadline error", first)
	}
	mustWrite(t, s, event(3))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, l := range readLines(t, path) {
		if id := parseLine(t, l).RequestID; id == "req-0002" {
			t.Fatal("a record whose Write had given up was written later")
		}
	}
	mustVerify(t, []string{path}, k.pub)
}

// TestStreamSinkWriteTimeout: WriteTimeout ends a Write on a stalled
// stream like a ctx deadline: the sink fails closed.
func TestStreamSinkWriteTimeout(t *testing.T) {
	g := newGateWriter()
	defer close(g.gate)
	s, err := NewStreamSink(g, StreamConfig{WriteTimeout: 50 * time.Millisecond, CloseTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !s.BoundsWrites() {
		t.Fatal("BoundsWrites = false with a WriteTimeout")
	}
	mustWrite(t, s, event(1))
	g.block(true)
	err = within(t, 5*time.Second, "a Write to a stalled stream", func() error { return s.Write(context.Background(), event(2)) })
	if !errors.Is(err, ErrBroken) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write = %v, want ErrBroken after the write timeout", err)
	}
	if _, err := NewStreamSink(g, StreamConfig{WriteTimeout: -time.Second}); err == nil {
		t.Fatal("a negative write timeout was accepted")
	}
	unbounded, err := NewStreamSink(g, StreamConfig{CloseTimeout: time.Millisecond})
	if err == nil && unbounded.BoundsWrites() {
		t.Fatal("BoundsWrites = true without a WriteTimeout")
	}
}
