package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
)

// Problem kinds reported by [Verify].
const (
	ProblemMalformed    = "malformed"     // a line that is not a chained audit record
	ProblemDeleted      = "deleted"       // records missing from the sequence
	ProblemInserted     = "inserted"      // a record that repeats a seq, or does not link to its predecessor and is followed by the genuine record
	ProblemReordered    = "reordered"     // a missing seq found later in the files
	ProblemModified     = "modified"      // a record whose bytes changed
	ProblemUnknownKey   = "unknown_key"   // a checkpoint signed by a key not given to Verify
	ProblemBadSignature = "bad_signature" // a checkpoint whose signature does not verify
	// ProblemTruncated: the trail starts after seq 1 (or after
	// VerifyOptions.FromSeq), or ends with a rotation checkpoint.
	ProblemTruncated = "truncated"
	// ProblemUnsigned: keys were given but no checkpoint verifies, so the
	// whole trail could have been rewritten without the key.
	ProblemUnsigned = "unsigned"
)

// maxListed is how many problems a Report lists; maxLineBytes bounds a
// line (longer ones are malformed): 64 MiB, far above MaxRecordBytes, so
// that whatever a sink wrote can be read.
const (
	maxListed    = 10
	maxLineBytes = 64 << 20
	hashWindow   = 4096 // recent records whose hash is kept, by seq
	maxProblems  = 10000
)

// Report is the outcome of [Verify].
type Report struct {
	Files, Records, Checkpoints int // Records counts every parsed line; Checkpoints those verified
	FirstSeq, LastSeq           uint64
	LastCheckpointSeq           uint64 // 0: no verified checkpoint
	// UnsignedTail counts the records after the last verified checkpoint:
	// the chain links them, but a cut or a rewrite of that tail cannot be
	// proven.
	UnsignedTail int
	// IncompleteTail: the last file ends with a line without "\n", a crash
	// while writing (never acknowledged); it is ignored, not tampering.
	IncompleteTail bool
	// EndReason is the checkpoint reason of the trail's final record, ""
	// if it is not a checkpoint. Only ReasonShutdown means the sink was
	// closed; anything else means it is running, crashed, or the end of the
	// trail was cut (ReasonRotation: a file is missing, a Problem).
	EndReason    string
	Notes        []string
	Problems     []Problem // the first maxListed, in file order
	MoreProblems int       // problems found beyond those listed
	KeyIDs       []string  // keys that signed the verified checkpoints
}

