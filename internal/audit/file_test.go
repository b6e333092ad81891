package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestFileConfigValidation(t *testing.T) {
	_, err := OpenFileSink(FileConfig{Fsync: "sometimes", QueueSize: -1, RotateSize: -1, CheckpointInterval: -time.Second})
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"path is required", `fsync "sometimes"`, "queue size must not be negative", "rotate size", "checkpoint interval"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q (every problem is reported at once)", err, want)
		}
	}
	dir := t.TempDir()
	if _, err := OpenFileSink(FileConfig{Path: filepath.Join(dir, "missing", "a.jsonl")}); err == nil {
		t.Error("a path in a missing directory was accepted")
	}
	if _, err := OpenFileSink(FileConfig{Path: filepath.Join(dir, "a.jsonl"), SigningKeyFile: filepath.Join(dir, "absent.pem")}); err == nil {
		t.Error("a missing signing key was accepted")
	}
}

func TestFileSinkBasics(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	s, err := OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		mustWrite(t, s, event(i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Write(context.Background(), event(9)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v, want ErrClosed", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	lines := readLines(t, path)
	if len(lines) != 7 {
		t.Fatalf("%d lines, want start checkpoint + 5 + shutdown checkpoint", len(lines))
	}
	first, last := parseLine(t, lines[0]), parseLine(t, lines[6])
	if first.Checkpoint == nil || first.Checkpoint.Reason != ReasonStart || first.Seq != 1 || first.Prev != zeroPrev {
		t.Fatalf("first line %s", lines[0])
	}
	if last.Checkpoint == nil || last.Checkpoint.Reason != ReasonShutdown || last.Seq != 7 {
		t.Fatalf("last line %s", lines[6])
	}
	st := s.Stats()
	if st.Records != 5 || st.Checkpoints != 2 || st.Failures != 1 || st.Rotations != 0 {
		t.Fatalf("stats %+v", st)
	}
	r := mustVerify(t, []string{path}, k.pub)
	if r.Records != 7 || r.Checkpoints != 2 || r.UnsignedTail != 0 || r.FirstSeq != 1 || r.LastSeq != 7 || r.LastCheckpointSeq != 7 {
		t.Fatalf("report %+v", r)
	}
}

// TestFileSinkWithoutKeyIsChainOnly: no key, no checkpoints; the chain
// still verifies, and the report says nothing is signed.
func TestFileSinkWithoutKeyIsChainOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := OpenFileSink(FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		mustWrite(t, s, event(i))
	}
	s.Close()
	r := mustVerify(t, []string{path})
	if r.Records != 3 || r.Checkpoints != 0 || r.UnsignedTail != 3 {
		t.Fatalf("report %+v", r)
	}
	var b strings.Builder
	r.Write(&b)
	if !strings.Contains(b.String(), "no record is covered by a verified signature") {
		t.Fatalf("summary %q", b.String())
	}
}

var rotatedPattern = regexp.MustCompile(`^audit\.jsonl\.\d{8}T\d{6}Z(-\d+)?$`)

func TestRotationBySizeCarriesTheChain(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	clk := newFakeClock() // frozen: every rotation has the same time, so -2, -3… are used
	s, err := OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path, RotateSize: 3000, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		mustWrite(t, s, event(i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rotated := glob(t, path+".*")
	if len(rotated) < 3 || s.Stats().Rotations != uint64(len(rotated)) {
		t.Fatalf("%d rotated files, stats %+v", len(rotated), s.Stats())
	}
	base := path + "." + clk.Now().UTC().Format("20060102T150405Z")
	want := map[string]bool{base: true}
	for i := 2; i <= len(rotated); i++ {
		want[base+"-"+strconv.Itoa(i)] = true
	}
	for _, p := range rotated {
		if !rotatedPattern.MatchString(filepath.Base(p)) || !want[p] {
			t.Errorf("rotated file %s not named as specified", filepath.Base(p))
		}
		fi, _ := os.Stat(p)
		if fi.Size() > 3000+400 { // the rotation checkpoint may go over
			t.Errorf("%s has %d bytes", p, fi.Size())
		}
		lines := readLines(t, p)
		if last := parseLine(t, lines[len(lines)-1]); last.Checkpoint == nil || last.Checkpoint.Reason != ReasonRotation {
			t.Errorf("%s does not end with a rotation checkpoint", p)
		}
	}
	// Verify in any order: files are ordered by their first seq.
	all := append([]string{path}, rotated...)
	r := mustVerify(t, all, k.pub)
	if r.Files != len(all) || r.FirstSeq != 1 || r.LastSeq != uint64(r.Records) || r.UnsignedTail != 0 {
		t.Fatalf("report %+v", r)
	}
	if r.Records != 40+int(s.Stats().Checkpoints) {
		t.Fatalf("%d records, want 40 + %d checkpoints", r.Records, s.Stats().Checkpoints)
	}
}

func TestRotationByTime(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	clk := newFakeClock()
	s, err := OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path, RotateInterval: time.Hour, CheckpointInterval: 24 * time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, event(1))
	clk.Advance(59 * time.Minute)
	mustWrite(t, s, event(2))
	if got := glob(t, path+".*"); len(got) != 0 {
		t.Fatalf("rotated too early: %v", got)
	}
	clk.Advance(2 * time.Minute)
	rotAt := clk.Now()
	mustWrite(t, s, event(3))
	want := path + "." + rotAt.UTC().Format("20060102T150405Z")
	if got := glob(t, path+".*"); len(got) != 1 || got[0] != want {
		t.Fatalf("rotated files %v, want [%s]", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	old, cur := readLines(t, want), readLines(t, path)
	if len(old) != 4 || len(cur) != 3 { // start, 1, 2, rotation | continued, 3, shutdown
		t.Fatalf("old %d lines, new %d lines", len(old), len(cur))
	}
	if e := parseLine(t, cur[0]); e.Seq != 5 || e.Checkpoint == nil || e.Checkpoint.Reason != ReasonContinued {
		t.Fatalf("first record of the new file %s, want a continued checkpoint", cur[0])
	}
	if e := parseLine(t, cur[1]); e.Seq != 6 || e.RequestID != "req-0003" {
		t.Fatalf("second record of the new file %s", cur[1])
	}
	mustVerify(t, []string{want, path}, k.pub)
}

func TestRestartContinuesTheChain(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	for run := range 3 {
		s, err := OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		for i := range 4 {
			mustWrite(t, s, event(run*10+i))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	r := mustVerify(t, []string{path}, k.pub)
	if r.Records != 3*6 || r.LastSeq != 18 || r.Checkpoints != 6 {
		t.Fatalf("report %+v", r)
	}
}

func TestCrashRepairTruncatesThePartialLine(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	s, err := OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		mustWrite(t, s, event(i))
	}
	s.Close()
	good, _ := os.ReadFile(path)
	partial := `{"seq":6,"prev":"0123456789abcdef","time":"2030-01-0`
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(partial)
	f.Close()
	// Before the repair, Verify calls it an incomplete tail, not tampering.
	r, err := Verify([]string{path}, []ed25519.PublicKey{k.pub})
	if err != nil || !r.OK() || !r.IncompleteTail {
		t.Fatalf("report before repair %+v, %v", r, err)
	}

	var logs logBuffer
	s, err = OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "incomplete last line") || !strings.Contains(logs.String(), "bytes="+strconv.Itoa(len(partial))) {
		t.Fatalf("repair not logged with its byte count:\n%s", logs.String())
	}
	after, _ := os.ReadFile(path)
	if !bytes.HasPrefix(after, good) || bytes.Contains(after, []byte(partial)) {
		t.Fatal("partial line not removed")
	}
	mustWrite(t, s, event(7))
	s.Close()
	r = mustVerify(t, []string{path}, k.pub)
	if r.IncompleteTail || r.LastSeq != 8 {
		t.Fatalf("report %+v", r)
	}

	// A file holding only a partial line is emptied and the chain restarts
	// from the rotated files (none: genesis).
	p2 := filepath.Join(t.TempDir(), "audit.jsonl")
	writeFileMode(t, p2, []byte(partial), 0o600)
	s, err = OpenFileSink(FileConfig{Path: p2})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, event(1))
	s.Close()
	if e := parseLine(t, readLines(t, p2)[0]); e.Seq != 1 || e.Prev != zeroPrev {
		t.Fatalf("after an all-partial file: %+v", e)
	}
}

// TestOpenContinuesFromTheHighestSeq: with the active file missing (a
// crash right after a rotation), the chain continues from the rotated file
// whose last record has the highest seq, not from the newest name (a clock
// set back gives a later file an earlier name).
func TestOpenContinuesFromTheHighestSeq(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	clk := newFakeClock() // 2030: every rotated file is named 2030…
	s, err := OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path, RotateSize: 1500, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		mustWrite(t, s, event(i))
	}
	s.Close()
	rotated := glob(t, path+".*")
	if len(rotated) < 2 {
		t.Fatalf("%d rotated files", len(rotated))
	}
	// The active file, holding the highest seqs, rotated under a clock set
	// back to 2029; an unrelated file lies beside them.
	latest := path + ".20290101T000000Z"
	if err := os.Rename(path, latest); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, latest)
	wantNext := parseLine(t, lines[len(lines)-1]).Seq + 1
	writeFileMode(t, path+".bak", []byte(`{"seq":90000}`+"\n"), 0o600)
	var logs logBuffer
	s, err = OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, event(99))
	s.Close()
	if e := parseLine(t, readLines(t, path)[0]); e.Seq != wantNext {
		t.Fatalf("the chain continued at seq %d, want %d (after %s)", e.Seq, wantNext, latest)
	}
	if !strings.Contains(logs.String(), "file="+latest) {
		t.Fatalf("the file continued from is not logged:\n%s", logs.String())
	}
	mustVerify(t, append(rotated, latest, path), k.pub)
}

func TestOpenRefusesAnUnchainedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := OpenFile(path) // the plain Writer: no seq
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, &Event{Decision: Allow})
	w.Close()
	if _, err := OpenFileSink(FileConfig{Path: path}); err == nil || !strings.Contains(err.Error(), "move the file aside") {
		t.Fatalf("OpenFileSink on an unchained file = %v", err)
	}
}

