package revoke

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mcpgate/mcpgate/internal/redisconn"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrInvalid: an entry or the Config failed validation. The message
	// lists every problem.
	ErrInvalid = errors.New("invalid revocation")
	// ErrExpired: the entry's Until is not in the future (the token has
	// expired already). It comes joined with ErrInvalid.
	ErrExpired = errors.New("revocation already expired")
	// ErrFull: the list holds MaxEntries live entries (or the file would
	// grow past its size bound); nothing was added.
	ErrFull = errors.New("revocation list full")
	// ErrCorrupt: the file cannot be read as a version 1 revocation file.
	ErrCorrupt = errors.New("corrupt revocation file")
	// ErrInsecureFile: the file or its lock file may be written by users
	// other than its owner (group or world writable).
	ErrInsecureFile = errors.New("revocation file writable by group or others")
	// ErrLocked: another process held the file's lock for longer than the
	// lock timeout.
	ErrLocked = errors.New("revocation file locked")
)

// Bounds and defaults.
const (
	// DefaultMaxTokenLifetime is Config.MaxTokenLifetime when zero.
	DefaultMaxTokenLifetime = 24 * time.Hour
	// DefaultMaxEntries is Config.MaxEntries when zero.
	DefaultMaxEntries = 100000
	// MaxValueBytes bounds Entry.Issuer and Entry.Value.
	MaxValueBytes = 1024
	// MaxReasonChars bounds Entry.Reason, in characters (runes).
	MaxReasonChars = 256
	// MaxClockSkew is how far in the future an entry's NotBefore may be.
	MaxClockSkew = time.Minute

	maxTokenLifetime = 10 * 365 * 24 * time.Hour
	maxEntriesLimit  = 1000000
)

// Config configures a List. The zero value is usable: an in-memory list
// with the defaults.
type Config struct {
	// MaxTokenLifetime is the longest lifetime of an access token the
	// gateway accepts (default 24h, at most 10 years). It is how long a
	// subject or client entry lives past its NotBefore, and how long a jti
	// entry lives when the token's expiry is not known.
	MaxTokenLifetime time.Duration
	// MaxEntries bounds the entries Add accepts (default 100000, at most
	// 1000000). When full, Add refuses new keys with ErrFull rather than
	// evict a live revocation. A file holding more is still loaded whole:
	// dropping revocations would fail open.
	MaxEntries int
	// File, when set, is the JSON file the list is kept in (see the package
	// documentation).
	File string
	// Redis, when set, shares the list between replicas through Redis
	// (see Sync). Not together with File.
	Redis *redisconn.Conn
	// SyncInterval is how often a shared list is synced in the background
	// (to end the streams of tokens revoked on another replica without
	// waiting for a request). 0 → 1s.
	SyncInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives one record per change (default: discard). Values
	// (jti, sub, client_id) are logged as a short SHA-256 hash.
	Logger *slog.Logger
}

// Kind is what an entry revokes by.
type Kind string

// The kinds.
const (
	// KindJTI revokes the one token of an issuer with that jti.
	KindJTI Kind = "jti"
	// KindSubject revokes the tokens of an issuer's subject (sub) issued
	// before NotBefore.
	KindSubject Kind = "subject"
	// KindClient revokes the tokens of an issuer's client (client_id)
	// issued before NotBefore.
	KindClient Kind = "client"
)

// Valid reports whether k is one of the kinds.
func (k Kind) Valid() bool {
	_, ok := kindIndex(k)
	return ok
}

// Entry is one revocation. Its key is Kind, Issuer and Value.
type Entry struct {
	Kind   Kind   `json:"kind"`
	Issuer string `json:"issuer"`
	// Value is the jti, sub or client_id, compared exactly.
	Value string `json:"value"`
	// NotBefore: tokens issued (iat) strictly before it are revoked.
	// Subject and client entries only; zero for jti entries.
	NotBefore time.Time `json:"not_before,omitzero"`
	// Until is when the entry expires and is dropped.
	Until time.Time `json:"until"`
	// Created is when the entry was first added (set by Add).
	Created time.Time `json:"created,omitzero"`
	// Reason is the operator's free text: at most 256 characters, no
	// control characters.
	Reason string `json:"reason,omitempty"`
}

