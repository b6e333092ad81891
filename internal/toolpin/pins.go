package toolpin

import (
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is a route's tool-pinning mode.
type Mode string

// The modes.
const (
	// ModeOff: definitions are neither observed nor checked.
	ModeOff Mode = "off"
	// ModeAlert: changes are recorded and flagged (audit, metrics); calls
	// proceed.
	ModeAlert Mode = "alert"
	// ModeBlock: a changed tool (and, where configured, a tool without a
	// pin) is refused until an operator approves it.
	ModeBlock Mode = "block"
)

// Valid reports whether m is one of the modes.
func (m Mode) Valid() bool { return m == ModeOff || m == ModeAlert || m == ModeBlock }

// Status is what the pins say about a route's tool.
type Status int

// The statuses. The zero value is Unknown.
const (
	// Unknown: the tool has no pin: never observed, or observed on a
	// route that does not trust first use and not yet approved.
	Unknown Status = iota
	// Pinned: the latest observed definition is the pinned one (or the
	// tool was approved ahead of being observed).
	Pinned
	// Changed: the latest observed definition differs from the pin and
	// has not been approved.
	Changed
)

// String returns "unknown", "pinned" or "changed".
func (s Status) String() string {
	switch s {
	case Pinned:
		return "pinned"
	case Changed:
		return "changed"
	default:
		return "unknown"
	}
}

// Decide returns the decision for a call to a tool in status st on a route
// in mode: nil (proceed), [ErrChanged] or [ErrUnknown]. Only ModeBlock
// refuses; refuseUnknown makes it refuse Unknown tools too. An invalid
// mode yields [ErrMode] (fail closed).
func Decide(mode Mode, st Status, refuseUnknown bool) error {
	switch mode {
	case ModeOff, ModeAlert:
		return nil
	case ModeBlock:
		switch {
		case st == Changed:
			return ErrChanged
		case st == Unknown && refuseUnknown:
			return ErrUnknown
		case st == Pinned || st == Unknown:
			return nil
		}
		return ErrUnknown
	}
	return fmt.Errorf("%w: %q", ErrMode, string(mode))
}

// Source says how a pin was made.
type Source string

// The sources.
const (
	SourceFirstUse Source = "first_use" // trusted on first use
	SourceApproved Source = "approved"  // approved by an operator
)

// Change is a tool whose definition is not (or was not, until this
// observation) covered by a pin.
type Change struct {
	Route string
	Tool  string
	// Old is the pinned fingerprint; "" when the tool had no pin.
	Old string
	// New is the fingerprint just observed (in Pending: the latest
	// observed, awaiting approval).
	New string
	// FirstSeen: the tool had no pin. If its route trusts first use, it
	// is now pinned to New; otherwise it awaits approval.
	FirstSeen bool
	// Repeated: New was already the latest observed definition before
	// this observation, so this change was reported before. Count and
	// alert on changes that are not Repeated.
	Repeated bool
}

// Entry is the recorded state of one route's tool, as [Pins.Entries] and
// [ListFile] report it.
type Entry struct {
	Route  string
	Tool   string
	Status Status
	// Pin is the accepted fingerprint ("" when none), made as PinSource
	// says at PinnedAt.
	Pin       string
	PinSource Source
	PinnedAt  time.Time
	// Observed is the latest fingerprint seen in a tools/list result
	// ("" for a tool approved before it was observed), first seen at
	// ObservedAt.
	Observed   string
	ObservedAt time.Time
	// Definition is the canonical JSON (without _meta) of the observed
	// definition while it awaits approval, for an operator to review.
	// nil when nothing awaits approval, or when the definition was larger
	// than 64 KiB or the 32 MiB kept for all definitions was used up.
	Definition json.RawMessage
}

// Config configures [New].
type Config struct {
	// File is the JSON file where pins and approvals persist (format in
	// the package documentation). It is created, mode 0600, if missing;
	// it is always replaced atomically (temporary file, fsync, rename)
	// under an advisory lock on File+".lock". A file that is group or
	// world writable is refused. Default "": pins are kept in memory only
	// and lost on restart.
	File string
	// Now is the clock for the times recorded. Default time.Now.
	Now func() time.Time
	// Logger receives pin changes (warn), approvals applied and
	// persistence failures. Default: discard.
	Logger *slog.Logger
	// MaxTools bounds the pins kept in all. Observing a list that would
	// exceed it fails with ErrTooMany and records nothing. Default 0 →
	// 100000.
	MaxTools int
	// MaxToolsPerRoute bounds the pins kept for one route, so one
	// upstream cannot use up MaxTools for the others. Default 0 → 10000,
	// and never more than MaxTools.
	MaxToolsPerRoute int
	// TrustFirstUse reports whether route pins a tool's first observed
	// definition (trust on first use). When it returns false, a new tool
	// stays Unknown and pending until approved. Default nil: every route
	// trusts first use.
	TrustFirstUse func(route string) bool
}

// Bounds on definitions kept for review.
const (
	maxDefinitionBytes = 64 << 10
	maxDefinitionTotal = 32 << 20
)

type key struct{ route, tool string }

// rawSum is the SHA-256 of a definition exactly as an upstream sent it.
type rawSum [sha256.Size]byte

// rawKey finds the memo of a route's raw definition bytes.
type rawKey struct {
	route string
	sum   rawSum
}

// rawFact is what a definition's raw bytes were found to be: the tool
// named tool with the fingerprint fingerprint. It depends on the bytes
// alone, so a memo never goes stale; it is only forgotten.
type rawFact struct{ tool, fingerprint string }

// entry is the in-memory state of one route's tool.
type entry struct {
	pin        string
	source     Source
	pinnedAt   time.Time
	observed   string
	observedAt time.Time
	definition []byte // canonical JSON of observed while it awaits approval

	// raw is the SHA-256 of the raw bytes of the tool's latest observed
	// definition that was canonicalized, and rawFP their fingerprint (""
	// when none is remembered). One per tool: put keeps byRaw in step.
	raw   rawSum
	rawFP string
}

func (e entry) status() Status {
	switch {
	case e.pin == "":
		return Unknown
	case e.observed != "" && e.observed != e.pin:
		return Changed
	default:
		return Pinned
	}
}

func (e entry) awaitsApproval() bool { return e.observed != "" && e.observed != e.pin }

// Pins records the fingerprints of upstream tool definitions per route and
// reports when they change. It is safe for concurrent use. Status never
// waits for file I/O.
type Pins struct {
	file          string
	now           func() time.Time
	logger        *slog.Logger
	maxTools      int
	maxPerRoute   int
	trustFirstUse func(string) bool

	// writeMu serialises every mutation and every write of the file. It
	// is held across file I/O and is never taken by Status.
	writeMu sync.Mutex

	mu       sync.RWMutex // guards the fields below; mutators also hold writeMu
	entries  map[key]entry
	perRoute map[string]int
	defBytes int // bytes of definitions kept
	// byRaw indexes the entries' raw memos: a definition whose raw bytes
	// are remembered is not canonicalized again. It holds at most one
	// memo per entry.
	byRaw map[rawKey]rawFact

	// canonicalized counts the definitions Observe canonicalized (for
	// tests: the memo's hits do not count).
	canonicalized atomic.Int64
}

// New validates cfg and returns the pins, loaded from cfg.File when it
// exists (a corrupt or insecure file is an error: mcpgate refuses to start
// rather than forget its pins) and created empty when it does not.
// Approvals recorded in the file are applied.
func New(cfg Config) (*Pins, error) {
	var errs []error
	if cfg.MaxTools < 0 {
		errs = append(errs, errors.New("max tools must not be negative"))
	}
	if cfg.MaxToolsPerRoute < 0 {
		errs = append(errs, errors.New("max tools per route must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("toolpin: %w", err)
	}
	p := &Pins{
		file:          cfg.File,
		now:           cfg.Now,
		logger:        cfg.Logger,
		maxTools:      cmp.Or(cfg.MaxTools, 100000),
		maxPerRoute:   cmp.Or(cfg.MaxToolsPerRoute, 10000),
		trustFirstUse: cfg.TrustFirstUse,
		entries:       make(map[key]entry),
		perRoute:      make(map[string]int),
		byRaw:         make(map[rawKey]rawFact),
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	p.maxPerRoute = min(p.maxPerRoute, p.maxTools)
	if p.trustFirstUse == nil {
		p.trustFirstUse = func(string) bool { return true }
	}
	if p.file == "" {
		return p, nil
	}
	unlock, err := lockFile(p.file, lockTimeout)
	if err != nil {
		return nil, fmt.Errorf("toolpin: %w", err)
	}
	defer unlock()
	doc, err := readFile(p.file)
	switch {
	case errors.Is(err, errNoFile):
		if err := writeFile(p.file, &fileDoc{Version: fileVersion}); err != nil {
			return nil, fmt.Errorf("toolpin: create %s: %w", p.file, err)
		}
		return p, nil
	case err != nil:
		return nil, fmt.Errorf("toolpin: %w", err)
	}
	for _, t := range doc.tools {
		if err := p.checkRoom(t.k.route, 1); err != nil {
			return nil, fmt.Errorf("toolpin: %s: %w", p.file, err)
		}
		p.put(t.k, t.e)
	}
	if err := p.applyApprovals(doc.approvals); err != nil {
		return nil, fmt.Errorf("toolpin: %s: %w", p.file, err)
	}
	return p, nil
}

// Status tells whether a call to route's tool may proceed: Pinned, Changed
// or Unknown (see [Decide]).
func (p *Pins) Status(route, tool string) Status {
	p.mu.RLock()
	e, ok := p.entries[key{route, tool}]
	p.mu.RUnlock()
	if !ok {
		return Unknown
	}
	return e.status()
}

// Pending lists the tools whose latest observed definition awaits
// approval (Changed, or first seen on a route that does not trust first
// use), sorted by route and tool.
func (p *Pins) Pending() []Change {
	p.mu.RLock()
	var out []Change
	for k, e := range p.entries {
		if e.awaitsApproval() {
			out = append(out, Change{Route: k.route, Tool: k.tool, Old: e.pin, New: e.observed, FirstSeen: e.pin == ""})
		}
	}
	p.mu.RUnlock()
	slices.SortFunc(out, func(a, b Change) int {
		return cmp.Or(cmp.Compare(a.Route, b.Route), cmp.Compare(a.Tool, b.Tool))
	})
	return out
}

// Entries returns every recorded tool, sorted by route and tool.
func (p *Pins) Entries() []Entry {
	p.mu.RLock()
	out := make([]Entry, 0, len(p.entries))
	for k, e := range p.entries {
		out = append(out, exportEntry(k, e))
	}
	p.mu.RUnlock()
	sortEntries(out)
	return out
}

func exportEntry(k key, e entry) Entry {
	return Entry{
		Route: k.route, Tool: k.tool, Status: e.status(),
		Pin: e.pin, PinSource: e.source, PinnedAt: e.pinnedAt,
		Observed: e.observed, ObservedAt: e.observedAt,
		Definition: json.RawMessage(e.definition),
	}
}

func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Route, b.Route), cmp.Compare(a.Tool, b.Tool))
	})
}