// TestFsyncAlwaysWaitsForTheFsync: Write does not return before the batch
// holding its record is fsynced.
func TestFsyncAlwaysWaitsForTheFsync(t *testing.T) {
	fl := &faults{entered: make(chan struct{}, 1)}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := openFileSink(FileConfig{Path: path}, fl.open)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gate := make(chan struct{})
	fl.set(func(fl *faults) { fl.syncGate = gate })
	done := make(chan error, 1)
	go func() { done <- s.Write(context.Background(), event(1)) }()
	<-fl.entered // the writer is in fsync
	select {
	case err := <-done:
		t.Fatalf("Write returned (%v) before the fsync finished", err)
	case <-time.After(50 * time.Millisecond):
	}
	fl.set(func(fl *faults) { fl.syncGate = nil })
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w, sy := fl.counts(); sy < 1 || w < 1 {
		t.Fatalf("writes %d syncs %d", w, sy)
	}
}

// TestGroupCommit: records queued while the writer is busy go out in one
// write(2) and one fsync.
func TestGroupCommit(t *testing.T) {
	fl := &faults{entered: make(chan struct{}, 1)}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := openFileSink(FileConfig{Path: path}, fl.open)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gate := make(chan struct{})
	fl.set(func(fl *faults) { fl.writeGate = gate })
	var wg sync.WaitGroup
	wg.Go(func() { mustWrite(t, s, event(0)) })
	<-fl.entered // the writer holds record 0
	for i := 1; i <= 20; i++ {
		wg.Go(func() { mustWrite(t, s, event(i)) })
	}
	for s.Stats().QueueDepth != 20 {
		time.Sleep(time.Millisecond)
	}
	w0, s0 := fl.counts()
	fl.set(func(fl *faults) { fl.writeGate = nil })
	close(gate)
	wg.Wait()
	w1, s1 := fl.counts()
	if w1-w0 != 2 || s1-s0 != 2 { // record 0, then the 20 queued together
		t.Fatalf("%d writes and %d fsyncs for 21 records, want 2 and 2", w1-w0, s1-s0)
	}
}

