package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// trail is a real file written by a FileSink with a key: a start
// checkpoint, records with an interval checkpoint after every fourth, and
// a shutdown checkpoint.
type trail struct {
	key   testKey
	lines [][]byte
	evs   []Event
}

func writeTrail(t testing.TB, n int) *trail {
	t.Helper()
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	clk := newFakeClock()
	s, err := OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path, CheckpointInterval: time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		clk.Advance(15 * time.Second)
		mustWrite(t, s, event(i))
	}
	clk.Advance(15 * time.Second)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	tr := &trail{key: k, lines: readLines(t, path)}
	for _, l := range tr.lines {
		tr.evs = append(tr.evs, parseLine(t, l))
	}
	return tr
}

func (tr *trail) isCP(i int) bool { return tr.evs[i].Kind == KindCheckpoint }

// find returns the first index from 'from' where ok holds.
func (tr *trail) find(t testing.TB, from int, ok func(i int) bool) int {
	t.Helper()
	for i := from; i < len(tr.lines); i++ {
		if ok(i) {
			return i
		}
	}
	t.Fatal("no such line in the trail")
	return 0
}

// plain finds a record (not a checkpoint) from 'from' whose neighbours are
// records too.
func (tr *trail) plain(t testing.TB, from int) int {
	return tr.find(t, from, func(i int) bool {
		return i > 0 && i+1 < len(tr.lines) && !tr.isCP(i-1) && !tr.isCP(i) && !tr.isCP(i+1)
	})
}

func (tr *trail) copyLines() [][]byte {
	out := make([][]byte, len(tr.lines))
	for i, l := range tr.lines {
		out[i] = bytes.Clone(l)
	}
	return out
}

func join(lines [][]byte) []byte {
	return append(bytes.Join(lines, []byte("\n")), '\n')
}

// resign returns checkpoint line i signed again by key (claiming keyID).
func (tr *trail) resign(t testing.TB, i int, key ed25519.PrivateKey, keyID string) []byte {
	t.Helper()
	e := tr.evs[i]
	sig := ed25519.Sign(key, checkpointMessage(e.Seq, e.Prev, e.Time, keyID, e.Checkpoint.Reason))
	line, err := checkpointLine(e.Seq, e.Prev, e.Time, keyID, e.Checkpoint.Reason, base64.RawURLEncoding.EncodeToString(sig))
	if err != nil {
		t.Fatal(err)
	}
	return line
}