// Problem is one finding; the first is precise, later ones may be
// consequences of it.
type Problem struct {
	File   string
	Line   int    // 1-based; 0 for a problem of the whole (empty) trail
	Seq    uint64 // the record concerned: for deleted, the first missing seq; 0 for a malformed line
	Kind   string // Problem* constant
	Detail string
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Verify checks JSON-lines audit files written by a chaining sink. The
// files are taken in the order of the seq of their first record (a shell
// glob will do) and checked as one chain:
//
//   - every line parses as a chained record, else "malformed";
//   - seq counts up by one. A gap is "deleted" (Seq is the first missing
//     one) unless the missing records turn up later, which makes it
//     "reordered"; a seq that was already seen is "inserted" (a copy, or a
//     second record with that seq);
//   - prev is the SHA-256 of the record before it in seq order. When a
//     link breaks, the next record decides: if it links to this one, the
//     record before was modified; if not, this record was (its prev, so
//     its hash, changed). A link to the head under the wrong seq is a
//     modified seq. A verified checkpoint's prev is authentic, so a broken
//     link to it always means the record before was modified;
//   - each checkpoint's signature verifies with the key of its key_id
//     ("unknown_key", "bad_signature") and its line is exactly the
//     encoding of its signed fields ("modified").
//
// The trail as a whole must be complete ("truncated"): it starts at seq 1
// (see [VerifyWith] for a trail whose oldest files were expired) and does
// not end with a rotation checkpoint (the file after it is missing). When
// keys are given, at least one checkpoint must verify ("unsigned").
//
// A final line without "\n" in the last file is an incomplete tail, not
// a problem. The error is for files that cannot be read. Verify is
// VerifyWith with zero options.
func Verify(files []string, keys []ed25519.PublicKey) (*Report, error) {
	return VerifyWith(files, keys, VerifyOptions{})
}

// VerifyOptions adjust [VerifyWith].
type VerifyOptions struct {
	// FromSeq is the seq the trail is expected to start at, for a trail
	// whose older files were expired on purpose; its first record is then
	// taken on trust (a note says so). 0 means 1: the trail must start at
	// genesis.
	FromSeq uint64
}

// VerifyWith is [Verify] with options.
func VerifyWith(files []string, keys []ed25519.PublicKey, opts VerifyOptions) (*Report, error) {
	if len(files) == 0 {
		return nil, errors.New("audit: verify: no files given")
	}
	v := &verifier{rep: &Report{}, keys: map[string]ed25519.PublicKey{}, signers: map[string]bool{}, flagged: map[uint64]bool{}, fromSeq: opts.FromSeq}
	for _, k := range keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("audit: verify: a public key has %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		v.keys[KeyID(k)] = k
	}
	ordered, err := orderFiles(files)
	if err != nil {
		return nil, err
	}
	v.rep.Files = len(ordered)
	v.firstFile = ordered[0]
	for i, name := range ordered {
		if err := v.file(i, name, i == len(ordered)-1); err != nil {
			return nil, err
		}
	}
	v.finish()
	return v.rep, nil
}

// orderFiles sorts the (deduplicated) files by the seq of their first
// record; files without one keep their order, last.
func orderFiles(files []string) ([]string, error) {
	type f struct {
		name  string
		seq   uint64
		known bool
	}
	var fs []f
	seen := map[string]bool{}
	for _, name := range files {
		if seen[name] {
			continue
		}
		seen[name] = true
		seq, ok, err := firstSeq(name)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f{name, seq, ok})
	}
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].known != fs[j].known {
			return fs[i].known
		}
		return fs[i].known && fs[i].seq < fs[j].seq
	})
	out := make([]string, len(fs))
	for i, x := range fs {
		out[i] = x.name
	}
	return out, nil
}

func firstSeq(name string) (uint64, bool, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, false, fmt.Errorf("audit: verify: %w", err)
	}
	defer f.Close()
	line, _, err := readLine(bufio.NewReader(f))
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, false, fmt.Errorf("audit: verify: read %s: %w", name, err)
	}
	var h struct {
		Seq uint64 `json:"seq"`
	}
	if json.Unmarshal(line, &h) != nil || h.Seq == 0 {
		return 0, false, nil
	}
	return h.Seq, true, nil
}

// readLine returns the next line without "\n", whether it ended with
// "\n", and io.EOF at the end. A line longer than maxLineBytes is consumed
// and returned truncated, which fails to parse.
func readLine(r *bufio.Reader) ([]byte, bool, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line) < maxLineBytes {
			line = append(line, chunk[:min(len(chunk), maxLineBytes-len(line))]...)
		}
		switch {
		case err == nil:
			return line[:len(line)-min(1, len(line))], true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, false, nil
		default:
			return nil, false, err
		}
	}
}

// pos is where a record is.
type pos struct {
	file string
	fidx int
	line int
}

// entry is a recent record, kept by seq.
type entry struct {
	seq  uint64
	hash [32]byte
	at   pos
}

// gap is a range of seqs found missing, and the problem reporting it.
type gap struct {
	lo, hi  uint64
	missing int // of lo..hi, still not found
	prob    int // index in verifier.probs
}

// pending is a record whose prev did not match; the next record tells
// which was modified.
type pending struct {
	seq  uint64
	hash [32]byte
	at   pos
}

type verifier struct {
	rep     *Report
	keys    map[string]ed25519.PublicKey
	signers map[string]bool

	started      bool
	maxSeq       uint64
	ring         [hashWindow]entry
	gaps         []*gap
	pend         *pending
	malformedRun int // malformed lines since the last record
	probs        []Problem
	probFile     []int // file index of each problem, for ordering
	overflow     int
	flagged      map[uint64]bool
	unchecked    int // checkpoints not checked (no keys)
	fromSeq      uint64
	firstFile    string
	first, end   entry // the first and the final record (seq and position)
}

