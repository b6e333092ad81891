package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Fsync policies of [FileConfig].
const (
	FsyncAlways   = "always"   // Write returns once the record is fsynced
	FsyncPeriodic = "interval" // Write returns after write(2); fsync every FsyncInterval
)

// Defaults of [FileConfig].
const (
	DefaultFsyncInterval      = time.Second
	DefaultQueueSize          = 1024
	DefaultQueueTimeout       = time.Second
	DefaultCheckpointInterval = time.Minute
	DefaultCloseTimeout       = 10 * time.Second
)

// rotatedTimeFormat names a rotated file: <path>.<UTC time>[-N].
const rotatedTimeFormat = "20060102T150405Z"

// rotateRetry is how long a failed rotation waits before it is retried.
const rotateRetry = 10 * time.Second

// maxTailScan bounds how far back OpenFileSink looks for the last line.
const maxTailScan = 64 << 20

// ErrQueueFull is returned by [FileSink.Write] when the queue stayed full
// for QueueTimeout: the disk is slower than the traffic, or stalled.
var ErrQueueFull = errors.New("audit: queue full")

// ErrBroken is returned by every Write of a sink that failed closed: a
// FileSink whose periodic fsync failed, a StreamSink whose write did not
// finish in time. The chain cannot safely continue; restart.
var ErrBroken = errors.New("audit: sink failed closed")

// FileConfig configures [OpenFileSink].
type FileConfig struct {
	// Path is the active file, e.g. /var/log/mcpgate/audit.jsonl; created
	// 0600. Its directory must exist.
	Path string
	// Fsync is FsyncAlways (default): Write returns only after the record
	// is fsynced; or FsyncPeriodic ("interval"): Write returns after
	// write(2), and the file is fsynced every FsyncInterval, so a power
	// loss can lose up to that much of acknowledged records.
	Fsync         string
	FsyncInterval time.Duration // default 1s
	// RotateSize rotates the file before a batch that would make it
	// exceed this many bytes (the rotation checkpoint, a few hundred
	// bytes, may still go over); 0 = never.
	RotateSize int64
	// RotateInterval rotates a file with records in it that is older than
	// this (its age is that of its first record); 0 = never.
	RotateInterval time.Duration
	// QueueSize bounds the records waiting to be written; default 1024.
	QueueSize int
	// QueueTimeout is how long Write waits for room in a full queue before
	// it fails (backpressure, never a silent drop); default 1s.
	QueueTimeout time.Duration
	// WriteTimeout bounds how long Write waits for its record (queue wait
	// included); 0 = until ctx ends.
	WriteTimeout time.Duration
	// SigningKeyFile is a PKCS #8 PEM Ed25519 private key for checkpoints,
	// re-read when it changes; "" = no checkpoints (chain only).
	SigningKeyFile string
	// CheckpointInterval: a checkpoint is written this often when records
	// were written since the last one (default 1m); also at start, before
	// every rotation and at Close.
	CheckpointInterval time.Duration
	// CloseTimeout bounds Close (default 10s): a stalled disk makes Close
	// return an error rather than hang shutdown.
	CloseTimeout time.Duration
	Now          func() time.Time // default time.Now
	Logger       *slog.Logger     // default: discard
}