// checkRoom reports whether n more tools fit on route. Callers hold
// writeMu.
func (p *Pins) checkRoom(route string, n int) error {
	if len(p.entries)+n > p.maxTools {
		return fmt.Errorf("%w: more than %d in all", ErrTooMany, p.maxTools)
	}
	if p.perRoute[route]+n > p.maxPerRoute {
		return fmt.Errorf("%w: more than %d on route %s", ErrTooMany, p.maxPerRoute, quote(route))
	}
	return nil
}

// put stores e under k, keeping the counters and the index of raw memos,
// and drops a definition that does not fit the bounds. Callers hold writeMu; put takes mu.
func (p *Pins) put(k key, e entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old, ok := p.entries[k]
	if !ok {
		p.perRoute[k.route]++
	}
	p.defBytes -= len(old.definition)
	if !e.awaitsApproval() || len(e.definition) > maxDefinitionBytes || p.defBytes+len(e.definition) > maxDefinitionTotal {
		e.definition = nil
	}
	p.defBytes += len(e.definition)
	if old.rawFP != "" && (e.rawFP == "" || old.raw != e.raw) {
		delete(p.byRaw, rawKey{k.route, old.raw})
	}
	if e.rawFP != "" && (old.raw != e.raw || old.rawFP != e.rawFP) {
		p.byRaw[rawKey{k.route, e.raw}] = rawFact{k.tool, e.rawFP}
	}
	p.entries[k] = e
}
