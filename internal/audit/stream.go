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

// DefaultStreamCloseTimeout is the default of StreamConfig.CloseTimeout.
const DefaultStreamCloseTimeout = 5 * time.Second

// StreamConfig configures [NewStreamSink].
type StreamConfig struct {
	// SigningKeyFile is a PKCS #8 PEM Ed25519 private key for checkpoints;
	// "" = no checkpoints (chain only).
	SigningKeyFile string
	// CheckpointInterval: a checkpoint is written this often when records
	// were written since the last one (default 1m); also at start and at
	// Close.
	CheckpointInterval time.Duration
	// CloseTimeout bounds Close and each checkpoint the sink writes on its
	// own (at start, when idle); default 5s.
	CloseTimeout time.Duration
	// WriteTimeout bounds how long Write waits, like an end of its ctx;
	// 0 = until ctx ends.
	WriteTimeout time.Duration
	Now          func() time.Time // default time.Now
	Logger       *slog.Logger     // default: discard
}

// StreamSink writes the chained, checkpointed records to a stream such as
// stdout: one write per record, serialised; no fsync, no rotation. The
// chain starts at genesis each time a StreamSink is created, so each run's
// output verifies on its own.
//
// The writes are made by a goroutine of the sink's own, so that a stalled
// reader (a stdout pipe nobody drains) cannot hang requests: Write waits
// for its record to be written or for ctx. If ctx ends while the record is
// being written, whether it reaches the stream is unknown and the chain
// cannot go on past it: the sink fails closed. That Write and every later
// one return [ErrBroken] at once (logged once at error level) until a
// restart begins a new chain. Close returns within CloseTimeout.
type StreamSink struct {
	w            io.Writer
	c            io.Closer // nil unless the sink owns w
	log          *slog.Logger
	now          func() time.Time
	every        time.Duration
	closeTimeout time.Duration
	writeTimeout time.Duration
	signer       *signer

	// sem holds a token while a record is chained and written: a lock
	// that a Write can stop waiting for when its ctx ends. It guards the
	// fields below.
	sem     chan struct{}
	head    chain
	lastCP  time.Time
	sinceCP int
	torn    bool // a write failed part way: the next one starts a new line
	buf     []byte
	broken  error // set once a write's outcome is unknown: the sink fails closed

	closed atomic.Bool
	jobs   chan []byte       // to the writer goroutine, under sem
	res    chan streamResult // from it; buffered, so an abandoned write never blocks it
	quit   chan struct{}     // closed by Close: the writer goroutine exits
	stop   chan struct{}     // closed by Close: the ticker exits
	done   chan struct{}     // closed when the ticker has exited

	closeOnce sync.Once
	closeErr  error

	records, failures, checkpoints atomic.Uint64
}