// withDefaults validates c and fills its defaults, reporting every
// problem at once.
func (c FileConfig) withDefaults() (FileConfig, error) {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("audit: file: path is required"))
	}
	switch c.Fsync {
	case "":
		c.Fsync = FsyncAlways
	case FsyncAlways, FsyncPeriodic:
	default:
		errs = append(errs, fmt.Errorf("audit: file: fsync %q: want %q or %q", c.Fsync, FsyncAlways, FsyncPeriodic))
	}
	for _, d := range []struct {
		name string
		v    int64
	}{
		{"fsync interval", int64(c.FsyncInterval)},
		{"rotate size", c.RotateSize},
		{"rotate interval", int64(c.RotateInterval)},
		{"queue size", int64(c.QueueSize)},
		{"queue timeout", int64(c.QueueTimeout)},
		{"checkpoint interval", int64(c.CheckpointInterval)},
		{"close timeout", int64(c.CloseTimeout)},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("audit: file: %s must not be negative", d.name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if c.FsyncInterval == 0 {
		c.FsyncInterval = DefaultFsyncInterval
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.QueueTimeout == 0 {
		c.QueueTimeout = DefaultQueueTimeout
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Stats are a sink's counters, for metrics.
type Stats struct {
	Records     uint64 // caller records written
	Failures    uint64 // Writes that returned an error
	Checkpoints uint64 // checkpoints written
	Rotations   uint64 // files rotated
	QueueDepth  int    // records waiting to be written
}

// file is what FileSink needs of an *os.File; tests inject faults.
type file interface {
	io.Writer
	io.ReaderAt
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Close() error
}

// openFunc opens (creating 0600) a file for appending and reading.
type openFunc func(path string) (file, error)

func openOSFile(path string) (file, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// syncDirFunc fsyncs a directory; tests inject faults.
type syncDirFunc func(dir string) error

// FileSink is a durable, chained audit file: a Sink whose Write returns
// once the record is written (and, with FsyncAlways, fsynced).
//
// Directory entries: after the active file is created (at start and at
// every rotation) its directory is fsynced before anything is written in
// it. If that fsync fails the batch fails (its Writes get the error) and
// the next batch tries again, so no record is acknowledged in a file
// whose name may not survive a power loss. A file system that does not
// support fsync on a directory (EINVAL) is logged once and tolerated.
//
// FsyncPeriodic: a failed periodic fsync may have lost acknowledged
// records (Linux may drop the dirty pages and report the error once), so
// the sink fails closed: every later Write returns [ErrBroken] until the
// process restarts, re-reads the file and repairs its last line.
//
// One goroutine writes: it takes every queued record, chains them, writes
// them with one write(2) and one fsync, then acknowledges every waiting
// Write (group commit). A failed write or fsync fails that batch's Writes,
// removes whatever part of the batch reached the file and leaves the chain
// where it was, so the file never holds a partial line followed by more
// records; the next batch tries again.
//
// A Write that returns an error must be treated as "not recorded" (the
// gateway then denies). After a context cancellation that error is
// certain to be returned but the record may still be written if the
// writer had already taken it: the trail can hold a record whose request
// was denied, never lack one whose request went ahead.
type FileSink struct {
	cfg     FileConfig
	open    openFunc
	syncDir syncDirFunc
	log     *slog.Logger
	now     func() time.Time
	signer  *signer // nil: no checkpoints
	always  bool    // Fsync == FsyncAlways

	mu     sync.RWMutex // guards closed; held shared while enqueueing
	closed bool
	queue  chan *request
	stop   chan struct{}   // closed by Close
	cpReq  chan chan error // Checkpoint requests
	done   chan struct{}   // closed when the writer goroutine exits
	// closeErr is set by the writer goroutine before done is closed.
	closeErr error
	// closeDone is closed once the first Close has its result, closeRes.
	closeDone chan struct{}
	closeRes  error

	// Owned by the writer goroutine (by openFileSink before it starts).
	f        file      // the active file; nil after a failed reopen
	size     int64     // bytes of complete records in f: where a failed write is cut back to
	broken   bool      // f may hold bytes past size that could not be removed yet
	opened   time.Time // the active file's age
	fileRecs int       // records in the active file (0: nothing to rotate)
	// rotateAfter holds off a retry after a failed rotation, which would
	// otherwise add a rotation checkpoint to every batch.
	rotateAfter time.Time
	head        chain
	dirPending  bool  // the active file's directory entry is not known to be durable
	dirNoSync   bool  // the file system does not fsync directories (logged once)
	needCont    bool  // a rotation happened: the new file gets a continued checkpoint
	fatal       error // set after a failed periodic fsync: every write is refused
	lastCP      time.Time
	sinceCP     int  // records since the last checkpoint
	dirty       bool // written, not fsynced (FsyncPeriodic)
	buf         []byte
	batch       []*request

	records, failures, checkpoints, rotations atomic.Uint64
}

// request is one queued record. seq and prev are set by the writer.
type request struct {
	ctx     context.Context
	expired atomic.Bool // the writer gave up waiting (WriteTimeout)
	body    []byte      // from encodeBody
	done    chan result // buffered: the writer never blocks on an abandoned request
	seq     uint64
	prev    string
}

type result struct {
	seq  uint64
	prev string
	err  error
}

// OpenFileSink opens (or creates) the audit file, continues the chain
// found in it or in the rotated file with the highest seq, repairs a
// partial last line left by a crash, fsyncs the directory, writes a start
// checkpoint (with a key) and starts the writer.
func OpenFileSink(cfg FileConfig) (*FileSink, error) {
	return openFileSink(cfg, openOSFile)
}

func openFileSink(cfg FileConfig, open openFunc) (*FileSink, error) {
	return openFileSinkWith(cfg, open, syncDirOS)
}

func openFileSinkWith(cfg FileConfig, open openFunc, syncDir syncDirFunc) (*FileSink, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	sg, err := newSigner(cfg.SigningKeyFile, cfg.Now, cfg.Logger)
	if err != nil {
		return nil, err
	}
	s := &FileSink{
		cfg: cfg, open: open, syncDir: syncDir, log: cfg.Logger, now: cfg.Now, signer: sg,
		always:    cfg.Fsync == FsyncAlways,
		queue:     make(chan *request, cfg.QueueSize),
		stop:      make(chan struct{}),
		cpReq:     make(chan chan error),
		done:      make(chan struct{}),
		closeDone: make(chan struct{}),
		head:      newChain(),
	}
	if err := s.recover(); err != nil {
		return nil, err
	}
	s.lastCP = s.now()
	if s.signer != nil {
		if err := s.checkpoint(s.lastCP, ReasonStart); err != nil {
			s.f.Close()
			return nil, err
		}
	}
	if err := s.usable(s.lastCP); err != nil { // the directory fsync, without a key
		s.f.Close()
		return nil, err
	}
	go s.run()
	return s, nil
}

// Write queues e and waits until it is written as the Fsync policy
// promises, ctx is done, or the queue stayed full for QueueTimeout. On
// success e.Seq and e.Prev are set. Every error is counted in
// Stats.Failures; see FileSink for what an error means.
func (s *FileSink) Write(ctx context.Context, e *Event) error {
	body, err := encodeBody(e)
	if err != nil {
		return s.fail(err)
	}
	req := &request{ctx: ctx, body: body, done: make(chan result, 1)}
	timeout, stop := waitTimer(s.cfg.WriteTimeout)
	defer stop()
	if err := s.enqueue(ctx, req, timeout); err != nil {
		return s.fail(err)
	}
	select {
	case r := <-req.done:
		if r.err != nil {
			return s.fail(r.err)
		}
		e.Seq, e.Prev = r.seq, r.prev
		return nil
	case <-ctx.Done():
		return s.fail(fmt.Errorf("audit: record not confirmed, treat it as not recorded (it may still be written): %w", ctx.Err()))
	case <-timeout:
		req.expired.Store(true)
		return s.fail(fmt.Errorf("audit: record not confirmed, treat it as not recorded (it may still be written): %w", errWriteTimeout))
	}
}

// BoundsWrites reports whether Write is bounded by WriteTimeout.
func (s *FileSink) BoundsWrites() bool { return s.cfg.WriteTimeout > 0 }

func (s *FileSink) fail(err error) error {
	s.failures.Add(1)
	return err
}

func (s *FileSink) enqueue(ctx context.Context, req *request, timeout <-chan time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: record not written: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	select {
	case s.queue <- req:
		return nil
	default:
	}
	t := time.NewTimer(s.cfg.QueueTimeout)
	defer t.Stop()
	select {
	case s.queue <- req:
		return nil
	case <-t.C:
		return fmt.Errorf("%w for %v: the audit file is not keeping up", ErrQueueFull, s.cfg.QueueTimeout)
	case <-ctx.Done():
		return fmt.Errorf("audit: record not written: %w", ctx.Err())
	case <-timeout:
		return fmt.Errorf("audit: record not written: %w", errWriteTimeout)
	}
}

// ErrNoSigningKey is returned by Checkpoint when the sink has no key.
var ErrNoSigningKey = errors.New("audit: no signing key: checkpoints are off")

// Checkpoint writes a signed checkpoint now, after every record written so
// far, so that the whole trail up to here can be verified (an operator
// before shipping the file, a test, the demo).
func (s *FileSink) Checkpoint(ctx context.Context) error {
	if s.signer == nil {
		return ErrNoSigningKey
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	reply := make(chan error, 1)
	select {
	case s.cpReq <- reply:
	case <-s.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes a shutdown checkpoint (with a key) after every record
// already queued, fsyncs and closes the file. Later Writes get ErrClosed.
// It returns within CloseTimeout: if the writer is stalled (a hung fsync)
// it returns an error and the writer finishes on its own, if ever. A
// concurrent or later Close waits for the first and returns its result.
func (s *FileSink) Close() error {
	s.mu.Lock()
	first := !s.closed
	s.closed = true
	s.mu.Unlock()
	if first {
		close(s.stop)
		t := time.NewTimer(s.cfg.CloseTimeout)
		select {
		case <-s.done:
			s.closeRes = s.closeErr
		case <-t.C:
			s.closeRes = fmt.Errorf("audit: close %s: the writer did not finish within %v (a stalled write or fsync): queued records and the shutdown checkpoint may not be written", s.cfg.Path, s.cfg.CloseTimeout)
			s.log.Error("audit: close timed out", "file", s.cfg.Path, "timeout", s.cfg.CloseTimeout)
		}
		t.Stop()
		close(s.closeDone)
	}
	<-s.closeDone
	return s.closeRes
}

// Stats returns the sink's counters.
func (s *FileSink) Stats() Stats {
	return Stats{
		Records:     s.records.Load(),
		Failures:    s.failures.Load(),
		Checkpoints: s.checkpoints.Load(),
		Rotations:   s.rotations.Load(),
		QueueDepth:  len(s.queue),
	}
}

// run is the writer goroutine.
func (s *FileSink) run() {
	defer close(s.done)
	var syncTick, maintTick <-chan time.Time
	if !s.always {
		t := time.NewTicker(s.cfg.FsyncInterval)
		defer t.Stop()
		syncTick = t.C
	}
	if d := s.maintenancePeriod(); d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		maintTick = t.C
	}
	for {
		select {
		case r := <-s.queue:
			s.commit(s.collect(r))
		case <-syncTick:
			if s.dirty && s.fatal == nil {
				s.sync() // a failure makes the sink fail closed (logged)
			}
		case <-maintTick:
			s.maintain()
		case reply := <-s.cpReq:
			reply <- s.checkpoint(s.now(), ReasonRequest)
		case <-s.stop:
			for {
				select {
				case r := <-s.queue:
					s.commit(s.collect(r))
					continue
				default:
				}
				break
			}
			s.closeErr = s.shutdown()
			return
		}
	}
}

// maintenancePeriod is how often idle checkpoints and rotations are
// considered: a quarter of the shortest interval, at least 5ms; 0 = never.
func (s *FileSink) maintenancePeriod() time.Duration {
	var d time.Duration
	if s.signer != nil {
		d = s.cfg.CheckpointInterval
	}
	if r := s.cfg.RotateInterval; r > 0 && (d == 0 || r < d) {
		d = r
	}
	if d == 0 {
		return 0
	}
	return max(d/4, 5*time.Millisecond)
}

// collect returns first and everything else queued now.
func (s *FileSink) collect(first *request) []*request {
	b := append(s.batch[:0], first)
	for len(b) < s.cfg.QueueSize {
		select {
		case r := <-s.queue:
			b = append(b, r)
			continue
		default:
		}
		break
	}
	s.batch = b
	return b
}

// commit writes a batch and acknowledges it.
func (s *FileSink) commit(batch []*request) {
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- result{err: fmt.Errorf("audit: record not written: %w", err)}
			continue
		}
		if r.expired.Load() {
			r.done <- result{err: fmt.Errorf("audit: record not written: %w", errWriteTimeout)}
			continue
		}
		live = append(live, r)
	}
	defer clear(batch) // drop references to the requests
	if len(live) == 0 {
		return
	}
	now := s.now()
	if err := s.prepare(now, live); err != nil {
		s.failAll(live, err)
		return
	}
	head := s.head
	buf := s.buf[:0]
	for _, r := range live {
		buf, r.seq, r.prev = head.appendRecord(buf, r.body)
	}
	cp, cpID := false, ""
	if s.signer != nil && now.Sub(s.lastCP) >= s.cfg.CheckpointInterval {
		key, id := s.signer.current()
		cpID = id
		if b, err := head.appendCheckpoint(buf, now, key, id, ReasonInterval); err != nil {
			s.log.Error("audit: checkpoint not written", "error", err)
		} else {
			buf, cp = b, true
		}
	}
	s.buf = buf
	if err := s.writeOut(buf, s.always); err != nil {
		s.failAll(live, err)
		return
	}
	s.head = head
	s.fileRecs += len(live)
	s.needCont = false
	s.records.Add(uint64(len(live)))
	if cp {
		s.lastCP, s.sinceCP = now, 0
		s.checkpoints.Add(1)
		logCheckpoint(s.log, head, ReasonInterval, cpID)
	} else {
		s.sinceCP += len(live)
	}
	for _, r := range live {
		r.done <- result{seq: r.seq, prev: r.prev}
	}
}

func (s *FileSink) failAll(reqs []*request, err error) {
	for _, r := range reqs {
		r.done <- result{err: err}
	}
}

// prepare makes the active file usable and rotates it if due.
func (s *FileSink) prepare(now time.Time, live []*request) error {
	if s.fatal != nil {
		return s.fatal
	}
	add := int64(0)
	for _, r := range live {
		add += int64(len(r.body)) + 100 // seq, prev, framing
	}
	if s.rotateDue(now, add) {
		if err := s.rotate(now); err != nil {
			s.rotateAfter = now.Add(rotateRetry)
			s.log.Error("audit: rotation failed; writing on in the current file", "file", s.cfg.Path, "retry_in", rotateRetry, "error", err)
		}
	}
	if err := s.usable(now); err != nil {
		return err
	}
	s.continued(now)
	return nil
}

// continued writes the continued checkpoint at the start of a file begun
// by a rotation; a failure is logged and retried by maintain.
func (s *FileSink) continued(now time.Time) {
	if !s.needCont || s.signer == nil {
		return
	}
	if err := s.checkpoint(now, ReasonContinued); err != nil {
		s.log.Error("audit: checkpoint not written; will retry", "file", s.cfg.Path, "reason", ReasonContinued, "error", err)
	}
}

// usable refuses writes after a failed periodic fsync, reopens the
// active file after a failed rotation, removes what a failed write left
// past the last good offset, and makes the active file's directory entry
// durable before anything is written in it.
func (s *FileSink) usable(now time.Time) error {
	if s.fatal != nil {
		return s.fatal
	}
	if s.f == nil {
		if err := s.openActive(now); err != nil {
			return err
		}
	}
	if s.dirPending {
		if err := s.fsyncDir(); err != nil {
			return err
		}
	}
	if s.broken {
		if err := s.f.Truncate(s.size); err != nil {
			return fmt.Errorf("audit: %s holds a partial write that cannot be removed: %w", s.cfg.Path, err)
		}
		s.broken = false
		s.log.Info("audit: partial write removed", "file", s.cfg.Path, "offset", s.size)
	}
	return nil
}

// fsyncDir makes the active file's directory entry durable.
func (s *FileSink) fsyncDir() error {
	dir := filepath.Dir(s.cfg.Path)
	err := s.syncDir(dir)
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported) {
		if !s.dirNoSync {
			s.dirNoSync = true
			s.log.Warn("audit: the file system does not fsync directories; a rotation may not survive a power loss", "dir", dir, "error", err)
		}
		err = nil
	}
	if err != nil {
		return fmt.Errorf("audit: fsync of the directory %s failed, so nothing is written in %s until it succeeds: %w", dir, s.cfg.Path, err)
	}
	s.dirPending = false
	return nil
}

// setFatal makes the sink fail closed after a failed fsync that may have
// lost acknowledged records.
func (s *FileSink) setFatal(err error) {
	if s.fatal != nil {
		return
	}
	s.fatal = fmt.Errorf("%w: %s: a failed fsync may have lost records already acknowledged; restart mcpgate, which re-reads and repairs the file: %w", ErrBroken, s.cfg.Path, err)
	s.log.Error("audit: fsync failed with records not yet synced; every audit write is refused until restart", "file", s.cfg.Path, "error", err)
}

// writeOut writes buf (complete lines) and, if sync, fsyncs. On failure
// it cuts the file back to the last good offset; the caller keeps the
// chain where it was. A failed fsync with earlier records unsynced
// (FsyncPeriodic) makes the sink fail closed.
func (s *FileSink) writeOut(buf []byte, sync bool) error {
	n, err := s.f.Write(buf)
	if err == nil && n != len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		err = fmt.Errorf("audit: write %s: %w", s.cfg.Path, err)
	} else if sync {
		if serr := s.f.Sync(); serr != nil {
			err = fmt.Errorf("audit: fsync %s: %w", s.cfg.Path, serr)
			if s.dirty {
				s.setFatal(serr)
			}
		}
	}
	if err != nil {
		// After a failed fsync the page cache state is unknown: remove the
		// batch so that the file holds exactly the acknowledged chain.
		if terr := s.f.Truncate(s.size); terr != nil {
			s.broken = true
			s.log.Error("audit: cannot remove a failed write; writes are refused until it is", "file", s.cfg.Path, "offset", s.size, "error", terr)
		} else if n > 0 {
			s.log.Warn("audit: removed a partial write", "file", s.cfg.Path, "bytes", n)
		}
		return err
	}
	s.size += int64(len(buf))
	s.dirty = !sync
	return nil
}

func (s *FileSink) sync() error {
	if s.f == nil {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		s.setFatal(err)
		return s.fatal
	}
	s.dirty = false
	return nil
}

// checkpoint writes a checkpoint on its own, fsynced unless it is a
// periodic one under FsyncPeriodic.
func (s *FileSink) checkpoint(now time.Time, reason string) error {
	if err := s.usable(now); err != nil {
		return err
	}
	key, id := s.signer.current()
	head := s.head
	buf, err := head.appendCheckpoint(s.buf[:0], now, key, id, reason)
	if err != nil {
		return err
	}
	s.buf = buf
	if err := s.writeOut(buf, s.always || reason != ReasonInterval); err != nil {
		return err
	}
	s.head = head
	s.lastCP, s.sinceCP = now, 0
	s.needCont = false
	s.checkpoints.Add(1)
	logCheckpoint(s.log, head, reason, id)
	return nil
}

// maintain writes an idle checkpoint and rotates an old file.
func (s *FileSink) maintain() {
	if s.fatal != nil {
		return
	}
	now := s.now()
	if s.rotateDue(now, 0) {
		if err := s.rotate(now); err != nil {
			s.rotateAfter = now.Add(rotateRetry)
			s.log.Error("audit: rotation failed; writing on in the current file", "file", s.cfg.Path, "retry_in", rotateRetry, "error", err)
		}
	}
	s.continued(now)
	if s.signer != nil && s.sinceCP > 0 && now.Sub(s.lastCP) >= s.cfg.CheckpointInterval {
		if err := s.checkpoint(now, ReasonInterval); err != nil {
			s.log.Error("audit: checkpoint not written; will retry", "file", s.cfg.Path, "error", err)
		}
	}
}

func (s *FileSink) rotateDue(now time.Time, add int64) bool {
	if s.f == nil || s.fileRecs == 0 || now.Before(s.rotateAfter) {
		return false
	}
	if s.cfg.RotateSize > 0 && s.size+add > s.cfg.RotateSize {
		return true
	}
	return s.cfg.RotateInterval > 0 && now.Sub(s.opened) >= s.cfg.RotateInterval
}

// rotate ends the active file with a rotation checkpoint, renames it to
// <path>.<UTC time>[-N] and opens a new one; the chain continues in it,
// after a continued checkpoint (with a key) once the directory is fsynced
// (usable), which makes both the rename and the new file durable.
func (s *FileSink) rotate(now time.Time) error {
	if s.signer != nil {
		if err := s.checkpoint(now, ReasonRotation); err != nil {
			return fmt.Errorf("rotation checkpoint: %w", err)
		}
	} else if s.dirty {
		if err := s.sync(); err != nil {
			return err
		}
	}
	target, err := rotatedName(s.cfg.Path, now)
	if err != nil {
		return err
	}
	if err := os.Rename(s.cfg.Path, target); err != nil {
		return fmt.Errorf("audit: rotate: %w", err)
	}
	old := s.f
	s.f = nil
	if err := old.Close(); err != nil {
		s.log.Warn("audit: closing the rotated file failed", "file", target, "error", err)
	}
	s.dirPending, s.needCont = true, true
	s.rotations.Add(1)
	s.log.Info("audit: file rotated", "file", target, "last_seq", s.head.seq)
	return s.openActive(now)
}

// openActive creates the active file after a rotation.
func (s *FileSink) openActive(now time.Time) error {
	f, err := s.open(s.cfg.Path)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", s.cfg.Path, err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() != 0 {
		err = errors.New("a file appeared in its place during rotation; move it aside")
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: open %s: %w", s.cfg.Path, err)
	}
	s.f, s.size, s.broken, s.dirty, s.dirPending = f, 0, false, false, true
	s.opened, s.fileRecs = now, 0
	return nil
}

// shutdown ends the file with a shutdown checkpoint and closes it.
func (s *FileSink) shutdown() error {
	now := s.now()
	var errs []error
	if s.fatal != nil {
		errs = append(errs, s.fatal)
	} else if s.signer != nil {
		if err := s.checkpoint(now, ReasonShutdown); err != nil {
			errs = append(errs, fmt.Errorf("audit: shutdown checkpoint: %w", err))
		}
	}
	if s.f != nil {
		if s.dirty {
			fatal := s.fatal // still try to sync; report a failure once
			if err := s.sync(); err != nil && err != fatal {
				errs = append(errs, err)
			}
		}
		if err := s.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("audit: close %s: %w", s.cfg.Path, err))
		}
		s.f = nil
	}
	return errors.Join(errs...)
}