func (v *verifier) file(fidx int, name string, last bool) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for n := 1; ; n++ {
		line, complete, err := readLine(r)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: verify: read %s: %w", name, err)
		}
		at := pos{name, fidx, n}
		if !complete {
			if last {
				v.rep.IncompleteTail = true
				v.rep.Notes = append(v.rep.Notes, fmt.Sprintf(
					"%s:%d: incomplete last line (%d bytes, no newline): a crash while writing, never acknowledged; ignored", name, n, len(line)))
			} else {
				v.add(at, 0, ProblemMalformed, "the file ends with an incomplete line, but it is not the last file")
			}
			return nil
		}
		v.line(at, line)
	}
}

func (v *verifier) line(at pos, line []byte) {
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil {
		v.malformed(at, "not JSON: "+shortErr(err))
		return
	}
	if ev.Seq == 0 || !isHash(ev.Prev) {
		v.malformed(at, "no seq, or its prev is not a SHA-256")
		return
	}
	v.record(at, &ev, sha256.Sum256(line), line)
}

func (v *verifier) malformed(at pos, detail string) {
	v.add(at, 0, ProblemMalformed, detail)
	v.malformedRun++
}

func (v *verifier) record(at pos, ev *Event, h [32]byte, line []byte) {
	v.rep.Records++
	cpOK := false
	switch {
	case ev.Kind == KindCheckpoint:
		cpOK = v.checkpoint(at, ev, line)
	case ev.Checkpoint != nil:
		v.add(at, ev.Seq, ProblemModified, "a checkpoint field on a "+string(ev.Kind)+" record")
	}
	defer func() {
		if cpOK {
			v.rep.LastCheckpointSeq = ev.Seq
			v.rep.UnsignedTail = 0
		} else {
			v.rep.UnsignedTail++
		}
		v.rep.EndReason = ""
		if ev.Kind == KindCheckpoint && ev.Checkpoint != nil {
			v.rep.EndReason = ev.Checkpoint.Reason
		}
		v.end = entry{seq: ev.Seq, at: at}
		v.malformedRun = 0
	}()

	if !v.started {
		v.started = true
		v.first = entry{seq: ev.Seq, at: at}
		v.rep.FirstSeq, v.maxSeq = ev.Seq, ev.Seq
		if ev.Seq == 1 && ev.Prev != zeroPrev {
			v.add(at, 1, ProblemModified, "the genesis record's prev is not 64 zeros")
		}
		v.start(at, ev.Seq)
		v.store(ev.Seq, h, at)
		return
	}
	if v.resolve(ev, h, at) {
		return
	}
	headHash, headOK := v.hashOf(v.maxSeq)
	linksHead := headOK && ev.Prev == hex.EncodeToString(headHash[:])
	switch {
	case ev.Seq == v.maxSeq+1:
		v.maxSeq = ev.Seq
		v.store(ev.Seq, h, at)
		if headOK && !linksHead {
			v.pend = &pending{seq: ev.Seq, hash: h, at: at}
			if cpOK { // its prev is signed: the record before it changed
				v.resolve(nil, [32]byte{}, at)
			}
		}
	case linksHead: // follows the head, under another seq
		v.maxSeq++
		v.add(at, v.maxSeq, ProblemModified, fmt.Sprintf("its seq was changed to %d: it links to seq %d, so it is seq %d", ev.Seq, v.maxSeq-1, v.maxSeq))
		v.store(v.maxSeq, h, at)
	case ev.Seq > v.maxSeq+1:
		lo, hi := v.maxSeq+1, ev.Seq-1
		if n := hi - lo + 1; uint64(v.malformedRun) < n {
			g := &gap{lo: lo, hi: hi, missing: int(min(n, 1<<30)), prob: len(v.probs)}
			if v.add(at, lo, ProblemDeleted, fmt.Sprintf("%s missing before seq %d", seqRange(lo, hi), ev.Seq)) {
				v.gaps = append(v.gaps, g)
			}
		}
		v.maxSeq = ev.Seq
		v.store(ev.Seq, h, at)
	default: // ev.Seq <= v.maxSeq
		if g := v.gapOf(ev.Seq); g != nil {
			g.missing--
			p := &v.probs[g.prob]
			if p.Kind == ProblemDeleted {
				p.Kind, p.Seq = ProblemReordered, ev.Seq
				p.Detail = fmt.Sprintf("seq %d belongs before seq %d (this line) but is at %s:%d", ev.Seq, g.hi+1, at.file, at.line)
			}
			if v.maxSeq-ev.Seq < hashWindow {
				v.store(ev.Seq, h, at)
			}
			return
		}
		detail := fmt.Sprintf("seq %d was already seen", ev.Seq)
		if e, ok := v.lookup(ev.Seq); ok {
			if e.hash == h {
				detail = fmt.Sprintf("a copy of seq %d (%s:%d)", ev.Seq, e.at.file, e.at.line)
			} else {
				detail = fmt.Sprintf("a second record with seq %d (the first is at %s:%d)", ev.Seq, e.at.file, e.at.line)
			}
		}
		v.add(at, ev.Seq, ProblemInserted, detail)
	}
}

