package audit

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEncodeBodyMatchesJSONMarshal(t *testing.T) {
	evs := []*Event{
		{},
		event(1),
		{Seq: 77, Prev: "caller values are ignored", Kind: KindAlert, Decision: Alert, Reason: "tool_changed",
			Findings: []Finding{{Detector: "aws", Action: "redact", Where: "result", Count: 2}}, LatencyMS: 1.5},
		{Kind: KindOutcome, Decision: Forward, Tool: "<script>&\u2028\u2029\x00", Actor: []string{"a", "b"}},
	}
	c := newChain()
	for i, e := range evs {
		body, err := encodeBody(e)
		if err != nil {
			t.Fatal(err)
		}
		prevHead := c
		line, seq, prev := c.appendRecord(nil, body)
		if seq != uint64(i+1) || prev != prevHead.prev {
			t.Fatalf("record %d: seq %d prev %s", i, seq, prev)
		}
		want := *e
		want.Seq, want.Prev = seq, prev
		wantLine, err := json.Marshal(&want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(line, append(wantLine, '\n')) {
			t.Fatalf("record %d:\n got %s\nwant %s", i, line, wantLine)
		}
		sum := sha256.Sum256(wantLine)
		if c.prev != hex.EncodeToString(sum[:]) {
			t.Fatalf("record %d: head hash is not the SHA-256 of the line without its newline", i)
		}
		if !bytes.HasPrefix(line, []byte(`{"seq":`)) {
			t.Fatalf("seq must come first: %s", line)
		}
	}
	if evs[2].Seq != 77 {
		t.Fatal("encodeBody modified the caller's event")
	}
	g := newChain()
	first, _, _ := g.appendRecord(nil, []byte(`,"time":"0001-01-01T00:00:00Z"}`))
	if !bytes.Contains(first, []byte(`"prev":"`+zeroPrev+`"`)) || len(zeroPrev) != 64 || strings.Trim(zeroPrev, "0") != "" {
		t.Fatalf("genesis line %s", first)
	}
}

func TestEncodeBodyRefusesCheckpoints(t *testing.T) {
	for _, e := range []*Event{
		{Kind: KindCheckpoint, Decision: DecisionCheckpoint},
		{Kind: KindDecision, Checkpoint: &Checkpoint{KeyID: "x"}},
	} {
		if _, err := encodeBody(e); err == nil || !strings.Contains(err.Error(), "written by the sink") {
			t.Errorf("encodeBody(%+v) = %v, want a refusal", e, err)
		}
	}
}

func TestCheckpointSignsTheCanonicalString(t *testing.T) {
	k := newTestKey(t, t.TempDir(), "key.pem")
	c := newChain()
	_, _, _ = c.appendRecord(nil, []byte(`,"time":"0001-01-01T00:00:00Z","kind":"decision","request_id":"r","decision":"allow"}`))
	prev := c.prev
	at := time.Date(2030, 5, 6, 7, 8, 9, 120000000, time.FixedZone("X", 3600))
	id := KeyID(k.pub)
	out, err := c.appendCheckpoint(nil, at, k.priv, id, ReasonInterval)
	if err != nil {
		t.Fatal(err)
	}
	if c.seq != 2 {
		t.Fatalf("seq %d", c.seq)
	}
	ev := parseLine(t, bytes.TrimSuffix(out, []byte("\n")))
	if ev.Kind != KindCheckpoint || ev.Decision != DecisionCheckpoint || ev.Seq != 2 || ev.Prev != prev || ev.Checkpoint == nil {
		t.Fatalf("checkpoint %+v", ev)
	}
	want := "mcpgate-audit-checkpoint-v1\n2\n" + prev + "\n2030-05-06T06:08:09.12Z\n" + id + "\ninterval"
	if got := string(checkpointMessage(2, prev, at, id, ReasonInterval)); got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
	sig, err := base64.RawURLEncoding.DecodeString(ev.Checkpoint.Signature)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(k.pub, []byte(want), sig) {
		t.Fatal("signature does not verify over the documented string")
	}
	if !ev.Time.Equal(at) || ev.Time.Location().String() != "UTC" {
		t.Fatalf("time %v, want %v in UTC", ev.Time, at)
	}
	if ev.Checkpoint.KeyID != id || len(id) != 16 || ev.Checkpoint.Reason != ReasonInterval {
		t.Fatalf("checkpoint %+v", ev.Checkpoint)
	}
}

func TestKeyID(t *testing.T) {
	k := newTestKey(t, t.TempDir(), "key.pem")
	sum := sha256.Sum256(k.pub)
	if got, want := KeyID(k.pub), hex.EncodeToString(sum[:])[:16]; got != want {
		t.Fatalf("KeyID = %s, want %s", got, want)
	}
	if KeyID(newTestKey(t, t.TempDir(), "other.pem").pub) == KeyID(k.pub) {
		t.Fatal("two keys share an id")
	}
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, dir, "ed.pem")
	pubDER, err := x509.MarshalPKIXPublicKey(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC" + " KEY", Bytes: pubDER})
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		writeFileMode(t, p, b, mode)
		return p
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	block := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	der := func(p []byte) []byte { b, _ := pem.Decode(p); return b.Bytes }

	t.Run("signing key", func(t *testing.T) {
		for _, tc := range []struct {
			name, path, wantErr string
		}{
			{"ok", k.path, ""},
			{"world readable", write("wr.pem", k.pem, 0o644), "accessible by other users"},
			{"public key", write("pub.pem", pubPEM, 0o600), `"PUBLIC KEY" block`},
			{"rsa", write("rsa.pem", block("PRIVATE KEY", rsaDER), 0o600), "holds a rsa.PrivateKey key, want Ed25519"},
			{"ecdsa", write("ec.pem", block("PRIVATE KEY", ecDER), 0o600), "holds a ecdsa.PrivateKey key, want Ed25519"},
			{"encrypted", write("enc.pem", block("ENCRYPTED PRIVATE KEY", der(k.pem)), 0o600), "encrypted"},
			{"not pem", write("junk.pem", []byte("not a key at all"), 0o600), "is not PEM"},
			{"two keys", write("two.pem", append(append([]byte{}, k.pem...), k.pem...), 0o600), "more than one PEM block"},
			{"bad der", write("bad.pem", block("PRIVATE KEY", []byte("xxxxxxxxxxxxxxxxxxxxxxxx")), 0o600), "cannot be parsed"},
			{"missing", filepath.Join(dir, "absent.pem"), "no such file"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := LoadSigningKey(tc.path)
				if tc.wantErr == "" {
					if err != nil || !got.Equal(k.priv) {
						t.Fatalf("LoadSigningKey = %v", err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				// The error never carries key material.
				body := strings.Join(strings.Split(string(k.pem), "\n")[1:3], "")
				for i := 0; i+12 <= len(body); i += 6 {
					if strings.Contains(err.Error(), body[i:i+12]) {
						t.Fatalf("error leaks key bytes: %v", err)
					}
				}
			})
		}
	})

	t.Run("public key", func(t *testing.T) {
		for _, tc := range []struct {
			name, path, wantErr string
		}{
			{"pkix", write("pub2.pem", pubPEM, 0o644), ""},
			{"from private", k.path, ""},
			{"rsa", write("rsa2.pem", block("PRIVATE KEY", rsaDER), 0o600), "want Ed25519"},
			{"certificate", write("cert.pem", block("CERTIFICATE", []byte("x")), 0o644), `"CERTIFICATE" block`},
			{"not pem", write("junk2.pem", []byte("{}"), 0o644), "is not PEM"},
			{"missing", filepath.Join(dir, "absent.pem"), "no such file"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := LoadPublicKey(tc.path)
				if tc.wantErr == "" {
					if err != nil || !got.Equal(k.pub) {
						t.Fatalf("LoadPublicKey = %v, %v", got, err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			})
		}
	})
}

// TestSigningKeyReload: a replaced key file signs the next checkpoint; an
// unusable replacement is logged and the last good key keeps signing.
func TestSigningKeyReload(t *testing.T) {
	dir := t.TempDir()
	a := newTestKey(t, dir, "a.pem")
	b := newTestKey(t, dir, "b.pem")
	keyPath := filepath.Join(dir, "audit-key.pem")
	writeFileMode(t, keyPath, a.pem, 0o600)
	clk := newFakeClock()
	var logs logBuffer
	path := filepath.Join(dir, "audit.jsonl")
	s, err := OpenFileSink(FileConfig{Path: path, SigningKeyFile: keyPath, CheckpointInterval: time.Minute, Now: clk.Now, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, event(1))

	// A broken replacement: the last good key (a) keeps signing.
	writeFileMode(t, keyPath, []byte("garbage"), 0o600)
	clk.Advance(2 * time.Minute)
	mustWrite(t, s, event(2))
	if !strings.Contains(logs.String(), "cannot be used") {
		t.Fatalf("broken key file not logged:\n%s", logs.String())
	}
	// A good replacement (b) signs from the next checkpoint on.
	writeFileMode(t, keyPath+".tmp", b.pem, 0o600)
	if err := os.Rename(keyPath+".tmp", keyPath); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	mustWrite(t, s, event(3))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range readLines(t, path) {
		if e := parseLine(t, l); e.Kind == KindCheckpoint {
			ids = append(ids, e.Checkpoint.KeyID)
		}
	}
	ida, idb := KeyID(a.pub), KeyID(b.pub)
	if diff := cmp.Diff([]string{ida, ida, idb, idb}, ids); diff != "" {
		t.Fatalf("checkpoint key ids (start, interval, interval, shutdown) -want +got:\n%s", diff)
	}
	r := mustVerify(t, []string{path}, a.pub, b.pub)
	wantIDs := []string{ida, idb}
	slices.Sort(wantIDs)
	if diff := cmp.Diff(wantIDs, r.KeyIDs); diff != "" {
		t.Fatalf("report key ids: %s", diff)
	}
	// With only the first key, the second key's checkpoints are unknown.
	r, err = Verify([]string{path}, []ed25519.PublicKey{a.pub})
	if err != nil || r.OK() || r.Problems[0].Kind != ProblemUnknownKey {
		t.Fatalf("verify with one key: %+v, %v", r, err)
	}
	if strings.Contains(logs.String(), "garbage") {
		t.Fatal("log quotes the key file's content")
	}
}

// TestLogInjectionStaysOnOneLine: a value with "\n{...}", CR and
// U+2028/2029 is escaped by encoding/json: one record, one line.
func TestLogInjectionStaysOnOneLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	s, err := OpenFileSink(FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	evil := "x\n{\"seq\":2,\"prev\":\"" + zeroPrev + "\",\"decision\":\"allow\"}\r\u2028\u2029"
	e := event(1)
	e.Tool, e.Reason, e.Decision = evil, evil, Deny
	mustWrite(t, s, e)
	mustWrite(t, s, event(2))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2: a value broke a line", len(lines))
	}
	for _, bad := range []string{"\r", "\u2028", "\u2029"} {
		if bytes.Contains(lines[0], []byte(bad)) {
			t.Fatalf("raw %q in the line", bad)
		}
	}
	if got := parseLine(t, lines[0]); got.Tool != evil || got.Decision != Deny || got.Seq != 1 {
		t.Fatalf("record 1 = %+v", got)
	}
	mustVerify(t, []string{path})
}

func TestSinkFillsSeqAndPrevOnSuccess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := OpenFileSink(FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e1, e2 := event(1), event(2)
	e1.Seq, e1.Prev = 99, "forged"
	mustWrite(t, s, e1)
	mustWrite(t, s, e2)
	if e1.Seq != 1 || e1.Prev != zeroPrev || e2.Seq != 2 || !isHash(e2.Prev) {
		t.Fatalf("e1 %d %s, e2 %d %s", e1.Seq, e1.Prev, e2.Seq, e2.Prev)
	}
	if err := s.Write(context.Background(), &Event{Kind: KindCheckpoint}); err == nil {
		t.Fatal("a caller's checkpoint record was accepted")
	}
}