// recover opens the active file and finds the chain's head: its last
// complete line, else the last line of the rotated file with the highest
// seq, else genesis. A partial last line (a crash mid-write, never
// acknowledged) is cut off.
func (s *FileSink) recover() error {
	path := s.cfg.Path
	f, err := s.open(path)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit: stat %s: %w", path, err)
	}
	size := fi.Size()
	keep, last, err := lastLine(f, size)
	if err != nil {
		return fmt.Errorf("audit: %s: %w", path, err)
	}
	if keep < size {
		s.log.Warn("audit: removed an incomplete last line (a crash while writing; it was never acknowledged)",
			"file", path, "bytes", size-keep)
		if err := f.Truncate(keep); err != nil {
			return fmt.Errorf("audit: cut the incomplete last line of %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("audit: fsync %s: %w", path, err)
		}
	}
	now := s.now()
	s.opened = now
	if last != nil {
		h, err := parseHead(last)
		if err != nil {
			return fmt.Errorf("audit: cannot continue the chain of %s (its last line %w); move the file aside", path, err)
		}
		s.head = h
		s.fileRecs = 1
		if t, ok := firstTime(f); ok {
			s.opened = t
		}
	} else {
		h, from, err := rotatedHead(path)
		if err != nil {
			return err
		}
		s.head = h
		if from != "" {
			s.log.Info("audit: chain continues from the rotated file", "file", from, "seq", h.seq)
		}
	}
	s.f, s.size, s.dirPending = f, keep, true
	ok = true
	return nil
}