func TestFsyncInterval(t *testing.T) {
	fl := &faults{}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := openFileSink(FileConfig{Path: path, Fsync: FsyncPeriodic, FsyncInterval: 20 * time.Millisecond}, fl.open)
	if err != nil {
		t.Fatal(err)
	}
	_, before := fl.counts()
	mustWrite(t, s, event(1))
	if _, sy := fl.counts(); sy != before {
		t.Fatal("FsyncPeriodic fsynced inside Write")
	}
	if b, _ := os.ReadFile(path); !bytes.Contains(b, []byte("req-0001")) {
		t.Fatal("Write returned before write(2)")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, sy := fl.counts(); sy > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no fsync within the interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Idle: no more fsyncs while nothing is written.
	_, n := fl.counts()
	time.Sleep(80 * time.Millisecond)
	if _, m := fl.counts(); m != n {
		t.Fatalf("%d fsyncs while idle", m-n)
	}
	s.Close()
	mustVerify(t, []string{path})
}

// TestQueueTimeout: with the writer stalled and the queue full, Write
// fails after QueueTimeout, and the failure is counted; nothing is lost
// once the disk comes back.
func TestQueueTimeout(t *testing.T) {
	fl := &faults{entered: make(chan struct{}, 1)}
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	s, err := openFileSink(FileConfig{Path: path, SigningKeyFile: k.path, QueueSize: 1, QueueTimeout: 50 * time.Millisecond}, fl.open)
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	fl.set(func(fl *faults) { fl.writeGate = gate })
	var wg sync.WaitGroup
	wg.Go(func() { mustWrite(t, s, event(1)) }) // taken by the writer, stalls
	<-fl.entered
	wg.Go(func() { mustWrite(t, s, event(2)) }) // fills the queue
	for s.Stats().QueueDepth != 1 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	err = s.Write(context.Background(), event(3))
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Write = %v, want ErrQueueFull", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("failed after %v, before the queue timeout", d)
	}
	if f := s.Stats().Failures; f != 1 {
		t.Fatalf("Failures = %d", f)
	}
	fl.set(func(fl *faults) { fl.writeGate = nil })
	close(gate)
	wg.Wait()
	s.Close()
	lines := readLines(t, path)
	var ids []string
	for _, l := range lines {
		ids = append(ids, parseLine(t, l).RequestID)
	}
	got := strings.Join(ids, ",")
	if got != ",req-0001,req-0002," { // start and shutdown checkpoints around
		t.Fatalf("records %q", got)
	}
	mustVerify(t, []string{path}, k.pub)
}