// start checks the seq of the trail's first record.
func (v *verifier) start(at pos, seq uint64) {
	switch from := v.fromSeq; {
	case from == 0 && seq != 1:
		v.addTrail(at, seq, ProblemTruncated, fmt.Sprintf(
			"the trail starts at seq %d: records before it are missing; pass --from-seq %d if older files were expired on purpose", seq, seq))
	case from == 0 || from == 1 && seq == 1:
	case seq > from:
		v.addTrail(at, seq, ProblemTruncated, fmt.Sprintf("the trail starts at seq %d, not at seq %d (--from-seq): %s missing", seq, from, seqRange(from, seq-1)))
	case seq < from:
		v.addTrail(at, seq, ProblemTruncated, fmt.Sprintf("the trail starts at seq %d, before seq %d (--from-seq): the expected start is not the first record", seq, from))
	default:
		v.rep.Notes = append(v.rep.Notes, fmt.Sprintf("chain start taken on trust: the trail starts at seq %d, as --from-seq says (older files expired)", seq))
	}
}

// resolve decides, given the record after a broken link (nil at the end
// or for a verified checkpoint), which record was changed. It reports
// whether next was fully handled.
func (v *verifier) resolve(next *Event, nextHash [32]byte, at pos) bool {
	p := v.pend
	if p == nil {
		return false
	}
	v.pend = nil
	before, ok := v.lookup(p.seq - 1)
	if !ok {
		before = entry{seq: p.seq, at: p.at}
	}
	switch {
	case next == nil && at == p.at: // p is a verified checkpoint
		v.add(before.at, before.seq, ProblemModified,
			fmt.Sprintf("its hash does not match the prev signed by the checkpoint seq %d (%s:%d)", p.seq, p.at.file, p.at.line))
	case next != nil && next.Seq == p.seq && v.linksTo(next, p.seq-1):
		// p did not link, and the record after it is a seq p.seq that does.
		v.add(p.at, p.seq, ProblemInserted,
			fmt.Sprintf("a record with seq %d that does not link to seq %d, before the one that does (%s:%d)", p.seq, p.seq-1, at.file, at.line))
		v.store(p.seq, nextHash, at)
		return true
	case next != nil && next.Seq == p.seq+1 && next.Prev != hex.EncodeToString(p.hash[:]):
		v.add(p.at, p.seq, ProblemModified,
			fmt.Sprintf("its prev does not match seq %d and its hash does not match the prev of seq %d", p.seq-1, p.seq+1))
	case next != nil && next.Seq == p.seq+1:
		v.add(before.at, before.seq, ProblemModified,
			fmt.Sprintf("its hash does not match the prev of seq %d (%s:%d)", p.seq, p.at.file, p.at.line))
	default:
		v.add(before.at, before.seq, ProblemModified,
			fmt.Sprintf("its hash does not match the prev of seq %d (%s:%d), or that prev was changed", p.seq, p.at.file, p.at.line))
	}
	return false
}

func (v *verifier) linksTo(ev *Event, seq uint64) bool {
	h, ok := v.hashOf(seq)
	return ok && ev.Prev == hex.EncodeToString(h[:])
}