// lastLine finds, in a file of the given size, the offset just after its
// last "\n" (keep) and its last complete line (without "\n"; nil if none).
func lastLine(r io.ReaderAt, size int64) (keep int64, last []byte, err error) {
	const chunk = 64 << 10
	var tail []byte // r[off:size]
	off := size
	nl := -1 // index in tail of the last "\n"
	for off > 0 {
		if size-off > maxTailScan {
			return 0, nil, fmt.Errorf("no complete line in its last %d bytes", maxTailScan)
		}
		n := min(int64(chunk), off)
		b := make([]byte, n, n+int64(len(tail)))
		if _, err := r.ReadAt(b, off-n); err != nil && !errors.Is(err, io.EOF) {
			return 0, nil, fmt.Errorf("read: %w", err)
		}
		off -= n
		tail = append(b, tail...)
		if nl < 0 {
			nl = bytes.LastIndexByte(tail, '\n')
			if nl < 0 {
				continue
			}
		} else {
			nl += int(n)
		}
		if p := bytes.LastIndexByte(tail[:nl], '\n'); p >= 0 || off == 0 {
			return off + int64(nl) + 1, tail[p+1 : nl], nil
		}
	}
	if nl < 0 {
		return 0, nil, nil
	}
	return int64(nl) + 1, tail[:nl], nil
}

