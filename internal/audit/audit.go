// Package audit defines mcpgate's audit event and the sinks that record it
// (stage 8 of the pipeline).
//
// Every request produces a decision record; a request that is forwarded
// upstream produces it before it is forwarded, and an outcome record after.
// A decision that cannot be recorded is not carried out: the gateway treats
// a Sink error as a denial. Records are JSON lines; strings are escaped by
// encoding/json, so a value can never start a new line (log injection).
// Tokens are never recorded, only their fingerprint.
//
// Tamper evidence (chain.go): every record carries a sequence number and
// the SHA-256 of the previous line, and checkpoint records sign the chain
// with an Ed25519 key, so that [Verify] finds a record that was modified,
// deleted, inserted or reordered. [FileSink] (file.go) writes the chain
// durably (group commit, fsync, rotation, crash repair); [StreamSink]
// writes it to a stream such as stdout. [Writer] is the plain, unchained
// sink kept for tests.
//
// Anchors: each checkpoint written is logged at info level as "audit
// checkpoint" with its seq, reason, key_id and hash (hex SHA-256 of the
// checkpoint's line, the prev of the record after it). Ship these log
// lines to another system: a trail rewritten even by someone holding the
// signing key no longer matches the anchors shipped before.
//
// Limits: a sink refuses a record whose line would exceed
// [MaxRecordBytes] (1 MiB) with [ErrRecordTooLarge], rather than write a
// line that could not be verified; [Verify] reads lines of up to 64 MiB.
//
// Failing closed: a sink that can no longer tell what its stream or file
// holds (a stalled stream, a failed periodic fsync) refuses every later
// record with [ErrBroken] until the process restarts.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Kind is the kind of record.
type Kind string

// Record kinds.
const (
	KindDecision Kind = "decision" // made before a call is forwarded, or for a rejected request
	KindOutcome  Kind = "outcome"  // after a forwarded call finished
	KindAlert    Kind = "alert"    // something an operator should look at (e.g. a changed tool definition)
	// KindCheckpoint is a signed checkpoint, written by the sink itself
	// (never by a caller): see [Checkpoint].
	KindCheckpoint Kind = "checkpoint"
)

// Decision values.
const (
	Allow   = "allow"
	Deny    = "deny"
	StepUp  = "step_up"
	Reject  = "reject"  // refused before a decision could be made (malformed, unauthenticated, limits)
	Error   = "error"   // an internal or upstream failure
	Forward = "forward" // outcome of a forwarded call
	Alert   = "alert"   // an alert record
	// DecisionCheckpoint is the decision of every checkpoint record (the
	// field is always present in a line, so it is filled rather than left
	// empty).
	DecisionCheckpoint = "checkpoint"
)