func TestContextCancellation(t *testing.T) {
	fl := &faults{entered: make(chan struct{}, 1)}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := openFileSink(FileConfig{Path: path}, fl.open)
	if err != nil {
		t.Fatal(err)
	}
	// Already cancelled: refused, never written.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, event(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write(cancelled) = %v", err)
	}
	gate := make(chan struct{})
	fl.set(func(fl *faults) { fl.writeGate = gate })
	// Cancelled while the writer has it: an error, though it may be written.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel2()
	errs := make(chan error, 2)
	go func() { errs <- s.Write(ctx2, event(2)) }()
	<-fl.entered
	// Cancelled while queued: an error, and the writer skips it.
	ctx3, cancel3 := context.WithCancel(context.Background())
	go func() { errs <- s.Write(ctx3, event(3)) }()
	for s.Stats().QueueDepth != 1 {
		time.Sleep(time.Millisecond)
	}
	cancel3()
	for range 2 {
		if err := <-errs; err == nil || !strings.Contains(err.Error(), "context") {
			t.Fatalf("Write = %v, want a context error", err)
		}
	}
	if f := s.Stats().Failures; f != 3 {
		t.Fatalf("Failures = %d, want 3", f)
	}
	fl.set(func(fl *faults) { fl.writeGate = nil })
	close(gate)
	mustWrite(t, s, event(4))
	s.Close()
	b, _ := os.ReadFile(path)
	if bytes.Contains(b, []byte("req-0001")) || bytes.Contains(b, []byte("req-0003")) {
		t.Fatalf("a record cancelled before it was taken was written:\n%s", b)
	}
	mustVerify(t, []string{path})
}