// checkpoint verifies a checkpoint record.
func (v *verifier) checkpoint(at pos, ev *Event, line []byte) bool {
	c := ev.Checkpoint
	if c == nil {
		v.add(at, ev.Seq, ProblemModified, "a checkpoint record without its signature")
		return false
	}
	if len(v.keys) == 0 {
		v.unchecked++
		return false
	}
	pub, ok := v.keys[c.KeyID]
	if !ok {
		v.add(at, ev.Seq, ProblemUnknownKey, fmt.Sprintf("signed by key %q, which is not among the given keys (%s)", short(c.KeyID), strings.Join(slices.Sorted(maps.Keys(v.keys)), ", ")))
		return false
	}
	// Strict: a signature whose unused low bits were changed decodes to
	// the same bytes but changes the line, so that a final checkpoint,
	// which no later prev covers, could be altered unnoticed.
	sig, err := base64.RawURLEncoding.Strict().DecodeString(c.Signature)
	if err == nil && base64.RawURLEncoding.EncodeToString(sig) != c.Signature {
		err = errors.New("non-canonical encoding")
	}
	if err != nil || !ed25519.Verify(pub, checkpointMessage(ev.Seq, ev.Prev, ev.Time, c.KeyID, c.Reason), sig) {
		v.add(at, ev.Seq, ProblemBadSignature, fmt.Sprintf("the signature by key %s does not verify", c.KeyID))
		return false
	}
	canon, err := checkpointLine(ev.Seq, ev.Prev, ev.Time.UTC(), c.KeyID, c.Reason, c.Signature)
	if err != nil || !bytes.Equal(canon, line) {
		v.add(at, ev.Seq, ProblemModified, "the checkpoint line holds changes outside its signed fields")
		return false
	}
	v.rep.Checkpoints++
	v.signers[c.KeyID] = true
	return true
}

func (v *verifier) store(seq uint64, h [32]byte, at pos) {
	v.ring[seq%hashWindow] = entry{seq: seq, hash: h, at: at}
}

func (v *verifier) lookup(seq uint64) (entry, bool) {
	e := v.ring[seq%hashWindow]
	return e, e.seq == seq && seq != 0
}

func (v *verifier) hashOf(seq uint64) ([32]byte, bool) {
	e, ok := v.lookup(seq)
	return e.hash, ok
}

func (v *verifier) gapOf(seq uint64) *gap {
	for _, g := range v.gaps {
		if g.lo <= seq && seq <= g.hi && g.missing > 0 {
			return g
		}
	}
	return nil
}

// add records a problem, once per seq (a consequence of a problem already
// found is not repeated). It reports whether the problem was kept.
func (v *verifier) add(at pos, seq uint64, kind, detail string) bool {
	if seq != 0 {
		if v.flagged[seq] {
			return false
		}
		v.flagged[seq] = true
	}
	if len(v.probs) >= maxProblems {
		v.overflow++
		return false
	}
	v.probs = append(v.probs, Problem{File: at.file, Line: at.line, Seq: seq, Kind: kind, Detail: detail})
	v.probFile = append(v.probFile, at.fidx)
	return true
}

// addTrail records a problem of the trail as a whole: it is always kept,
// whatever else was found at that seq.
// There are at most three, so they may go past maxProblems.
func (v *verifier) addTrail(at pos, seq uint64, kind, detail string) {
	v.probs = append(v.probs, Problem{File: at.file, Line: at.line, Seq: seq, Kind: kind, Detail: detail})
	v.probFile = append(v.probFile, at.fidx)
}

func (v *verifier) finish() {
	v.resolve(nil, [32]byte{}, pos{})
	r := v.rep
	r.LastSeq = v.maxSeq
	for _, g := range v.gaps {
		if p := &v.probs[g.prob]; p.Kind == ProblemReordered && g.missing > 0 {
			p.Detail += fmt.Sprintf("; of %s, %d are still missing", seqRange(g.lo, g.hi), g.missing)
		}
	}
	if len(v.keys) == 0 && v.unchecked > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("no public key given: the signatures of %d checkpoints were not checked", v.unchecked))
	}
	if r.EndReason == ReasonRotation {
		v.addTrail(v.end.at, v.end.seq, ProblemTruncated, "the trail ends with a rotation checkpoint: the file after it is missing")
	}
	if len(v.keys) > 0 && r.Checkpoints == 0 {
		at := v.first.at
		if r.Records == 0 {
			at = pos{file: v.firstFile}
		}
		v.addTrail(at, v.first.seq, ProblemUnsigned, "no signed checkpoint: the trail could have been rewritten without the key")
	}
	for k := range v.signers {
		r.KeyIDs = append(r.KeyIDs, k)
	}
	slices.Sort(r.KeyIDs)
	idx := make([]int, len(v.probs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		pa, pb := idx[a], idx[b]
		if v.probFile[pa] != v.probFile[pb] {
			return v.probFile[pa] < v.probFile[pb]
		}
		return v.probs[pa].Line < v.probs[pb].Line
	})
	for i, j := range idx {
		if i == maxListed {
			break
		}
		r.Problems = append(r.Problems, v.probs[j])
	}
	r.MoreProblems = len(idx) - len(r.Problems) + v.overflow
}