// Token is what Check needs of a validated access token.
type Token struct {
	Issuer, JTI, Subject, ClientID string
	// IssuedAt is the iat claim, zero when the token had none.
	IssuedAt time.Time
}

// List is the revocation list. Its methods are safe for concurrent use.
type List struct {
	file       string
	lifetime   time.Duration
	maxEntries int
	now        func() time.Time
	logger     *slog.Logger

	snap atomic.Pointer[set] // published sets are immutable
	mu   sync.Mutex          // serializes writers

	subMu   sync.Mutex
	subs    map[uint64]func(Entry)
	nextSub uint64

	// beforeRename, when set (tests), runs before the temporary file
	// replaces the file; an error fails the write.
	beforeRename func() error

	// A shared list (Config.Redis).
	rc          *redisconn.Conn
	sharedVer   atomic.Pointer[string]    // the shared version of snap
	docStamps   redisconn.Stamps          // the highest write stamp of the shared list seen
	floor       atomic.Pointer[time.Time] // the epoch's start (KindEpoch)
	cancelEpoch func()
	stop, done  chan struct{}
	closeOnce   sync.Once
}

// New validates cfg and returns a List, loaded from cfg.File when set (a
// missing file is created empty; a corrupt or insecure one is an error).
func New(cfg Config) (*List, error) {
	var errs []error
	if cfg.MaxTokenLifetime < 0 || cfg.MaxTokenLifetime > maxTokenLifetime {
		errs = append(errs, fmt.Errorf("MaxTokenLifetime %v: want between 0 (default %v) and %v", cfg.MaxTokenLifetime, DefaultMaxTokenLifetime, maxTokenLifetime))
	}
	if cfg.MaxEntries < 0 || cfg.MaxEntries > maxEntriesLimit {
		errs = append(errs, fmt.Errorf("MaxEntries %d: want between 0 (default %d) and %d", cfg.MaxEntries, DefaultMaxEntries, maxEntriesLimit))
	}
	if cfg.File != "" && cfg.Redis != nil {
		errs = append(errs, errors.New("set File or Redis, not both: one place shares the list"))
	}
	if cfg.SyncInterval < 0 {
		errs = append(errs, fmt.Errorf("SyncInterval %v must not be negative", cfg.SyncInterval))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("revoke: config: %w", err)
	}
	l := &List{
		file:       cfg.File,
		lifetime:   cmp.Or(cfg.MaxTokenLifetime, DefaultMaxTokenLifetime),
		maxEntries: cmp.Or(cfg.MaxEntries, DefaultMaxEntries),
		now:        cfg.Now,
		logger:     cfg.Logger,
		subs:       make(map[uint64]func(Entry)),
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	empty := makeSet(0)
	l.snap.Store(&empty)
	if cfg.Redis != nil {
		return l.startShared(cfg.Redis, cmp.Or(cfg.SyncInterval, time.Second))
	}
	if l.file == "" {
		return l, nil
	}
	unlock, err := lockFile(l.file, lockTimeout)
	if err != nil {
		return nil, fmt.Errorf("revoke: %w", err)
	}
	defer unlock()
	m, err := readFile(l.file, l.clock())
	switch {
	case errors.Is(err, errNoFile):
		if err := l.writeFile(empty); err != nil {
			return nil, fmt.Errorf("revoke: create %s: %w", l.file, err)
		}
		return l, nil
	case err != nil:
		return nil, fmt.Errorf("revoke: %w", err)
	}
	l.snap.Store(&m)
	if m.size() > l.maxEntries {
		l.logger.Warn("revocation file holds more entries than MaxEntries; new revocations will be refused", "file", l.file, "entries", m.size(), "max_entries", l.maxEntries)
	}
	return l, nil
}

// clock returns now, in UTC, without a monotonic reading.
func (l *List) clock() time.Time { return l.now().Round(0).UTC() }

// Check reports whether the token is revoked and by which entry: a jti
// entry of its issuer and jti, or a subject or client entry of its issuer
// and sub or client_id whose NotBefore is after the token's iat (or the
// token has no iat). Entries are tried in that order. Check does not
// allocate and takes no lock.
func (l *List) Check(t Token) (Entry, bool) {
	s := l.snap.Load()
	if t.Issuer == "" {
		return Entry{}, false
	}
	if l.rc != nil {
		if e, ok := l.checkFloor(t); ok {
			return e, true
		}
	}
	if t.JTI != "" {
		if e := s[ixJTI][ikey{t.Issuer, t.JTI}]; e != nil && l.live(e) {
			return *e, true
		}
	}
	if t.Subject != "" {
		if e := s[ixSubject][ikey{t.Issuer, t.Subject}]; e != nil && issuedBefore(t.IssuedAt, e.NotBefore) && l.live(e) {
			return *e, true
		}
	}
	if t.ClientID != "" {
		if e := s[ixClient][ikey{t.Issuer, t.ClientID}]; e != nil && issuedBefore(t.IssuedAt, e.NotBefore) && l.live(e) {
			return *e, true
		}
	}
	return Entry{}, false
}

// issuedBefore: a token without iat counts as issued before anything.
func issuedBefore(iat, notBefore time.Time) bool {
	return iat.IsZero() || iat.Before(notBefore)
}

func (l *List) live(e *Entry) bool { return l.now().Before(e.Until) }

// Len returns the number of entries held, counting expired ones not yet
// swept.
func (l *List) Len() int { return l.snap.Load().size() }

// List returns the live entries sorted by kind, issuer and value.
func (l *List) List() []Entry {
	now := l.clock()
	s := l.snap.Load()
	out := make([]Entry, 0, s.size())
	for _, e := range s.all() {
		if now.Before(e.Until) {
			out = append(out, *e)
		}
	}
	slices.SortFunc(out, compareEntries)
	return out
}

func compareEntries(a, b Entry) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Issuer, b.Issuer), cmp.Compare(a.Value, b.Value))
}