// TestWriteFailureRecovers: a failed write(2) or fsync fails the batch,
// the file is cut back to the last good record, the chain does not
// advance, and the sink works again once the fault clears.
func TestWriteFailureRecovers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(fl *faults)
		clear func(fl *faults)
		// stillFailing is cleared after one more failing Write.
		stillFailing func(fl *faults)
	}{
		{
			name:  "partial write (disk full)",
			fault: func(fl *faults) { fl.writeErr = errDiskFull },
			clear: func(fl *faults) { fl.writeErr = nil },
		},
		{
			name:  "fsync error",
			fault: func(fl *faults) { fl.syncErr = errDiskFull },
			clear: func(fl *faults) { fl.syncErr = nil },
		},
		{
			name:         "partial write that cannot be cut back at once",
			fault:        func(fl *faults) { fl.writeErr, fl.truncErr = errDiskFull, errDiskFull },
			clear:        func(fl *faults) { fl.writeErr = nil },
			stillFailing: func(fl *faults) { fl.truncErr = nil },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fl := &faults{}
			dir := t.TempDir()
			k := newTestKey(t, dir, "key.pem")
			path := filepath.Join(dir, "audit.jsonl")
			var logs logBuffer
			s, err := openFileSink(FileConfig{Path: path, SigningKeyFile: k.path, Logger: logs.logger()}, fl.open)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, s, event(1))
			good, _ := os.ReadFile(path)
			fl.set(tc.fault)
			if err := s.Write(context.Background(), event(2)); err == nil || !errors.Is(err, errDiskFull) {
				t.Fatalf("Write = %v, want the disk error", err)
			}
			fl.set(tc.clear)
			failures := uint64(1)
			if tc.stillFailing != nil {
				if err := s.Write(context.Background(), event(3)); err == nil || !strings.Contains(err.Error(), "cannot be removed") {
					t.Fatalf("Write with a partial write still in the file = %v", err)
				}
				failures++
				fl.set(tc.stillFailing)
			} else if now, _ := os.ReadFile(path); !bytes.Equal(now, good) {
				t.Fatalf("the failed batch was left in the file:\n%s", now[len(good):])
			}
			mustWrite(t, s, event(4))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.Failures != failures || st.Records != 2 {
				t.Fatalf("stats %+v", st)
			}
			b, _ := os.ReadFile(path)
			if bytes.Contains(b, []byte("req-0002")) || bytes.Contains(b, []byte("req-0003")) {
				t.Fatal("a failed record is in the file")
			}
			e := event(4)
			for _, l := range readLines(t, path) {
				if got := parseLine(t, l); got.RequestID == e.RequestID && got.Seq != 3 {
					t.Fatalf("the chain advanced past unwritten records: req-0004 has seq %d, want 3", got.Seq)
				}
			}
			mustVerify(t, []string{path}, k.pub)
			if strings.Contains(logs.String(), "BEGIN") {
				t.Fatal("key material in logs")
			}
		})
	}
}

// TestConcurrentWriters: 32 goroutines × 200 records; every record gets a
// unique seq, the seqs are consecutive (with the checkpoints), and the
// file verifies.
func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	s, err := OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path, CheckpointInterval: 10 * time.Millisecond, RotateSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 32, 200
	seqs := make([][]uint64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e := event(w*each + i)
				if err := s.Write(context.Background(), e); err != nil {
					t.Error(err)
					return
				}
				seqs[w] = append(seqs[w], e.Seq)
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for _, ss := range seqs {
		for _, q := range ss {
			if seen[q] {
				t.Fatalf("seq %d assigned twice", q)
			}
			seen[q] = true
		}
	}
	files := append(glob(t, path+".*"), path)
	r := mustVerify(t, files, k.pub)
	st := s.Stats()
	if len(seen) != writers*each || st.Records != writers*each || r.Records != writers*each+int(st.Checkpoints) ||
		r.LastSeq != uint64(r.Records) || st.Failures != 0 {
		t.Fatalf("%d seqs, stats %+v, report %+v", len(seen), st, r)
	}
}