func TestVerifyFindsTampering(t *testing.T) {
	tr := writeTrail(t, 30)
	other := newTestKey(t, t.TempDir(), "other.pem")
	lastCP := len(tr.lines) - 1
	prevCP := tr.find(t, 0, func(i int) bool { return tr.isCP(i) && i > lastCP-5 && i < lastCP })
	if lastCP-prevCP < 3 {
		t.Fatalf("trail layout: checkpoints at %d and %d", prevCP, lastCP)
	}
	for _, tc := range []struct {
		name string
		// edit returns the tampered file and the seq the problem must name.
		edit     func(t *testing.T) ([]byte, uint64)
		kind     string // "" = OK
		wantText string // in Report.Write's output
		check    func(t *testing.T, r *Report)
	}{
		{
			name: "modify a field of a record in the middle",
			edit: func(t *testing.T) ([]byte, uint64) {
				l, i := tr.copyLines(), tr.plain(t, 8)
				l[i] = bytes.Replace(l[i], []byte(`"decision":"allow"`), []byte(`"decision":"deny"`), 1)
				return join(l), tr.evs[i].Seq
			},
			kind: ProblemModified, wantText: "TAMPERED: ",
		},
		{
			name: "modify the prev of a record",
			edit: func(t *testing.T) ([]byte, uint64) {
				l, i := tr.copyLines(), tr.plain(t, 8)
				l[i] = bytes.Replace(l[i], []byte(tr.evs[i].Prev), []byte(strings.Repeat("ab", 32)), 1)
				return join(l), tr.evs[i].Seq
			},
			kind: ProblemModified,
		},
		{
			name: "modify the seq of a record",
			edit: func(t *testing.T) ([]byte, uint64) {
				l, i := tr.copyLines(), tr.plain(t, 8)
				l[i] = bytes.Replace(l[i], []byte(`{"seq":`+u(tr.evs[i].Seq)), []byte(`{"seq":9999`), 1)
				return join(l), tr.evs[i].Seq
			},
			kind: ProblemModified,
		},
		{
			name: "delete a record",
			edit: func(t *testing.T) ([]byte, uint64) {
				l, i := tr.copyLines(), tr.plain(t, 8)
				return join(slices.Delete(l, i, i+1)), tr.evs[i].Seq
			},
			kind: ProblemDeleted,
		},
		{
			name: "delete three records",
			edit: func(t *testing.T) ([]byte, uint64) {
				l, i := tr.copyLines(), tr.plain(t, 8)
				return join(slices.Delete(l, i-1, i+2)), tr.evs[i-1].Seq
			},
			kind: ProblemDeleted, wantText: "–",
		},
		{
			name: "insert a copied record",
			edit: func(t *testing.T) ([]byte, uint64) {
				l, i := tr.copyLines(), tr.plain(t, 4)
				return join(slices.Insert(l, i+6, bytes.Clone(l[i]))), tr.evs[i].Seq
			},
			kind: ProblemInserted, wantText: "a copy of seq",
		},
		{
			name: "insert a copy right after the original",
			edit: func(t *testing.T) ([]byte, uint64) {
				l, i := tr.copyLines(), tr.plain(t, 4)
				return join(slices.Insert(l, i+1, bytes.Clone(l[i]))), tr.evs[i].Seq
			},
			kind: ProblemInserted,
		},
		{
			name: "insert a forged record with the next seq",
			edit: func(t *testing.T) ([]byte, uint64) {
				l, i := tr.copyLines(), tr.plain(t, 8)
				forged := bytes.Replace(l[i], []byte(`"decision":"allow"`), []byte(`"decision":"deny"`), 1)
				return join(slices.Insert(l, i, forged)), tr.evs[i].Seq
			},
			kind: ProblemInserted,
		},
		{
			name: "swap two records",
			edit: func(t *testing.T) ([]byte, uint64) {
				l, i := tr.copyLines(), tr.plain(t, 8)
				l[i], l[i+1] = l[i+1], l[i]
				return join(l), tr.evs[i].Seq
			},
			kind: ProblemReordered,
		},
		{
			name: "move a record far later",
			edit: func(t *testing.T) ([]byte, uint64) {
				l, i := tr.copyLines(), tr.plain(t, 4)
				moved := l[i]
				l = slices.Delete(l, i, i+1)
				return join(slices.Insert(l, i+10, moved)), tr.evs[i].Seq
			},
			kind: ProblemReordered,
		},
		{
			name: "modify the record just before a checkpoint",
			edit: func(t *testing.T) ([]byte, uint64) {
				l := tr.copyLines()
				i := tr.find(t, 3, func(i int) bool { return i+1 < lastCP && tr.isCP(i+1) && !tr.isCP(i) })
				l[i] = bytes.Replace(l[i], []byte(`"subject":"user-42"`), []byte(`"subject":"user-43"`), 1)
				return join(l), tr.evs[i].Seq
			},
			kind: ProblemModified, wantText: "signed by the checkpoint",
		},
		{
			name: "modify the last record before the shutdown checkpoint",
			edit: func(t *testing.T) ([]byte, uint64) {
				l := tr.copyLines()
				l[lastCP-1] = bytes.Replace(l[lastCP-1], []byte(`"subject":"user-42"`), []byte(`"subject":"root"`), 1)
				return join(l), tr.evs[lastCP-1].Seq
			},
			kind: ProblemModified,
		},
		{
			name: "modify a checkpoint's signature",
			edit: func(t *testing.T) ([]byte, uint64) {
				l := tr.copyLines()
				sig := tr.evs[prevCP].Checkpoint.Signature
				flipped := []byte(sig)
				flipped[10] = map[bool]byte{true: 'A', false: 'B'}[flipped[10] != 'A']
				l[prevCP] = bytes.Replace(l[prevCP], []byte(sig), flipped, 1)
				return join(l), tr.evs[prevCP].Seq
			},
			kind: ProblemBadSignature,
		},
		{
			name: "forge a checkpoint with another key",
			edit: func(t *testing.T) ([]byte, uint64) {
				l := tr.copyLines()
				l[prevCP] = tr.resign(t, prevCP, other.priv, KeyID(other.pub))
				return join(l), tr.evs[prevCP].Seq
			},
			kind: ProblemUnknownKey,
		},
		{
			name: "forge a checkpoint with another key claiming the real key id",
			edit: func(t *testing.T) ([]byte, uint64) {
				l := tr.copyLines()
				l[prevCP] = tr.resign(t, prevCP, other.priv, KeyID(tr.key.pub))
				return join(l), tr.evs[prevCP].Seq
			},
			kind: ProblemBadSignature,
		},
		{
			name: "a checkpoint with a field added outside the signature",
			edit: func(t *testing.T) ([]byte, uint64) {
				l := tr.copyLines()
				l[lastCP] = bytes.Replace(l[lastCP], []byte(`"request_id":""`), []byte(`"request_id":"","subject":"x"`), 1)
				return join(l), tr.evs[lastCP].Seq
			},
			kind: ProblemModified, wantText: "outside its signed fields",
		},
		{
			name: "a line that is not a record",
			edit: func(t *testing.T) ([]byte, uint64) {
				l, i := tr.copyLines(), tr.plain(t, 8)
				return join(slices.Insert(l, i, []byte(`{"decision":"allow"}`))), 0
			},
			kind: ProblemMalformed,
		},
		{
			name: "truncate the file mid-line: an incomplete tail, not tampering",
			edit: func(t *testing.T) ([]byte, uint64) {
				b := join(tr.copyLines())
				return b[:len(b)-len(tr.lines[lastCP])/2], 0
			},
			check: func(t *testing.T, r *Report) {
				if !r.IncompleteTail || r.LastSeq != tr.evs[lastCP-1].Seq || r.UnsignedTail != lastCP-1-prevCP {
					t.Fatalf("report %+v", r)
				}
			},
			wantText: "incomplete last line",
		},
		{
			name: "cut the last records after the last checkpoint",
			edit: func(t *testing.T) ([]byte, uint64) {
				return join(tr.copyLines()[:prevCP+2]), 0 // the checkpoint and one record after it
			},
			check: func(t *testing.T, r *Report) {
				if r.UnsignedTail != 1 || r.LastCheckpointSeq != tr.evs[prevCP].Seq || r.LastSeq != tr.evs[prevCP+1].Seq {
					t.Fatalf("report %+v", r)
				}
			},
			wantText: "1 record after the last checkpoint (seq " + u(tr.evs[prevCP].Seq) + ") is not covered by a signature: a cut or a change after it cannot be proven",
		},
		{
			name: "delete the first records",
			edit: func(t *testing.T) ([]byte, uint64) {
				return join(tr.copyLines()[3:]), 4
			},
			kind: ProblemTruncated, wantText: "the trail starts at seq 4: records before it are missing; pass --from-seq 4",
		},
		{
			name: "change the unused bits of the final checkpoint's signature",
			edit: func(t *testing.T) ([]byte, uint64) {
				l := tr.copyLines()
				sig := tr.evs[lastCP].Checkpoint.Signature
				const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
				last := strings.IndexByte(alphabet, sig[len(sig)-1])
				if last&0xf != 0 {
					t.Fatalf("signature %q: its last character has unused bits set", sig)
				}
				alt := sig[:len(sig)-1] + string(alphabet[last+1]) // same 64 bytes once decoded leniently
				l[lastCP] = bytes.Replace(l[lastCP], []byte(sig), []byte(alt), 1)
				return join(l), tr.evs[lastCP].Seq
			},
			kind: ProblemBadSignature,
		},
		{
			name: "the genesis checkpoint with a non-zero prev",
			edit: func(t *testing.T) ([]byte, uint64) {
				l := tr.copyLines()
				l[0] = bytes.Replace(l[0], []byte(zeroPrev), []byte(strings.Repeat("1", 64)), 1)
				return join(l), 1
			},
			kind: ProblemBadSignature,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content, seq := tc.edit(t)
			p := filepath.Join(t.TempDir(), "audit.jsonl")
			writeFileMode(t, p, content, 0o600)
			r, err := Verify([]string{p}, []ed25519.PublicKey{tr.key.pub})
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			r.Write(&out)
			t.Log(out.String())
			if tc.kind == "" {
				if !r.OK() {
					t.Fatalf("want OK:\n%s", out.String())
				}
				if !strings.HasPrefix(out.String(), "OK: ") {
					t.Fatalf("summary %q", out.String())
				}
			} else {
				if r.OK() {
					t.Fatalf("tampering not found:\n%s", out.String())
				}
				p0 := r.Problems[0]
				if p0.Kind != tc.kind || p0.Seq != seq || p0.File != p || p0.Line < 1 {
					t.Fatalf("first problem %+v, want %s at seq %d\n%s", p0, tc.kind, seq, out.String())
				}
				if !strings.HasPrefix(out.String(), "TAMPERED: "+p+":") {
					t.Fatalf("summary %q", out.String())
				}
			}
			if tc.wantText != "" && !strings.Contains(out.String(), tc.wantText) {
				t.Fatalf("summary lacks %q:\n%s", tc.wantText, out.String())
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// u formats a seq.
func u(n uint64) string { return strconv.FormatUint(n, 10) }

// TestVerifyPreciseLocation: the first problem names the file, the line
// and the seq of the changed record.
func TestVerifyPreciseLocation(t *testing.T) {
	tr := writeTrail(t, 12)
	l, i := tr.copyLines(), tr.plain(t, 5)
	l[i] = bytes.Replace(l[i], []byte(`"tool":"read_document"`), []byte(`"tool":"delete_document"`), 1)
	p := filepath.Join(t.TempDir(), "audit.jsonl")
	writeFileMode(t, p, join(l), 0o600)
	r, err := Verify([]string{p}, []ed25519.PublicKey{tr.key.pub})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 1 {
		t.Fatalf("problems %+v: one change must give one problem", r.Problems)
	}
	want := Problem{File: p, Line: i + 1, Seq: tr.evs[i].Seq, Kind: ProblemModified}
	if got := r.Problems[0]; got.File != want.File || got.Line != want.Line || got.Seq != want.Seq || got.Kind != want.Kind {
		t.Fatalf("problem %+v, want %+v", got, want)
	}
	var out strings.Builder
	r.Write(&out)
	if !strings.HasPrefix(out.String(), "TAMPERED: "+p+":"+u(uint64(i+1))+" seq "+u(tr.evs[i].Seq)+": the record was modified (") {
		t.Fatalf("summary %q", out.String())
	}
}

// TestVerifyRotatedSet: a rotated set verifies as one chain in any order;
// deleting a whole middle file is found as deleted records.
func TestVerifyRotatedSet(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	clk := newFakeClock()
	s, err := OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path, RotateSize: 2500, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		clk.Advance(time.Second)
		mustWrite(t, s, event(i))
	}
	s.Close()
	files := append(glob(t, path+".*"), path)
	if len(files) < 4 {
		t.Fatalf("only %d files", len(files))
	}
	slices.Reverse(files)
	r := mustVerify(t, files, k.pub)
	var out strings.Builder
	r.Write(&out)
	if !strings.HasPrefix(out.String(), "OK: "+u(uint64(r.Records))+" records in "+u(uint64(len(files)))+" files, seq 1–") ||
		!strings.Contains(out.String(), "signed by "+KeyID(k.pub)) {
		t.Fatalf("summary %q", out.String())
	}

	slices.Reverse(files) // oldest first
	middle := files[len(files)/2]
	firstOfMiddle := parseLine(t, readLines(t, middle)[0]).Seq
	lastOfMiddle := parseLine(t, readLines(t, middle)[len(readLines(t, middle))-1]).Seq
	next := files[len(files)/2+1]
	rest := slices.DeleteFunc(slices.Clone(files), func(f string) bool { return f == middle })
	r, err = Verify(rest, []ed25519.PublicKey{k.pub})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() {
		t.Fatal("a deleted middle file went unnoticed")
	}
	p0 := r.Problems[0]
	if p0.Kind != ProblemDeleted || p0.Seq != firstOfMiddle || p0.File != next || p0.Line != 1 ||
		!strings.Contains(p0.Detail, seqRange(firstOfMiddle, lastOfMiddle)) {
		t.Fatalf("problem %+v, want deleted seq %d–%d at %s:1", p0, firstOfMiddle, lastOfMiddle, next)
	}
}

func TestVerifyWithoutKeysSaysSo(t *testing.T) {
	tr := writeTrail(t, 6)
	p := filepath.Join(t.TempDir(), "a.jsonl")
	writeFileMode(t, p, join(tr.lines), 0o600)
	r := mustVerify(t, []string{p})
	if r.Checkpoints != 0 || r.UnsignedTail != r.Records || !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "not checked") }) {
		t.Fatalf("report %+v", r)
	}
}