// Subscribe registers fn to be called, after the change is in effect, with
// every entry an Add created or changed and every entry a Reload brought in
// or tightened (see the package documentation). fn runs on the writer's
// goroutine, outside any lock of the List; it may call the List. cancel
// unregisters fn.
func (l *List) Subscribe(fn func(Entry)) (cancel func()) {
	l.subMu.Lock()
	id := l.nextSub
	l.nextSub++
	l.subs[id] = fn
	l.subMu.Unlock()
	return func() {
		l.subMu.Lock()
		delete(l.subs, id)
		l.subMu.Unlock()
	}
}

func (l *List) notify(entries []Entry) {
	if len(entries) == 0 {
		return
	}
	l.subMu.Lock()
	fns := slices.Collect(maps.Values(l.subs))
	l.subMu.Unlock()
	for _, e := range entries {
		for _, fn := range fns {
			fn(e)
		}
	}
}

// Add validates e and adds it, or merges it into the entry of the same key:
// the later NotBefore and the later Until win, Created stays the first, and
// a non-empty Reason replaces the old one. It returns the entry as stored.
//
// Defaults: a subject or client entry's NotBefore is now, and its Until at
// least NotBefore + MaxTokenLifetime; a jti entry's Until is now +
// MaxTokenLifetime. Created is set to now.
//
// With a file, the change is written (under the file lock, on top of the
// file's current content) before it takes effect; any error leaves the
// list as it was.
func (l *List) Add(e Entry) (Entry, error) {
	now := l.clock()
	e, err := l.prepare(e, now)
	if err != nil {
		return Entry{}, fmt.Errorf("revoke: %w", err)
	}
	k := keyOf(&e)
	var stored Entry
	var changed []Entry
	err = l.update(now, func(s set) error {
		old, ok := s.get(k)
		if !ok && s.size() >= l.maxEntries {
			return fmt.Errorf("%w (%d entries)", ErrFull, s.size())
		}
		if ok {
			e = merge(*old, e)
		}
		stored = e
		s.put(&stored)
		return nil
	}, &changed)
	if err != nil {
		return Entry{}, fmt.Errorf("revoke: add: %w", err)
	}
	l.logger.Info("token revocation added", logAttrs(stored)...)
	// The added entry always, first; then what the file brought in.
	changed = slices.DeleteFunc(changed, func(c Entry) bool { return keyOf(&c) == k })
	l.notify(append([]Entry{stored}, changed...))
	return stored, nil
}

// merge combines an existing entry with a new one of the same key.
func merge(old, e Entry) Entry {
	if old.NotBefore.After(e.NotBefore) {
		e.NotBefore = old.NotBefore
	}
	if old.Until.After(e.Until) {
		e.Until = old.Until
	}
	if !old.Created.IsZero() && (e.Created.IsZero() || old.Created.Before(e.Created)) {
		e.Created = old.Created
	}
	if e.Reason == "" {
		e.Reason = old.Reason
	}
	return e
}