// TestIdleCheckpoint: records followed by silence still get a checkpoint
// after CheckpointInterval, and only then.
func TestIdleCheckpoint(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	clk := newFakeClock()
	s, err := OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path, CheckpointInterval: 40 * time.Millisecond, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustWrite(t, s, event(1))
	time.Sleep(60 * time.Millisecond) // ticks, but the fake clock has not moved
	if c := s.Stats().Checkpoints; c != 1 {
		t.Fatalf("%d checkpoints before the interval elapsed", c)
	}
	clk.Advance(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Checkpoints != 2 {
		if time.Now().After(deadline) {
			t.Fatal("no idle checkpoint")
		}
		time.Sleep(5 * time.Millisecond)
	}
	clk.Advance(time.Second)
	time.Sleep(60 * time.Millisecond)
	if c := s.Stats().Checkpoints; c != 2 {
		t.Fatalf("%d checkpoints: one was written with no records since the last", c)
	}
}

func TestLastLine(t *testing.T) {
	big := strings.Repeat("x", 70<<10)
	for _, tc := range []struct {
		in   string
		keep int64
		last string
	}{
		{"", 0, ""},
		{"partial", 0, ""},
		{"a\n", 2, "a"},
		{"a\nb\n", 4, "b"},
		{"a\nbc", 2, "a"},
		{"\n", 1, ""},
		{"a\n" + big + "\n" + "tail", int64(2 + len(big) + 1), big},
		{big + "\n", int64(len(big) + 1), big},
		{big + "\n" + big, int64(len(big) + 1), big},
	} {
		keep, last, err := lastLine(strings.NewReader(tc.in), int64(len(tc.in)))
		if err != nil || keep != tc.keep || string(last) != tc.last {
			t.Errorf("lastLine(%.20q…) = %d, %.20q, %v; want %d, %.20q", tc.in, keep, last, err, tc.keep, tc.last)
		}
	}
}

// TestCheckpointOnRequest: Checkpoint signs everything written so far, so
// the whole trail verifies with no unsigned tail; without a key it says so.
func TestCheckpointOnRequest(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	s, err := OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.Write(context.Background(), &Event{Kind: KindDecision, Decision: Allow, RequestID: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify([]string{path}, []ed25519.PublicKey{k.pub})
	if err != nil || !rep.OK() || rep.UnsignedTail != 0 || rep.LastCheckpointSeq != rep.LastSeq {
		t.Fatalf("after Checkpoint: %v %+v", err, rep)
	}
	s.Close()
	if err := s.Checkpoint(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Checkpoint after Close: %v", err)
	}
	s2, err := OpenFileSink(FileConfig{Path: filepath.Join(dir, "nokey.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Checkpoint(context.Background()); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("Checkpoint without a key: %v", err)
	}
}

// TestFileSinkCloseIsBounded: with fsync stalled, Close returns an error
// within CloseTimeout, and a concurrent second Close shares that result
// rather than returning nil early.
func TestFileSinkCloseIsBounded(t *testing.T) {
	fl := &faults{entered: make(chan struct{}, 1)}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := openFileSink(FileConfig{Path: path, CloseTimeout: 100 * time.Millisecond}, fl.open)
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	defer close(gate)
	fl.set(func(fl *faults) { fl.syncGate = gate })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	go s.Write(ctx, event(1))
	<-fl.entered // the writer is stuck in fsync
	start := time.Now()
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- s.Close() }()
	}
	for range 2 {
		err := within(t, 5*time.Second, "Close with fsync stalled", func() error { return <-errs })
		if err == nil || !strings.Contains(err.Error(), "did not finish within 100ms") {
			t.Fatalf("Close = %v, want a timeout error", err)
		}
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("Close gave up after %v, before CloseTimeout", d)
	}
	if err := s.Close(); err == nil {
		t.Fatal("a later Close returned nil after the first failed")
	}
	if err := s.Write(context.Background(), event(2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
	if _, err := OpenFileSink(FileConfig{Path: path, CloseTimeout: -1}); err == nil || !strings.Contains(err.Error(), "close timeout") {
		t.Fatalf("a negative close timeout: %v", err)
	}
}

// TestDirFsyncFailureFailsTheBatch: after a rotation, nothing is
// acknowledged in the new file until its directory is fsynced; the batch
// fails and the next one retries. EINVAL (no directory fsync on this file
// system) is tolerated and logged once.
func TestDirFsyncFailureFailsTheBatch(t *testing.T) {
	fl := &faults{}
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	var logs logBuffer
	s, err := openFileSinkWith(FileConfig{Path: path, SigningKeyFile: k.path, RotateSize: 1, Logger: logs.logger()}, fl.open, fl.syncDir)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, event(1)) // the file now holds a record: the next batch rotates
	eio := errors.New("input/output error (injected)")
	fl.set(func(fl *faults) { fl.dirErr = eio })
	for i := 2; i <= 3; i++ {
		err := s.Write(context.Background(), event(i))
		if !errors.Is(err, eio) || !strings.Contains(err.Error(), "fsync of the directory") {
			t.Fatalf("Write %d after a failed directory fsync = %v", i, err)
		}
	}
	if st := s.Stats(); st.Rotations != 1 || st.Records != 1 {
		t.Fatalf("stats %+v", st)
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("written into a file whose directory entry is not durable:\n%s", b)
	}
	fl.set(func(fl *faults) { fl.dirErr = nil })
	mustWrite(t, s, event(4))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	all := append(glob(t, path+".*"), path)
	mustVerify(t, all, k.pub)
	for _, p := range all {
		if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("req-0002")) || bytes.Contains(b, []byte("req-0003")) {
			t.Fatalf("a failed record is in %s", p)
		}
	}

	// A file system without directory fsync.
	fl = &faults{dirErr: syscall.EINVAL}
	logs = logBuffer{}
	p2 := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err = openFileSinkWith(FileConfig{Path: p2, RotateSize: 1, Logger: logs.logger()}, fl.open, fl.syncDir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		mustWrite(t, s, event(i))
	}
	s.Close()
	if n := countLines(logs.String(), "does not fsync directories"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestPeriodicFsyncFailureFailsClosed: with Fsync "interval", a failed
// periodic fsync may have lost acknowledged records, so every later Write
// fails (even once fsync works again), logged once, until a restart.
func TestPeriodicFsyncFailureFailsClosed(t *testing.T) {
	fl := &faults{}
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	var logs logBuffer
	s, err := openFileSink(FileConfig{Path: path, SigningKeyFile: k.path, Fsync: FsyncPeriodic, FsyncInterval: 5 * time.Millisecond, Logger: logs.logger()}, fl.open)
	if err != nil {
		t.Fatal(err)
	}
	fl.set(func(fl *faults) { fl.syncErr = errDiskFull })
	mustWrite(t, s, event(1)) // acknowledged after write(2); its fsync will fail
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.Write(context.Background(), event(2))
		if err != nil {
			if !errors.Is(err, ErrBroken) || !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), "restart") {
				t.Fatalf("Write after a failed fsync = %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Writes still succeed after the periodic fsync failed")
		}
		time.Sleep(2 * time.Millisecond)
	}
	fl.set(func(fl *faults) { fl.syncErr = nil })
	time.Sleep(20 * time.Millisecond) // fsync works again: still refused
	for range 3 {
		if err := s.Write(context.Background(), event(3)); !errors.Is(err, ErrBroken) {
			t.Fatalf("Write once fsync works again = %v, want ErrBroken (sticky)", err)
		}
	}
	if err := s.Checkpoint(context.Background()); !errors.Is(err, ErrBroken) {
		t.Fatalf("Checkpoint = %v", err)
	}
	if err := s.Close(); !errors.Is(err, ErrBroken) {
		t.Fatalf("Close = %v, want ErrBroken", err)
	}
	if n := countLines(logs.String(), "every audit write is refused until restart"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logs.String())
	}
	// A restart re-reads the file and goes on.
	s, err = OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path, Fsync: FsyncPeriodic})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, event(4))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, []string{path}, k.pub)
}

