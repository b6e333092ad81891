package audit

// The hash chain and its signed checkpoints.
//
// Every line written by a chaining sink starts with
//
//	{"seq":N,"prev":"<hex SHA-256 of the previous line>",...
//
// where N counts from 1 (genesis, whose prev is 64 zeros) and continues
// across restarts and rotated files, and the hash is taken over the
// previous line's bytes without its trailing "\n". Removing, inserting,
// reordering or editing a line therefore breaks a link that [Verify]
// finds.
//
// A checkpoint record (Kind "checkpoint", Decision "checkpoint") carries an
// Ed25519 signature over
//
//	"mcpgate-audit-checkpoint-v1\n" + seq + "\n" + prev + "\n" +
//	time (RFC 3339, nanoseconds, UTC) + "\n" + key_id + "\n" + reason
//
// Because prev links every line before it, the signature commits to the
// whole chain up to the checkpoint: someone who can edit the files but not
// read the key cannot rewrite the chain up to a checkpoint without being
// found. A checkpoint line has exactly the bytes [json.Marshal] gives for
// these fields, so [Verify] also refuses a checkpoint line with anything
// added or changed outside the signed string. Records after the last
// checkpoint are covered by the chain only: a tail cut off or rewritten
// after it cannot be proven. A rotation checkpoint is the last record of
// a file and, with a key, a continued checkpoint the first of the next, so
// a trail ending with a rotation checkpoint has lost a file ([Verify]
// reports it as truncated); only a shutdown checkpoint marks a clean end.

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/secret"
)

// Checkpoint reasons.
const (
	ReasonStart    = "start"    // the sink opened
	ReasonInterval = "interval" // CheckpointInterval elapsed with records written since the last one
	ReasonRotation = "rotation" // the last record of a file before it is rotated
	ReasonShutdown = "shutdown" // the sink closed
	ReasonRequest  = "request"  // asked for (FileSink.Checkpoint)
	// ReasonContinued is the first record of a new file after a rotation,
	// so that a trail whose sink is idle after a rotation does not end
	// with a rotation checkpoint (which [Verify] reports as truncated).
	ReasonContinued = "continued"
)

// MaxRecordBytes bounds a record's line (without "\n"): a sink refuses a
// larger record with [ErrRecordTooLarge] rather than write a line that
// could not be verified or repaired. The gateway caps the fields it
// records well below this.
const MaxRecordBytes = 1 << 20

// ErrRecordTooLarge is returned by a sink's Write for a record whose line
// would exceed MaxRecordBytes; nothing is written.
var ErrRecordTooLarge = errors.New("audit: record too large")

// lineOverhead is the most that appendRecord adds to a body: `{"seq":`,
// 20 digits, `,"prev":"`, 64 hex digits and '"'.
const lineOverhead = 7 + 20 + 9 + 64 + 1

// Checkpoint is the signed part of a checkpoint record.
type Checkpoint struct {
	KeyID     string `json:"key_id"`    // [KeyID] of the signing key
	Reason    string `json:"reason"`    // one of the Reason* constants
	Signature string `json:"signature"` // base64url (unpadded) Ed25519 signature over [checkpointMessage]
}

// zeroPrev is the prev of the genesis record.
const zeroPrev = "0000000000000000000000000000000000000000000000000000000000000000"

// checkpointDomain separates checkpoint signatures from any other use of
// the key.
const checkpointDomain = "mcpgate-audit-checkpoint-v1\n"

// chain is the chain's head: the seq and line hash of the last record
// written. It is a value: a sink encodes a batch on a copy and keeps the
// copy only once the batch is written, so the head always matches the
// file.
type chain struct {
	seq  uint64 // of the last record; 0 before genesis
	prev string // hex SHA-256 of the last line; zeroPrev before genesis
}

func newChain() chain { return chain{prev: zeroPrev} }