// Remove deletes the entry of that key and reports whether a live one was
// there. With a file, the removal is written before it takes effect; on
// error the list is unchanged.
func (l *List) Remove(kind Kind, issuer, value string) (bool, error) {
	i, ok := kindIndex(kind)
	if !ok {
		return false, fmt.Errorf("revoke: %w: unknown kind %s", ErrInvalid, quote(string(kind)))
	}
	k := key{i, issuer, value}
	var found bool
	var changed []Entry
	err := l.update(l.clock(), func(s set) error {
		_, found = s.get(k)
		if !found {
			return errUnchanged
		}
		s.remove(k)
		return nil
	}, &changed)
	if err != nil {
		return false, fmt.Errorf("revoke: remove: %w", err)
	}
	if found {
		l.logger.Info("token revocation removed", "kind", string(kind), "issuer", issuer, "value_sha256", hashValue(value))
	}
	l.notify(changed)
	return found, nil
}

// errUnchanged, returned by an update's apply function, means there is
// nothing to write: the base set is published as it is.
var errUnchanged = errors.New("unchanged")

// update runs one writer's change: it takes the base set (the file's,
// under its lock, or memory's), drops expired entries, lets apply change a
// copy, writes it to the file, publishes it, and collects in *changed the
// entries that are new or tightened compared with the previous snapshot.
func (l *List) update(now time.Time, apply func(set) error, changed *[]Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rc != nil {
		return l.updateShared(now, apply, changed)
	}
	prev := *l.snap.Load()
	base := prev
	if l.file != "" {
		unlock, err := lockFile(l.file, lockTimeout)
		if err != nil {
			return err
		}
		defer unlock()
		m, err := readFile(l.file, now)
		switch {
		case errors.Is(err, errNoFile):
			// Deleted behind our back: rewrite it from memory rather than
			// forget revocations.
			l.logger.Warn("revocation file missing; rewriting it from memory", "file", l.file)
		case err != nil:
			return err
		default:
			base = m
		}
	}
	next := base.liveCopy(now)
	err := apply(next)
	switch {
	case errors.Is(err, errUnchanged):
	case err != nil:
		return err
	case l.file != "":
		if err := l.writeFile(next); err != nil {
			return err
		}
	}
	l.snap.Store(&next)
	*changed = diff(prev, next)
	return nil
}

// diff returns, sorted, the entries of next that prev lacks or that have a
// later NotBefore in next.
func diff(prev, next set) []Entry {
	var out []Entry
	for k, e := range next.all() {
		if old, ok := prev.get(k); !ok || e.NotBefore.After(old.NotBefore) {
			out = append(out, *e)
		}
	}
	slices.SortFunc(out, compareEntries)
	return out
}

// Sweep drops the entries expired at now from memory and returns how many
// it dropped. The file keeps them until its next write (readers skip
// them).
func (l *List) Sweep(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev := *l.snap.Load()
	n := 0
	for _, e := range prev.all() {
		if !now.Before(e.Until) {
			n++
		}
	}
	if n == 0 {
		return 0
	}
	next := prev.liveCopy(now)
	l.snap.Store(&next)
	return n
}

// Reload replaces the in-memory set with the file's, for when another
// replica or the CLI wrote it. A missing, unreadable, insecure or corrupt
// file is an error and the set stays as it was. Without a file, Reload
// does nothing.
func (l *List) Reload() error {
	if l.rc != nil {
		return l.Sync(context.Background())
	}
	if l.file == "" {
		return nil
	}
	var changed []Entry
	err := func() error {
		l.mu.Lock() // so a concurrent Add's publication is not undone
		defer l.mu.Unlock()
		m, err := readFile(l.file, l.clock())
		if err != nil {
			return err
		}
		prev := *l.snap.Load()
		l.snap.Store(&m)
		changed = diff(prev, m)
		l.logger.Info("revocation list reloaded", "file", l.file, "entries", m.size(), "new", len(changed))
		if m.size() > l.maxEntries {
			l.logger.Warn("revocation file holds more entries than MaxEntries; new revocations will be refused", "file", l.file, "entries", m.size(), "max_entries", l.maxEntries)
		}
		return nil
	}()
	if err != nil {
		return fmt.Errorf("revoke: reload: %w", err)
	}
	l.notify(changed)
	return nil
}