// TestCheckpointsAreLogged: every checkpoint (start, interval, request,
// rotation, continued, shutdown) is logged at info
// level with its seq, reason and the hash of its line, an anchor to ship
// elsewhere.
func TestCheckpointsAreLogged(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	clk := newFakeClock()
	var logs logBuffer
	s, err := OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path, CheckpointInterval: time.Minute, RotateSize: 1500, Now: clk.Now, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		clk.Advance(40 * time.Second)
		mustWrite(t, s, event(i))
	}
	if err := s.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkLoggedAnchors(t, logs.String(), append(glob(t, path+".*"), path),
		[]string{ReasonStart, ReasonInterval, ReasonRotation, ReasonContinued, ReasonRequest, ReasonShutdown})
}

// checkLoggedAnchors checks that every checkpoint line in files is logged
// as "audit checkpoint" with its seq, reason and line hash, and that
// every reason in want occurs.
func checkLoggedAnchors(t *testing.T, log string, files []string, want []string) {
	t.Helper()
	seen := map[string]bool{}
	n := 0
	for _, p := range files {
		for _, l := range readLines(t, p) {
			e := parseLine(t, l)
			if e.Kind != KindCheckpoint {
				continue
			}
			n++
			seen[e.Checkpoint.Reason] = true
			sum := sha256.Sum256(l)
			entry := `level=INFO msg="audit checkpoint" seq=` + u(e.Seq) + " reason=" + e.Checkpoint.Reason + " hash=" + hex.EncodeToString(sum[:]) + " key_id=" + e.Checkpoint.KeyID
			if !strings.Contains(log, entry) {
				t.Fatalf("checkpoint seq %d not logged as %q:\n%s", e.Seq, entry, log)
			}
		}
	}
	if got := countLines(log, `msg="audit checkpoint"`); got != n {
		t.Fatalf("%d checkpoints logged, %d in the files", got, n)
	}
	for _, r := range want {
		if !seen[r] {
			t.Fatalf("no %s checkpoint in the trail", r)
		}
	}
}

