package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// StreamConfig configures [NewStreamSink].
type StreamConfig struct {
	// SigningKeyFile is a PKCS #8 PEM Ed25519 private key for checkpoints;
	// "" = no checkpoints (chain only).
	SigningKeyFile string
	// CheckpointInterval: a checkpoint is written this often when records
	// were written since the last one (default 1m); also at start and at
	// Close.
	CheckpointInterval time.Duration
	Now                func() time.Time // default time.Now
	Logger             *slog.Logger     // default: discard
}

// StreamSink writes the chained, checkpointed records to a stream such as
// stdout: synchronously, one write per record, under a mutex; no fsync,
// no rotation. The chain starts at genesis each time a StreamSink is
// created, so each run's output verifies on its own.
type StreamSink struct {
	w      io.Writer
	c      io.Closer // nil unless the sink owns w
	log    *slog.Logger
	now    func() time.Time
	every  time.Duration
	signer *signer

	mu      sync.Mutex // guards the fields below and writes to w
	closed  bool
	head    chain
	lastCP  time.Time
	sinceCP int
	torn    bool // a write failed part way: the next one starts a new line
	buf     []byte

	stop chan struct{}
	done chan struct{}

	records, failures, checkpoints atomic.Uint64
}

// NewStreamSink returns a sink writing to w and writes its start
// checkpoint (with a key). If w is an io.Closer other than os.Stdout or
// os.Stderr, Close closes it.
func NewStreamSink(w io.Writer, cfg StreamConfig) (*StreamSink, error) {
	var errs []error
	if w == nil {
		errs = append(errs, errors.New("audit: stream: writer is required"))
	}
	if cfg.CheckpointInterval < 0 {
		errs = append(errs, errors.New("audit: stream: checkpoint interval must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	sg, err := newSigner(cfg.SigningKeyFile, cfg.Now, cfg.Logger)
	if err != nil {
		return nil, err
	}
	c, _ := w.(io.Closer)
	if w == os.Stdout || w == os.Stderr {
		c = nil
	}
	s := &StreamSink{
		w: w, c: c, log: cfg.Logger, now: cfg.Now, every: cfg.CheckpointInterval, signer: sg,
		head: newChain(), stop: make(chan struct{}), done: make(chan struct{}),
	}
	s.lastCP = s.now()
	if sg == nil {
		close(s.done)
		return s, nil
	}
	if err := s.checkpoint(s.lastCP, ReasonStart); err != nil {
		return nil, err
	}
	go s.ticker()
	return s, nil
}

// Write writes e as one chained line (followed by a checkpoint when one
// is due). On success e.Seq and e.Prev are set; an error means the record
// was not written and the chain did not advance.
func (s *StreamSink) Write(ctx context.Context, e *Event) error {
	if err := ctx.Err(); err != nil {
		return s.fail(fmt.Errorf("audit: record not written: %w", err))
	}
	body, err := encodeBody(e)
	if err != nil {
		return s.fail(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.fail(ErrClosed)
	}
	head := s.head
	buf := s.buf[:0]
	if s.torn {
		buf = append(buf, '\n')
	}
	buf, seq, prev := head.appendRecord(buf, body)
	now := s.now()
	cp := false
	if s.signer != nil && now.Sub(s.lastCP) >= s.every {
		key, id := s.signer.current()
		if b, err := head.appendCheckpoint(buf, now, key, id, ReasonInterval); err != nil {
			s.log.Error("audit: checkpoint not written", "error", err)
		} else {
			buf, cp = b, true
		}
	}
	s.buf = buf
	if err := s.write(buf); err != nil {
		return s.fail(err)
	}
	s.head = head
	s.records.Add(1)
	if cp {
		s.lastCP, s.sinceCP = now, 0
		s.checkpoints.Add(1)
	} else {
		s.sinceCP++
	}
	e.Seq, e.Prev = seq, prev
	return nil
}

func (s *StreamSink) fail(err error) error {
	s.failures.Add(1)
	return err
}

// write writes buf; s.mu is held.
func (s *StreamSink) write(buf []byte) error {
	n, err := s.w.Write(buf)
	if err == nil && n != len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if n > 0 {
			s.torn = true // the partial line stays; Verify reports it as malformed
		}
		return fmt.Errorf("audit: write: %w", err)
	}
	s.torn = false
	return nil
}

// checkpoint writes a checkpoint on its own; s.mu is held (or the sink is
// not shared yet).
func (s *StreamSink) checkpoint(now time.Time, reason string) error {
	key, id := s.signer.current()
	head := s.head
	buf := s.buf[:0]
	if s.torn {
		buf = append(buf, '\n')
	}
	buf, err := head.appendCheckpoint(buf, now, key, id, reason)
	if err != nil {
		return err
	}
	s.buf = buf
	if err := s.write(buf); err != nil {
		return err
	}
	s.head = head
	s.lastCP, s.sinceCP = now, 0
	s.checkpoints.Add(1)
	return nil
}

// ticker writes a checkpoint when records were written since the last
// one and none has come with a Write for CheckpointInterval.
func (s *StreamSink) ticker() {
	defer close(s.done)
	t := time.NewTicker(max(s.every/4, 5*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			if now := s.now(); !s.closed && s.sinceCP > 0 && now.Sub(s.lastCP) >= s.every {
				if err := s.checkpoint(now, ReasonInterval); err != nil {
					s.log.Error("audit: checkpoint not written; will retry", "error", err)
				}
			}
			s.mu.Unlock()
		}
	}
}

// Close writes a shutdown checkpoint (with a key) and closes the writer
// if the sink owns it. Later Writes get ErrClosed.
func (s *StreamSink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var errs []error
	if s.signer != nil {
		if err := s.checkpoint(s.now(), ReasonShutdown); err != nil {
			errs = append(errs, fmt.Errorf("audit: shutdown checkpoint: %w", err))
		}
	}
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	if s.c != nil {
		if err := s.c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("audit: close: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Stats returns the sink's counters (Rotations and QueueDepth are 0).
func (s *StreamSink) Stats() Stats {
	return Stats{Records: s.records.Load(), Failures: s.failures.Load(), Checkpoints: s.checkpoints.Load()}
}