// encodeBody encodes e as JSON without its Seq and Prev: the bytes that
// follow `"prev":"…"` in the line, exactly what json.Marshal gives there
// (encode.go). It runs on the caller's goroutine, so the sink never
// touches the caller's Event, and allocates only the body it returns.
func encodeBody(e *Event) ([]byte, error) {
	if e.Kind == KindCheckpoint || e.Checkpoint != nil {
		return nil, errors.New("audit: checkpoint records are written by the sink, not by callers")
	}
	// One allocation for a usual record (a few hundred bytes); a larger
	// one grows as append grows it.
	body, err := appendEventBody(make([]byte, 0, 1024), e)
	switch {
	case err != nil:
		return nil, fmt.Errorf("audit: encode: %w", err)
	case len(body)+lineOverhead > MaxRecordBytes:
		return nil, fmt.Errorf("%w: %d bytes, at most %d (request %q)", ErrRecordTooLarge, len(body)+lineOverhead, MaxRecordBytes, short(e.RequestID))
	}
	return body, nil
}

// appendRecord appends the line for body (from encodeBody), followed by
// "\n", to dst and advances the chain. It returns the record's seq and
// prev. The line is byte for byte what json.Marshal gives for the Event
// with Seq and Prev set.
func (c *chain) appendRecord(dst, body []byte) ([]byte, uint64, string) {
	seq, prev := c.seq+1, c.prev
	start := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"prev":"`...)
	dst = append(dst, prev...)
	dst = append(dst, '"')
	dst = append(dst, body...)
	c.link(dst[start:], seq)
	return append(dst, '\n'), seq, prev
}

// link makes line (without "\n") the chain's head.
func (c *chain) link(line []byte, seq uint64) {
	sum := sha256.Sum256(line)
	c.seq, c.prev = seq, hex.EncodeToString(sum[:])
}

// appendCheckpoint appends a checkpoint record signed with key to dst and
// advances the chain. t is converted to UTC.
func (c *chain) appendCheckpoint(dst []byte, t time.Time, key ed25519.PrivateKey, keyID, reason string) ([]byte, error) {
	seq := c.seq + 1
	t = t.UTC()
	sig := ed25519.Sign(key, checkpointMessage(seq, c.prev, t, keyID, reason))
	line, err := checkpointLine(seq, c.prev, t, keyID, reason, base64.RawURLEncoding.EncodeToString(sig))
	if err != nil {
		return dst, err
	}
	c.link(line, seq)
	dst = append(dst, line...)
	return append(dst, '\n'), nil
}

// logCheckpoint logs a checkpoint just written, c being the chain's head
// after it: its hash is an anchor an operator can ship elsewhere (a
// checkpoint whose hash was shipped cannot be replaced unnoticed, even by
// someone holding the signing key).
func logCheckpoint(log *slog.Logger, c chain, reason, keyID string) {
	log.Info("audit checkpoint", "seq", c.seq, "reason", reason, "hash", c.prev, "key_id", keyID)
}

// checkpointLine is the exact line (without "\n") of a checkpoint record.
func checkpointLine(seq uint64, prev string, t time.Time, keyID, reason, sig string) ([]byte, error) {
	b, err := json.Marshal(&Event{
		Seq: seq, Prev: prev, Time: t, Kind: KindCheckpoint, Decision: DecisionCheckpoint,
		Checkpoint: &Checkpoint{KeyID: keyID, Reason: reason, Signature: sig},
	})
	if err != nil {
		return nil, fmt.Errorf("audit: encode checkpoint: %w", err)
	}
	return b, nil
}

// checkpointMessage is the byte string a checkpoint signs.
func checkpointMessage(seq uint64, prev string, t time.Time, keyID, reason string) []byte {
	var b []byte
	b = append(b, checkpointDomain...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, '\n')
	b = append(b, prev...)
	b = append(b, '\n')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '\n')
	b = append(b, keyID...)
	b = append(b, '\n')
	return append(b, reason...)
}

// KeyID identifies an Ed25519 public key: the first 16 hex digits of the
// SHA-256 of its 32 raw bytes. It is derived, so a verifier matches a
// checkpoint to a given public key without configuration.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// LoadSigningKey reads a PKCS #8 PEM ("PRIVATE KEY") Ed25519 private key
// with [secret.ReadFile], which refuses a file accessible by other users.
// Errors name the file and the problem, never the key's bytes.
func LoadSigningKey(path string) (ed25519.PrivateKey, error) {
	b, err := secret.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	key, err := parsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key %s %w", path, err)
	}
	return key, nil
}