// TestRecordSizeLimit: a record whose line would exceed MaxRecordBytes is
// refused with ErrRecordTooLarge and nothing is written; one of exactly
// MaxRecordBytes is written and verifies.
func TestRecordSizeLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := OpenFileSink(FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	withArgs := func(n int) *Event {
		e := event(1)
		e.Arguments = json.RawMessage(`"` + strings.Repeat("a", n) + `"`)
		return e
	}
	base, err := encodeBody(withArgs(0))
	if err != nil {
		t.Fatal(err)
	}
	fits := MaxRecordBytes - lineOverhead - len(base)
	if err := s.Write(context.Background(), withArgs(fits+1)); !errors.Is(err, ErrRecordTooLarge) || strings.Contains(err.Error(), "aaaa") {
		t.Fatalf("Write of a record over the limit = %.200v", err)
	}
	mustWrite(t, s, withArgs(fits))
	s.Close()
	lines := readLines(t, path)
	if len(lines) != 1 || len(lines[0]) > MaxRecordBytes || len(lines[0]) < MaxRecordBytes-lineOverhead {
		t.Fatalf("%d lines, the first of %d bytes", len(lines), len(lines[0]))
	}
	mustVerify(t, []string{path})
	if st := s.Stats(); st.Failures != 1 || st.Records != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestIdleRotationEndsWithContinued: a file rotated by age while idle
// is followed by a continued checkpoint, so the trail of an idle sink
// verifies (it does not end with a rotation checkpoint).
func TestIdleRotationEndsWithContinued(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	clk := newFakeClock()
	s, err := OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path, RotateInterval: 40 * time.Millisecond, CheckpointInterval: time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustWrite(t, s, event(1))
	clk.Advance(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Rotations != 1 || s.Stats().Checkpoints != 3 { // start, rotation, continued
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", s.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := mustVerify(t, append(glob(t, path+".*"), path), k.pub)
	if r.EndReason != ReasonContinued || r.UnsignedTail != 0 {
		t.Fatalf("report %+v", r)
	}
}