// prepare validates an entry given to Add and fills in its defaults.
func (l *List) prepare(e Entry, now time.Time) (Entry, error) {
	e.NotBefore = e.NotBefore.Round(0).UTC()
	e.Until = e.Until.Round(0).UTC()
	e.Created = now
	errs := checkKey(e)
	switch e.Kind {
	case KindJTI:
		if !e.NotBefore.IsZero() {
			errs = append(errs, errors.New("not_before applies to subject and client entries only"))
		}
		if e.Until.IsZero() {
			e.Until = now.Add(l.lifetime)
		}
	case KindSubject, KindClient:
		if e.NotBefore.IsZero() {
			e.NotBefore = now
		}
		if e.NotBefore.After(now.Add(MaxClockSkew)) {
			errs = append(errs, fmt.Errorf("not_before %s is more than %v in the future", e.NotBefore.Format(time.RFC3339), MaxClockSkew))
		}
		if min := e.NotBefore.Add(l.lifetime); e.Until.Before(min) {
			e.Until = min
		}
	}
	if e.Kind.Valid() && !e.Until.After(now) {
		errs = append(errs, fmt.Errorf("%w: until %s is not in the future", ErrExpired, e.Until.Format(time.RFC3339)))
	}
	errs = append(errs, checkTimes(e)...)
	errs = append(errs, checkReason(e.Reason)...)
	if len(errs) > 0 {
		return Entry{}, fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return e, nil
}

// checkKey validates kind, issuer and value.
func checkKey(e Entry) []error {
	var errs []error
	if !e.Kind.Valid() {
		errs = append(errs, fmt.Errorf("unknown kind %s", quote(string(e.Kind))))
	}
	for _, f := range []struct{ name, v string }{{"issuer", e.Issuer}, {"value", e.Value}} {
		switch {
		case f.v == "":
			errs = append(errs, fmt.Errorf("%s is empty", f.name))
		case len(f.v) > MaxValueBytes:
			errs = append(errs, fmt.Errorf("%s is longer than %d bytes", f.name, MaxValueBytes))
		case !utf8.ValidString(f.v):
			// It would not survive the JSON file.
			errs = append(errs, fmt.Errorf("%s is not valid UTF-8", f.name))
		}
	}
	return errs
}

// checkTimes refuses times the JSON file cannot hold.
func checkTimes(e Entry) []error {
	var errs []error
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"not_before", e.NotBefore}, {"until", e.Until}, {"created", e.Created}} {
		if !f.t.IsZero() && (f.t.Year() < 1 || f.t.Year() > 9999) {
			errs = append(errs, fmt.Errorf("%s out of range", f.name))
		}
	}
	return errs
}

// checkReason: at most MaxReasonChars characters of valid UTF-8, without
// control, line or paragraph separator or bidirectional override
// characters (they would garble logs and terminals).
func checkReason(r string) []error {
	switch {
	case !utf8.ValidString(r):
		return []error{errors.New("reason is not valid UTF-8")}
	case utf8.RuneCountInString(r) > MaxReasonChars:
		return []error{fmt.Errorf("reason is longer than %d characters", MaxReasonChars)}
	}
	for _, c := range r {
		if unicode.IsControl(c) || c == '\u2028' || c == '\u2029' || (c >= '\u202a' && c <= '\u202e') || (c >= '\u2066' && c <= '\u2069') {
			return []error{fmt.Errorf("reason contains control character %U", c)}
		}
	}
	return nil
}

// quote renders operator input for an error message: at most 64 bytes,
// quoted with non-ASCII escaped.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		return fmt.Sprintf("%+q…", s[:cut])
	}
	return fmt.Sprintf("%+q", s)
}

// hashValue identifies a jti, sub or client_id in logs.
func hashValue(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:6])
}

func logAttrs(e Entry) []any {
	a := []any{"kind", string(e.Kind), "issuer", e.Issuer, "value_sha256", hashValue(e.Value), "until", e.Until}
	if !e.NotBefore.IsZero() {
		a = append(a, "not_before", e.NotBefore)
	}
	if e.Reason != "" {
		a = append(a, "reason", e.Reason)
	}
	return a
}