// parseHead returns the chain's head after line.
func parseHead(line []byte) (chain, error) {
	var h struct {
		Seq *uint64 `json:"seq"`
	}
	if err := json.Unmarshal(line, &h); err != nil {
		return chain{}, fmt.Errorf("is not an audit record: %w", err)
	}
	if h.Seq == nil || *h.Seq == 0 {
		return chain{}, errors.New("is not a chained audit record (no seq)")
	}
	var c chain
	c.link(line, *h.Seq)
	return c, nil
}

// firstTime returns the time of the file's first record.
func firstTime(r io.ReaderAt) (time.Time, bool) {
	b := make([]byte, 4096)
	n, _ := r.ReadAt(b, 0)
	b = b[:n]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	var h struct {
		Time time.Time `json:"time"`
	}
	if json.Unmarshal(b, &h) != nil || h.Time.IsZero() {
		return time.Time{}, false
	}
	return h.Time, true
}

// rotatedHead returns the chain's head at the end of the rotated file of
// path whose last record has the highest seq, or genesis. The seq, not
// the time in the names, decides: a clock set back gives a later file an
// earlier name.
func rotatedHead(path string) (chain, string, error) {
	names, err := rotatedFiles(path)
	if err != nil {
		return chain{}, "", err
	}
	best, from := newChain(), ""
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			return chain{}, "", fmt.Errorf("audit: %w", err)
		}
		fi, err := f.Stat()
		var last []byte
		if err == nil {
			_, last, err = lastLine(f, fi.Size())
		}
		f.Close()
		if err != nil {
			return chain{}, "", fmt.Errorf("audit: %s: %w", name, err)
		}
		if last == nil {
			continue
		}
		h, err := parseHead(last)
		if err != nil {
			return chain{}, "", fmt.Errorf("audit: cannot continue the chain of %s (its last line %w)", name, err)
		}
		if h.seq > best.seq {
			best, from = h, name
		}
	}
	return best, from, nil
}

// rotatedFiles lists path's rotated files, oldest first.
func rotatedFiles(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	type rot struct {
		name string
		t    string
		n    int
	}
	var rs []rot
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		ts, num, hasNum := strings.Cut(suffix, "-")
		if _, err := time.Parse(rotatedTimeFormat, ts); err != nil || len(ts) != len(rotatedTimeFormat) {
			continue
		}
		n := 1
		if hasNum {
			if n, err = strconv.Atoi(num); err != nil || n < 2 {
				continue
			}
		}
		rs = append(rs, rot{filepath.Join(dir, e.Name()), ts, n})
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].t != rs[j].t {
			return rs[i].t < rs[j].t
		}
		return rs[i].n < rs[j].n
	})
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.name
	}
	return out, nil
}

// rotatedName returns a free name <path>.<UTC time>, or with -2, -3, ….
func rotatedName(path string, now time.Time) (string, error) {
	base := path + "." + now.UTC().Format(rotatedTimeFormat)
	for i := 1; i < 10000; i++ {
		name := base
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			return name, nil
		} else if err != nil {
			return "", fmt.Errorf("audit: rotate: %w", err)
		}
	}
	return "", fmt.Errorf("audit: rotate: no free name for %s", base)
}

func syncDirOS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