// LoadPublicKey reads an Ed25519 public key for verification: a PEM
// "PUBLIC KEY" (PKIX), or a PEM private key whose public part is taken.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: public key: %w", err)
	}
	pub, err := parsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("audit: public key %s %w", path, err)
	}
	return pub, nil
}

// parsePrivateKey parses exactly one PEM PKCS #8 Ed25519 private key.
// Errors (completing "key <path> …") describe, never quote.
func parsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	block, err := onePEM(data)
	if err != nil {
		return nil, err
	}
	switch block.Type {
	case "PRIVATE KEY":
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("holds an encrypted private key; store it unencrypted, protected by file permissions")
	default:
		return nil, fmt.Errorf("holds a PEM %q block, want a PKCS #8 \"PRIVATE KEY\"", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("cannot be parsed as PKCS #8: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("holds a %s key, want Ed25519", keyType(k))
	}
	return key, nil
}

// parsePublicKey parses a PEM public key or takes the public part of a PEM
// private key.
func parsePublicKey(data []byte) (ed25519.PublicKey, error) {
	block, err := onePEM(data)
	if err != nil {
		return nil, err
	}
	var k any
	switch block.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("holds a PEM %q block, want \"PUBLIC KEY\" or \"PRIVATE KEY\"", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot be parsed: %w", err)
	}
	switch k := k.(type) {
	case ed25519.PublicKey:
		return k, nil
	case ed25519.PrivateKey:
		return k.Public().(ed25519.PublicKey), nil
	default:
		return nil, fmt.Errorf("holds a %s key, want Ed25519", keyType(k))
	}
}

// onePEM returns the only PEM block in data.
func onePEM(data []byte) (*pem.Block, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("is not PEM")
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, errors.New("holds more than one PEM block")
	}
	return block, nil
}

func keyType(k any) string {
	return strings.TrimPrefix(fmt.Sprintf("%T", k), "*")
}

// signer holds the checkpoint signing key, re-read when its file changes
// (a rotated key takes effect at the next checkpoint). If the changed file
// cannot be used, the last good key keeps signing and the problem is
// logged: refusing to write audit records would deny every request.
type signer struct {
	file *secret.File
	log  *slog.Logger

	mu      sync.Mutex // guards the fields below
	version uint64
	key     ed25519.PrivateKey
	id      string
	failed  string // last reload error logged, to log each problem once
}

// newSigner loads the key at path; "" means no checkpoints (nil, nil).
func newSigner(path string, now func() time.Time, log *slog.Logger) (*signer, error) {
	if path == "" {
		return nil, nil
	}
	key, err := LoadSigningKey(path)
	if err != nil {
		return nil, err
	}
	f, err := secret.Watch(path, secret.WithClock(now))
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	_, version, _ := f.Current()
	return &signer{file: f, log: log, version: version, key: key, id: KeyID(key.Public().(ed25519.PublicKey))}, nil
}

// current returns the key to sign with and its id.
func (s *signer) current() (ed25519.PrivateKey, string) {
	b, version, err := s.file.Current()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		s.logOnce("audit: signing key file cannot be read; checkpoints keep using the last good key", err)
	case version != s.version:
		key, perr := parsePrivateKey(b)
		if perr != nil {
			s.logOnce("audit: signing key file changed and cannot be used; checkpoints keep using the last good key",
				fmt.Errorf("key %s %w", s.file.Path(), perr))
			break
		}
		s.version, s.key, s.failed = version, key, ""
		s.id = KeyID(key.Public().(ed25519.PublicKey))
		s.log.Info("audit: checkpoint signing key reloaded", "file", s.file.Path(), "key_id", s.id)
	default:
		s.failed = ""
	}
	return s.key, s.id
}

func (s *signer) logOnce(msg string, err error) {
	if e := err.Error(); e != s.failed {
		s.failed = e
		s.log.Error(msg, "file", s.file.Path(), "key_id", s.id, "error", err)
	}
}