type streamResult struct {
	n   int
	err error
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
	if cfg.CloseTimeout < 0 {
		errs = append(errs, errors.New("audit: stream: close timeout must not be negative"))
	}
	if cfg.WriteTimeout < 0 {
		errs = append(errs, errors.New("audit: stream: write timeout must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = DefaultStreamCloseTimeout
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
		w: w, c: c, log: cfg.Logger, now: cfg.Now, every: cfg.CheckpointInterval,
		closeTimeout: cfg.CloseTimeout, writeTimeout: cfg.WriteTimeout, signer: sg, head: newChain(),
		sem: make(chan struct{}, 1), jobs: make(chan []byte), res: make(chan streamResult, 1),
		quit: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go s.pump()
	s.lastCP = s.now()
	if sg == nil {
		close(s.done)
		return s, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.closeTimeout)
	defer cancel()
	s.sem <- struct{}{} // free: the sink is not shared yet
	err = s.checkpoint(ctx, s.lastCP, ReasonStart)
	<-s.sem
	if err != nil {
		close(s.quit)
		return nil, err
	}
	go s.ticker()
	return s, nil
}

// pump is the writer goroutine.
func (s *StreamSink) pump() {
	for {
		select {
		case buf := <-s.jobs:
			n, err := s.w.Write(buf)
			if err == nil && n != len(buf) {
				err = io.ErrShortWrite
			}
			s.res <- streamResult{n, err}
		case <-s.quit:
			return
		}
	}
}

// lock takes the sink's token, or fails when ctx ends or timeout fires
// first.
func (s *StreamSink) lock(ctx context.Context, timeout <-chan time.Time) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case s.sem <- struct{}{}:
		// When the token and the end of the wait came together, select
		// chose at random: a caller that has given up never writes.
		if err := ctx.Err(); err != nil {
			<-s.sem
			return fmt.Errorf("audit: record not written (an earlier write is still in progress): %w", err)
		}
		select {
		case <-timeout:
			<-s.sem
			return fmt.Errorf("audit: record not written (an earlier write is still in progress): %w", errWriteTimeout)
		default:
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit: record not written (an earlier write is still in progress): %w", ctx.Err())
	case <-timeout:
		return fmt.Errorf("audit: record not written (an earlier write is still in progress): %w", errWriteTimeout)
	}
}

// BoundsWrites reports whether Write is bounded by WriteTimeout.
func (s *StreamSink) BoundsWrites() bool { return s.writeTimeout > 0 }

func (s *StreamSink) unlock() { <-s.sem }

// Write writes e as one chained line (followed by a checkpoint when one
// is due). On success e.Seq and e.Prev are set. An error means the record
// was not written and the chain did not advance, except [ErrBroken] after
// ctx ended mid-write, when it may still be written (see StreamSink).
func (s *StreamSink) Write(ctx context.Context, e *Event) error {
	if err := ctx.Err(); err != nil {
		return s.fail(fmt.Errorf("audit: record not written: %w", err))
	}
	body, err := encodeBody(e)
	if err != nil {
		return s.fail(err)
	}
	if s.closed.Load() {
		return s.fail(ErrClosed)
	}
	timeout, stop := waitTimer(s.writeTimeout)
	defer stop()
	if err := s.lock(ctx, timeout); err != nil {
		return s.fail(err)
	}
	defer s.unlock()
	if s.closed.Load() {
		return s.fail(ErrClosed)
	}
	if s.broken != nil {
		return s.fail(s.broken)
	}
	head := s.head
	buf := s.buf[:0]
	if s.torn {
		buf = append(buf, '\n')
	}
	buf, seq, prev := head.appendRecord(buf, body)
	now := s.now()
	cp, cpID := false, ""
	if s.signer != nil && now.Sub(s.lastCP) >= s.every {
		key, id := s.signer.current()
		cpID = id
		if b, err := head.appendCheckpoint(buf, now, key, id, ReasonInterval); err != nil {
			s.log.Error("audit: checkpoint not written", "error", err)
		} else {
			buf, cp = b, true
		}
	}
	s.buf = buf
	if err := s.write(ctx, timeout, buf); err != nil {
		return s.fail(err)
	}
	s.head = head
	s.records.Add(1)
	if cp {
		s.lastCP, s.sinceCP = now, 0
		s.checkpoints.Add(1)
		logCheckpoint(s.log, head, ReasonInterval, cpID)
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

// write hands buf to the writer goroutine and waits for the result or
// ctx; the token is held. If ctx ends while buf is being written, the
// sink fails closed.
func (s *StreamSink) write(ctx context.Context, timeout <-chan time.Time, buf []byte) error {
	select {
	case s.jobs <- buf:
	case <-ctx.Done():
		return fmt.Errorf("audit: record not written: %w", ctx.Err())
	case <-timeout:
		return fmt.Errorf("audit: record not written: %w", errWriteTimeout)
	}
	var r streamResult
	var gaveUp error
	select {
	case r = <-s.res:
	case <-ctx.Done():
		gaveUp = ctx.Err()
	case <-timeout:
		gaveUp = errWriteTimeout
	}
	if gaveUp != nil {
		select {
		case r = <-s.res: // finished just in time
		default:
			s.broken = fmt.Errorf("%w: a write to the stream did not finish in time (%w): whether the record was written is unknown, so the chain cannot go on; restart to begin a new chain", ErrBroken, gaveUp)
			s.log.Error("audit: the stream is stalled; the audit sink fails closed and refuses every record until restart", "error", gaveUp)
			return s.broken
		}
	}
	if r.err != nil {
		if r.n > 0 {
			s.torn = true // the partial line stays; Verify reports it as malformed
		}
		return fmt.Errorf("audit: write: %w", r.err)
	}
	s.torn = false
	return nil
}

// checkpoint writes a checkpoint on its own; the token is held.
func (s *StreamSink) checkpoint(ctx context.Context, now time.Time, reason string) error {
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
	if err := s.write(ctx, nil, buf); err != nil {
		return err
	}
	s.head = head
	s.lastCP, s.sinceCP = now, 0
	s.checkpoints.Add(1)
	logCheckpoint(s.log, head, reason, id)
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
		}
		select {
		case s.sem <- struct{}{}:
		case <-s.stop:
			return
		}
		if now := s.now(); !s.closed.Load() && s.broken == nil && s.sinceCP > 0 && now.Sub(s.lastCP) >= s.every {
			ctx, cancel := context.WithTimeout(context.Background(), s.closeTimeout)
			if err := s.checkpoint(ctx, now, ReasonInterval); err != nil {
				s.log.Error("audit: checkpoint not written; will retry", "error", err)
			}
			cancel()
		}
		s.unlock()
	}
}

// Close writes a shutdown checkpoint (with a key) and closes the writer
// if the sink owns it. Later Writes get ErrClosed. It returns within
// CloseTimeout, with an error if the stream is stalled; a concurrent or
// later Close waits for the first and returns its result.
func (s *StreamSink) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *StreamSink) close() error {
	s.closed.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), s.closeTimeout)
	defer cancel()
	var errs []error
	if err := s.lock(ctx, nil); err != nil {
		errs = append(errs, fmt.Errorf("audit: close: no shutdown checkpoint: %w", err))
	} else {
		switch {
		case s.broken != nil:
			errs = append(errs, fmt.Errorf("audit: close: no shutdown checkpoint: %w", s.broken))
		case s.signer != nil:
			if err := s.checkpoint(ctx, s.now(), ReasonShutdown); err != nil {
				errs = append(errs, fmt.Errorf("audit: shutdown checkpoint: %w", err))
			}
		}
		s.unlock()
	}
	close(s.stop)
	select {
	case <-s.done:
	case <-ctx.Done():
	}
	close(s.quit) // the writer goroutine exits once a stalled write returns, if ever
	if s.c != nil {
		cerr := make(chan error, 1)
		go func() { cerr <- s.c.Close() }()
		select {
		case err := <-cerr:
			if err != nil {
				errs = append(errs, fmt.Errorf("audit: close: %w", err))
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("audit: close: the stream did not close within %v", s.closeTimeout))
		}
	}
	return errors.Join(errs...)
}

// Stats returns the sink's counters (Rotations and QueueDepth are 0).
func (s *StreamSink) Stats() Stats {
	return Stats{Records: s.records.Load(), Failures: s.failures.Load(), Checkpoints: s.checkpoints.Load()}
}