// Event is one audit record. docs/audit.md documents every field.
type Event struct {
	// Seq and Prev chain the records (see chain.go). They are assigned by
	// a chaining sink ([FileSink], [StreamSink]) and filled into the
	// caller's Event when Write succeeds; a caller's values are ignored.
	// They come first so that a line starts with its position.
	Seq             uint64    `json:"seq"`
	Prev            string    `json:"prev"` // hex SHA-256 of the previous line; 64 zeros for the first record
	Time            time.Time `json:"time"`
	Kind            Kind      `json:"kind"`
	RequestID       string    `json:"request_id"`
	Route           string    `json:"route,omitempty"`
	Upstream        string    `json:"upstream,omitempty"`
	RemoteIP        string    `json:"remote_ip,omitempty"`
	HTTPMethod      string    `json:"http_method,omitempty"`
	ProtocolVersion string    `json:"protocol_version,omitempty"`
	Session         string    `json:"session,omitempty"` // fingerprint of the Mcp-Session-Id
	Issuer          string    `json:"issuer,omitempty"`
	Subject         string    `json:"subject,omitempty"`
	ClientID        string    `json:"client_id,omitempty"`
	Actor           []string  `json:"actor,omitempty"`
	Token           string    `json:"token,omitempty"` // fingerprint, never the token
	Scopes          []string  `json:"scopes,omitempty"`
	Method          string    `json:"method,omitempty"` // JSON-RPC method
	RPCID           string    `json:"rpc_id,omitempty"`
	Tool            string    `json:"tool,omitempty"`
	Prompt          string    `json:"prompt,omitempty"`
	Resource        string    `json:"resource,omitempty"`
	ArgsDigest      string    `json:"args_digest,omitempty"` // SHA-256 of the raw arguments
	// Arguments are the tool arguments after redaction, recorded only
	// with audit.capture_arguments.
	Arguments      json.RawMessage `json:"arguments,omitempty"`
	Decision       string          `json:"decision"`
	Rule           string          `json:"rule,omitempty"`
	Labels         []string        `json:"labels,omitempty"` // the tool's sequence-policy labels
	Reason         string          `json:"reason,omitempty"`
	Status         int             `json:"status,omitempty"`
	RequiredScopes []string        `json:"required_scopes,omitempty"`
	UpstreamStatus int             `json:"upstream_status,omitempty"`
	LatencyMS      float64         `json:"latency_ms,omitempty"`
	UpstreamMS     float64         `json:"upstream_ms,omitempty"` // until the upstream's response headers
	Bytes          int64           `json:"bytes,omitempty"`
	Filtered       int             `json:"filtered,omitempty"` // list items removed by policy
	// CredentialMode and CredentialID name what the upstream received in
	// place of the client's token (mint, exchange, …; the jti or a short
	// hash), never the credential itself.
	CredentialMode string `json:"credential_mode,omitempty"`
	CredentialID   string `json:"credential_id,omitempty"`
	// Findings are the credentials detected in the request's arguments or
	// in what was returned to the client: which detector, what was done,
	// never the value.
	Findings []Finding `json:"findings,omitempty"`
	// Anomalies are the anomaly flags raised for the request
	// (docs/operations.md).
	Anomalies []string `json:"anomalies,omitempty"`
	// Checkpoint is set on KindCheckpoint records only.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
}

// Finding is one detector's matches in one place.
type Finding struct {
	Detector string `json:"detector"`
	Action   string `json:"action"` // redact, block or audit
	Where    string `json:"where"`  // arguments, result, headers
	Count    int    `json:"count"`
}

// Sink records events. Write returns only once the event is recorded as
// far as the sink promises; an error means it was not.
type Sink interface {
	Write(ctx context.Context, e *Event) error
	Close() error
}

// Bounded is implemented by a sink whose Write returns within a bound of
// its own (a write timeout, or because it never waits): a caller need not
// add a deadline to ctx, which costs a timer and a context per record.
type Bounded interface {
	Sink
	// BoundsWrites reports whether Write is bounded.
	BoundsWrites() bool
}

// waitTimer returns a channel that fires after d and a function that
// stops it; a nil channel (wait for ctx alone) when d <= 0. One timer is
// cheaper than a context with a deadline (three objects and a timer).
func waitTimer(d time.Duration) (<-chan time.Time, func() bool) {
	if d <= 0 {
		return nil, func() bool { return false }
	}
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// errWriteTimeout is the cause when a bounded Write gives up waiting.
var errWriteTimeout = fmt.Errorf("audit: write timeout: %w", context.DeadlineExceeded)

// Writer is a Sink writing JSON lines to an io.Writer, one Write call per
// record, serialised.
type Writer struct {
	mu     sync.Mutex // guards w and closed
	w      io.Writer
	c      io.Closer
	closed bool
}

// NewWriter returns a sink writing to w. If w is also an io.Closer, Close
// closes it.
func NewWriter(w io.Writer) *Writer {
	c, _ := w.(io.Closer)
	if w == os.Stdout || w == os.Stderr {
		c = nil
	}
	return &Writer{w: w, c: c}
}

// OpenFile returns a sink appending to the file at path (created 0600).
func OpenFile(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	return NewWriter(f), nil
}

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("audit: sink closed")

// Write encodes e as one JSON line.
func (s *Writer) Write(_ context.Context, e *Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: encode: %w", err)
	}
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("audit: write: %w", err)
	}
	return nil
}

// Close closes the underlying writer if the sink owns it.
func (s *Writer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.c != nil {
		return s.c.Close()
	}
	return nil
}