// Write prints a human summary of the report.
func (r *Report) Write(w io.Writer) error {
	var b strings.Builder
	if !r.OK() {
		p := r.Problems[0]
		fmt.Fprintf(&b, "TAMPERED: %s\n", p.String())
		for _, p := range r.Problems[1:] {
			fmt.Fprintf(&b, "  also: %s\n", p.String())
		}
		if r.MoreProblems > 0 {
			fmt.Fprintf(&b, "  … and %d more problems\n", r.MoreProblems)
		}
		fmt.Fprintf(&b, "  (%d records in %d %s, seq %d–%d)\n", r.Records, r.Files, plural(r.Files, "file", "files"), r.FirstSeq, r.LastSeq)
	} else {
		fmt.Fprintf(&b, "OK: %d records in %d %s, seq %d–%d, %d %s", r.Records, r.Files, plural(r.Files, "file", "files"), r.FirstSeq, r.LastSeq, r.Checkpoints, plural(r.Checkpoints, "checkpoint", "checkpoints"))
		if len(r.KeyIDs) > 0 {
			fmt.Fprintf(&b, " signed by %s", strings.Join(r.KeyIDs, ", "))
		}
		switch {
		case r.Checkpoints == 0 && r.Records > 0:
			fmt.Fprintf(&b, "; no record is covered by a verified signature: a cut or a rewrite of the whole trail cannot be proven")
		case r.UnsignedTail > 0:
			fmt.Fprintf(&b, "; %d %s after the last checkpoint (seq %d) %s not covered by a signature: a cut or a change after it cannot be proven",
				r.UnsignedTail, plural(r.UnsignedTail, "record", "records"), r.LastCheckpointSeq, plural(r.UnsignedTail, "is", "are"))
		}
		b.WriteString("\n")
	}
	if r.Records > 0 && r.EndReason != ReasonShutdown {
		end := "a record that is not a checkpoint"
		if r.EndReason != "" {
			end = "a " + r.EndReason + " checkpoint"
		}
		fmt.Fprintf(&b, "  WARNING: the trail does not end with a shutdown checkpoint (its last record, seq %d, is %s): the sink is still running, it crashed, or the end of the trail was cut\n", r.LastSeq, end)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// String renders a problem as "file:line seq N: <what> (detail)".
func (p Problem) String() string {
	what := map[string]string{
		ProblemMalformed:    "the line is not a chained audit record",
		ProblemDeleted:      "records were deleted",
		ProblemInserted:     "a record was inserted",
		ProblemReordered:    "records were reordered",
		ProblemModified:     "the record was modified",
		ProblemUnknownKey:   "the checkpoint is signed by an unknown key",
		ProblemBadSignature: "the checkpoint's signature is invalid",
		ProblemTruncated:    "the trail is truncated",
		ProblemUnsigned:     "the trail is not signed",
	}[p.Kind]
	if p.Seq == 0 {
		return fmt.Sprintf("%s:%d: %s (%s)", p.File, p.Line, what, p.Detail)
	}
	return fmt.Sprintf("%s:%d seq %d: %s (%s)", p.File, p.Line, p.Seq, what, p.Detail)
}

func seqRange(lo, hi uint64) string {
	if lo == hi {
		return fmt.Sprintf("seq %d", lo)
	}
	return fmt.Sprintf("seq %d–%d", lo, hi)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// short bounds an untrusted string quoted in a detail.
func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func shortErr(err error) string {
	return short(err.Error())
}