func TestVerifyErrorsAndLimits(t *testing.T) {
	if _, err := Verify(nil, nil); err == nil {
		t.Error("no files accepted")
	}
	if _, err := Verify([]string{filepath.Join(t.TempDir(), "absent")}, nil); err == nil {
		t.Error("a missing file accepted")
	}
	if _, err := Verify([]string{os.DevNull}, []ed25519.PublicKey{make([]byte, 3)}); err == nil {
		t.Error("a short public key accepted")
	}
	// A wrecked file: every line malformed; at most maxListed are listed.
	p := filepath.Join(t.TempDir(), "junk.jsonl")
	writeFileMode(t, p, []byte(strings.Repeat("junk\n", 50)), 0o600)
	r, err := Verify([]string{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != maxListed || r.MoreProblems != 40 || r.Problems[0].Line != 1 || r.Problems[0].Kind != ProblemMalformed {
		t.Fatalf("report %+v", r)
	}
	var out strings.Builder
	r.Write(&out)
	if !strings.Contains(out.String(), "and 40 more problems") {
		t.Fatalf("summary %q", out.String())
	}
}

// FuzzVerify: Verify never panics, whatever the files hold.
func FuzzVerify(f *testing.F) {
	tr := writeTrail(f, 8)
	good := join(tr.lines)
	f.Add(good, 0, uint64(0))
	f.Add(good[:len(good)-7], len(good)/2, uint64(1))
	f.Add(good[len(tr.lines[0])+1:], 0, uint64(2))
	f.Add([]byte("{\"seq\":1,\"prev\":\""+zeroPrev+"\",\"kind\":\"checkpoint\"}\n"), 0, uint64(0))
	f.Add([]byte("{\"seq\":18446744073709551615,\"prev\":\""+zeroPrev+"\"}\n{\"seq\":1,\"prev\":\""+zeroPrev+"\"}\n"), 0, uint64(18446744073709551615))
	f.Add([]byte("\n\n\x00{"), 1, uint64(0))
	pub := tr.key.pub
	dir := f.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	f.Fuzz(func(t *testing.T, data []byte, split int, from uint64) {
		if split < 0 || split > len(data) {
			split = 0
		}
		writeFileMode(t, a, data[:split], 0o600)
		writeFileMode(t, b, data[split:], 0o600)
		r, err := VerifyWith([]string{a, b}, []ed25519.PublicKey{pub}, VerifyOptions{FromSeq: from})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Problems) > maxListed || r.UnsignedTail > r.Records {
			t.Fatalf("report %+v", r)
		}
		if r.OK() && (r.EndReason == ReasonRotation || r.Checkpoints == 0 ||
			r.Records > 0 && r.FirstSeq != max(from, 1)) {
			t.Fatalf("a truncated or unsigned trail passed: %+v", r)
		}
		var out strings.Builder
		if err := r.Write(&out); err != nil || out.Len() == 0 {
			t.Fatal("no summary")
		}
	})
}

// rotatedTrail writes a rotated set with a key and returns its files,
// oldest first (the active file last).
func rotatedTrail(t testing.TB) (testKey, []string) {
	t.Helper()
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	clk := newFakeClock()
	s, err := OpenFileSink(FileConfig{Path: path, SigningKeyFile: k.path, RotateSize: 2500, CheckpointInterval: time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		clk.Advance(time.Second)
		mustWrite(t, s, event(i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files := append(glob(t, path+".*"), path) // the names sort by time, then -N
	slices.SortStableFunc(files, func(a, b string) int {
		return int(parseLine(t, readLines(t, a)[0]).Seq) - int(parseLine(t, readLines(t, b)[0]).Seq)
	})
	if len(files) < 3 {
		t.Fatalf("only %d files", len(files))
	}
	return k, files
}

func verifyReport(t testing.TB, files []string, keys []ed25519.PublicKey, opts VerifyOptions) (*Report, string) {
	t.Helper()
	r, err := VerifyWith(files, keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	return r, out.String()
}

// TestVerifyTrailEnd: EndReason names how the trail ends; a trail that
// ends with a rotation checkpoint (the active file deleted) is truncated,
// and the summary says loudly when the trail does not end with a shutdown
// checkpoint.
func TestVerifyTrailEnd(t *testing.T) {
	k, files := rotatedTrail(t)
	keys := []ed25519.PublicKey{k.pub}
	active := files[len(files)-1]
	activeLines := readLines(t, active)
	cut := func(n int) string { // the active file's first n lines
		p := filepath.Join(t.TempDir(), "audit.jsonl")
		var b []byte
		if n > 0 {
			b = join(activeLines[:n])
		}
		writeFileMode(t, p, b, 0o600)
		return p
	}
	if e := parseLine(t, activeLines[0]); e.Checkpoint == nil || e.Checkpoint.Reason != ReasonContinued {
		t.Fatalf("the active file starts with %s, want a continued checkpoint", activeLines[0])
	}
	prev := files[len(files)-2]
	prevLines := readLines(t, prev)
	for _, tc := range []struct {
		name    string
		files   []string
		end     string
		problem *Problem // nil: OK
		warn    bool
	}{
		{name: "whole", files: files, end: ReasonShutdown},
		{name: "the active file deleted", files: files[:len(files)-1], end: ReasonRotation,
			problem: &Problem{File: prev, Line: len(prevLines), Seq: parseLine(t, prevLines[len(prevLines)-1]).Seq, Kind: ProblemTruncated,
				Detail: "the trail ends with a rotation checkpoint: the file after it is missing"}, warn: true},
		{name: "the active file emptied", files: append(slices.Clone(files[:len(files)-1]), cut(0)), end: ReasonRotation,
			problem: &Problem{File: prev, Line: len(prevLines), Seq: parseLine(t, prevLines[len(prevLines)-1]).Seq, Kind: ProblemTruncated}, warn: true},
		{name: "cut after the continued checkpoint", files: append(slices.Clone(files[:len(files)-1]), cut(1)), end: ReasonContinued, warn: true},
		{name: "cut after a record", files: append(slices.Clone(files[:len(files)-1]), cut(2)), end: "", warn: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, out := verifyReport(t, tc.files, keys, VerifyOptions{})
			t.Log(out)
			if r.EndReason != tc.end {
				t.Fatalf("EndReason %q, want %q", r.EndReason, tc.end)
			}
			if tc.problem == nil && !r.OK() {
				t.Fatalf("want OK:\n%s", out)
			}
			if p := tc.problem; p != nil {
				if r.OK() {
					t.Fatalf("a truncated trail passed:\n%s", out)
				}
				if len(r.Problems) != 1 {
					t.Fatalf("problems %+v", r.Problems)
				}
				got := r.Problems[0]
				if got.File != p.File || got.Line != p.Line || got.Seq != p.Seq || got.Kind != p.Kind || p.Detail != "" && got.Detail != p.Detail {
					t.Fatalf("problem %+v, want %+v", got, *p)
				}
				if !strings.HasPrefix(out, "TAMPERED: ") || !strings.Contains(out, "the trail is truncated") {
					t.Fatalf("summary %q", out)
				}
			}
			if got := strings.Contains(out, "WARNING: the trail does not end with a shutdown checkpoint"); got != tc.warn {
				t.Fatalf("warning shown: %v, want %v:\n%s", got, tc.warn, out)
			}
		})
	}
}

// TestVerifyUnsigned: with keys given, a trail without a verified
// checkpoint is a problem; without keys it is only said.
func TestVerifyUnsigned(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "key.pem")
	path := filepath.Join(dir, "audit.jsonl")
	s, err := OpenFileSink(FileConfig{Path: path}) // no key: chain only
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		mustWrite(t, s, event(i))
	}
	s.Close()
	empty := filepath.Join(dir, "empty.jsonl")
	writeFileMode(t, empty, nil, 0o600)
	for _, tc := range []struct {
		name  string
		files []string
		keys  []ed25519.PublicKey
		want  *Problem
	}{
		{"chain only, verified with a key", []string{path}, []ed25519.PublicKey{k.pub},
			&Problem{File: path, Line: 1, Seq: 1, Kind: ProblemUnsigned, Detail: "no signed checkpoint: the trail could have been rewritten without the key"}},
		{"an empty trail, verified with a key", []string{empty}, []ed25519.PublicKey{k.pub},
			&Problem{File: empty, Line: 0, Seq: 0, Kind: ProblemUnsigned}},
		{"chain only, without a key", []string{path}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, out := verifyReport(t, tc.files, tc.keys, VerifyOptions{})
			if tc.want == nil {
				if !r.OK() || !strings.Contains(out, "no record is covered by a verified signature") {
					t.Fatalf("report:\n%s", out)
				}
				return
			}
			if len(r.Problems) != 1 {
				t.Fatalf("problems %+v", r.Problems)
			}
			got, w := r.Problems[0], tc.want
			if got.File != w.File || got.Line != w.Line || got.Seq != w.Seq || got.Kind != w.Kind || w.Detail != "" && got.Detail != w.Detail {
				t.Fatalf("problem %+v, want %+v", got, *w)
			}
			if !strings.Contains(out, "the trail is not signed") {
				t.Fatalf("summary %q", out)
			}
		})
	}
}

// TestVerifyFromSeq: a trail must start at seq 1 unless FromSeq says
// where; then it must start exactly there.
func TestVerifyFromSeq(t *testing.T) {
	k, files := rotatedTrail(t)
	keys := []ed25519.PublicKey{k.pub}
	rest := files[1:] // the oldest file expired
	start := parseLine(t, readLines(t, rest[0])[0]).Seq
	for _, tc := range []struct {
		name  string
		files []string
		from  uint64
		ok    bool
		want  string
	}{
		{"whole, strict", files, 0, true, ""},
		{"whole, from 1", files, 1, true, ""},
		{"expired, strict", rest, 0, false, "the trail starts at seq " + u(start) + ": records before it are missing; pass --from-seq " + u(start)},
		{"expired, from its start", rest, start, true, "chain start taken on trust: the trail starts at seq " + u(start)},
		{"expired, from an earlier seq", rest, start - 2, false, "seq " + u(start-2) + "–" + u(start-1) + " missing"},
		{"expired, from a later seq", rest, start + 1, false, "before seq " + u(start+1)},
		{"whole, from a later seq", files, 5, false, "the trail starts at seq 1, before seq 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, out := verifyReport(t, tc.files, keys, VerifyOptions{FromSeq: tc.from})
			t.Log(out)
			if r.OK() != tc.ok || !strings.Contains(out, tc.want) {
				t.Fatalf("OK %v, want %v; summary lacks %q:\n%s", r.OK(), tc.ok, tc.want, out)
			}
			if !tc.ok {
				p := r.Problems[0]
				if p.Kind != ProblemTruncated || p.File != tc.files[0] || p.Line != 1 || p.Seq != r.FirstSeq {
					t.Fatalf("problem %+v", p)
				}
			}
		})
	}
	// Verify is the strict default.
	if r, err := Verify(rest, keys); err != nil || r.OK() {
		t.Fatalf("Verify accepted a trail starting at seq %d: %v", start, err)
	}
}

// TestVerifyLongLines: lines up to 64 MiB are read: a line of 20 MiB
// (over the former 16 MiB limit) verifies.
func TestVerifyLongLines(t *testing.T) {
	body := func(n int) []byte {
		return []byte(`,"time":"2030-01-02T03:04:05Z","kind":"decision","request_id":"big","tool":"` + strings.Repeat("x", n) + `","decision":"allow"}`)
	}
	c := newChain()
	b, _, _ := c.appendRecord(nil, body(20<<20))
	b, _, _ = c.appendRecord(b, body(10))
	p := filepath.Join(t.TempDir(), "big.jsonl")
	writeFileMode(t, p, b, 0o600)
	if r := mustVerify(t, []string{p}); r.Records != 2 {
		t.Fatalf("report %+v", r)
	}
	if maxLineBytes < 64<<20 {
		t.Fatalf("maxLineBytes %d, documented as at least 64 MiB", maxLineBytes)
	}
}

// FuzzLastLine: the crash-repair scan agrees with a plain split.
func FuzzLastLine(f *testing.F) {
	f.Add([]byte("a\nb\nc"))
	f.Add([]byte("\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		keep, last, err := lastLine(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		wantKeep := bytes.LastIndexByte(data, '\n') + 1
		if keep != int64(wantKeep) {
			t.Fatalf("keep %d, want %d", keep, wantKeep)
		}
		if wantKeep == 0 {
			if last != nil {
				t.Fatalf("last %q without a newline", last)
			}
			return
		}
		lines := bytes.Split(data[:wantKeep-1], []byte("\n"))
		if want := lines[len(lines)-1]; !bytes.Equal(last, want) {
			t.Fatalf("last %q, want %q", last, want)
		}
	})
}

// FuzzParseKeys: the key parsers never panic.
func FuzzParseKeys(f *testing.F) {
	k := newTestKey(f, f.TempDir(), "k.pem")
	f.Add(k.pem)
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if k, err := parsePrivateKey(data); err == nil && len(k) != ed25519.PrivateKeySize {
			t.Fatal("bad private key accepted")
		}
		if k, err := parsePublicKey(data); err == nil && len(k) != ed25519.PublicKeySize {
			t.Fatal("bad public key accepted")
		}
	})
}
