// Package session binds MCP sessions, server-to-client requests and tasks
// to the principal that created them (stage 3 of the pipeline).
//
// A session id is never a credential: every request is authenticated on its
// own. What this package adds is ownership. When an upstream assigns an
// Mcp-Session-Id in its initialize response, the gateway records the
// (issuer, subject, client_id) that initialized it and the route; a later
// request carrying that id from anyone else, on any other route, or after
// the binding expired, is told the session does not exist (404), so the
// client starts a new one and learns nothing about other principals'
// sessions. Ids are stored only as SHA-256 hashes.
//
// The same ownership applies to what flows inside a session: a client's
// response to a server request (sampling, elicitation) is accepted only for
// a request the upstream actually sent on that session and not yet
// answered, and a task is usable only by the principal that created it.
//
// The store is in memory and bounded in every dimension; a later store
// shares it between replicas.
package session

import (
	"container/list"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// Principal identifies who owns a session or task.
type Principal struct {
	Issuer, Subject, ClientID string
}

// Binding is what the gateway knows about one session.
type Binding struct {
	Principal Principal
	Route     string
	// Version is the protocol version negotiated at initialize.
	Version string
}

// Config bounds the store. Zero fields take the defaults shown.
type Config struct {
	MaxSessions     int           // sessions tracked in all; 0 → 100000
	MaxPerPrincipal int           // sessions per principal; 0 → 64
	IdleTimeout     time.Duration // a binding unused this long is forgotten; 0 → 1h
	MaxPending      int           // outstanding server requests per session; 0 → 256
	MaxTasks        int           // tasks tracked in all (least recently used evicted); 0 → 100000
	TaskTTL         time.Duration // a task binding unused this long is forgotten; 0 → 24h
	// Now is the clock; nil → time.Now.
	Now func() time.Time
}

// Errors returned by the store.
var (
	// ErrUnknown means no binding exists for this principal and route: the
	// gateway answers 404 so the client starts a new session.
	ErrUnknown = errors.New("session: unknown session")
	// ErrTooManySessions means the principal already holds its maximum.
	ErrTooManySessions = errors.New("session: too many sessions for this principal")
	// ErrFull means the store holds its maximum number of sessions.
	ErrFull = errors.New("session: session capacity reached")
)

type key [sha256.Size]byte

func hashID(id string) key { return sha256.Sum256([]byte(id)) }

type entry struct {
	b       Binding
	seen    time.Time
	pending map[string]time.Time // server request ids awaiting a client response
}

// Store holds session, pending-request and task bindings.
type Store struct {
	cfg Config

	mu       sync.Mutex        // guards the fields below
	sessions map[key]*entry    // by hashed session id
	counts   map[Principal]int // sessions plus reservations per principal
	reserved int               // reservations not yet committed or released
	tasks    map[string]*list.Element
	taskLRU  *list.List // of *taskEntry, most recent at the front
	lastGC   time.Time
}

type taskEntry struct {
	key   string // route + "\x00" + task id
	owner Principal
	seen  time.Time
}

// New returns an empty store.
func New(cfg Config) *Store {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 100000
	}
	if cfg.MaxPerPrincipal <= 0 {
		cfg.MaxPerPrincipal = 64
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = time.Hour
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 256
	}
	if cfg.MaxTasks <= 0 {
		cfg.MaxTasks = 100000
	}
	if cfg.TaskTTL <= 0 {
		cfg.TaskTTL = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{
		cfg:      cfg,
		sessions: map[key]*entry{},
		counts:   map[Principal]int{},
		tasks:    map[string]*list.Element{},
		taskLRU:  list.New(),
	}
}

// Lookup returns the binding of session id if it belongs to p on route, and
// refreshes its idle timer. Anything else — unknown, expired, another
// principal, another route — is ErrUnknown.
func (s *Store) Lookup(id string, p Principal, route string) (Binding, error) {
	k := hashID(id)
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.sessions[k]
	if e == nil || e.b.Principal != p || e.b.Route != route {
		return Binding{}, ErrUnknown
	}
	if now.Sub(e.seen) > s.cfg.IdleTimeout {
		s.removeLocked(k, e)
		return Binding{}, ErrUnknown
	}
	e.seen = now
	return e.b, nil
}

// Reservation holds a principal's place for a session being initialized.
// Exactly one of Commit or Release must be called.
type Reservation struct {
	s    *Store
	p    Principal
	done bool
}

// Reserve takes a session slot for p before an initialize request is
// forwarded, so concurrent initializes cannot exceed the caps.
func (s *Store) Reserve(p Principal) (*Reservation, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gcLocked(now)
	if s.counts[p] >= s.cfg.MaxPerPrincipal {
		return nil, ErrTooManySessions
	}
	if len(s.sessions)+s.reserved >= s.cfg.MaxSessions {
		return nil, ErrFull
	}
	s.counts[p]++
	s.reserved++
	return &Reservation{s: s, p: p}, nil
}

// Commit binds session id to the reserving principal. Committing an id that
// is already bound replaces nothing: the existing owner keeps it and the
// reservation is released, and the result is ErrUnknown unless the owner is
// the same principal on the same route.
func (r *Reservation) Commit(id string, b Binding) error {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.done {
		return nil
	}
	r.done = true
	s.reserved--
	k := hashID(id)
	if e := s.sessions[k]; e != nil {
		s.decLocked(r.p)
		if e.b.Principal != b.Principal || e.b.Route != b.Route {
			return ErrUnknown
		}
		return nil
	}
	b.Principal = r.p
	s.sessions[k] = &entry{b: b, seen: s.cfg.Now()}
	return nil
}

// Release gives the slot back (the initialize failed or returned no
// session id). It is safe to call after Commit.
func (r *Reservation) Release() {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	s.reserved--
	s.decLocked(r.p)
}

// Delete forgets session id if it belongs to p (after a DELETE, or when the
// upstream says the session no longer exists).
func (s *Store) Delete(id string, p Principal) {
	k := hashID(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.sessions[k]; e != nil && e.b.Principal == p {
		s.removeLocked(k, e)
	}
}

// SetVersion records the protocol version negotiated for session id of p.
func (s *Store) SetVersion(id string, p Principal, v string) {
	k := hashID(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.sessions[k]; e != nil && e.b.Principal == p {
		e.b.Version = v
	}
}

// Len returns the number of bound sessions.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// AddPending records that the upstream sent server request reqID (the raw
// JSON id) on session id; the client may answer it once.
func (s *Store) AddPending(id, reqID string) {
	k := hashID(id)
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.sessions[k]
	if e == nil {
		return
	}
	if e.pending == nil {
		e.pending = map[string]time.Time{}
	}
	if len(e.pending) >= s.cfg.MaxPending { // forget the oldest
		var oldest string
		var t time.Time
		for rid, at := range e.pending {
			if oldest == "" || at.Before(t) {
				oldest, t = rid, at
			}
		}
		delete(e.pending, oldest)
	}
	e.pending[reqID] = now
}

// TakePending consumes the pending server request reqID on session id. It
// reports false when the session has no such outstanding request.
func (s *Store) TakePending(id, reqID string) bool {
	k := hashID(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.sessions[k]
	if e == nil {
		return false
	}
	if _, ok := e.pending[reqID]; !ok {
		return false
	}
	delete(e.pending, reqID)
	return true
}

// BindTask records that p created task taskID on route.
func (s *Store) BindTask(route, taskID string, p Principal) {
	k := route + "\x00" + taskID
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.tasks[k]; ok {
		te := el.Value.(*taskEntry)
		if te.owner == p {
			te.seen = now
			s.taskLRU.MoveToFront(el)
		}
		return // never re-owned by another principal
	}
	s.tasks[k] = s.taskLRU.PushFront(&taskEntry{key: k, owner: p, seen: now})
	for s.taskLRU.Len() > s.cfg.MaxTasks {
		old := s.taskLRU.Back()
		s.taskLRU.Remove(old)
		delete(s.tasks, old.Value.(*taskEntry).key)
	}
}

// TaskOwnedBy reports whether task taskID on route was created by p.
func (s *Store) TaskOwnedBy(route, taskID string, p Principal) bool {
	k := route + "\x00" + taskID
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.tasks[k]
	if !ok {
		return false
	}
	te := el.Value.(*taskEntry)
	if now.Sub(te.seen) > s.cfg.TaskTTL {
		s.taskLRU.Remove(el)
		delete(s.tasks, k)
		return false
	}
	if te.owner != p {
		return false
	}
	te.seen = now
	s.taskLRU.MoveToFront(el)
	return true
}

func (s *Store) removeLocked(k key, e *entry) {
	delete(s.sessions, k)
	s.decLocked(e.b.Principal)
}

func (s *Store) decLocked(p Principal) {
	if s.counts[p] <= 1 {
		delete(s.counts, p)
		return
	}
	s.counts[p]--
}

// gcLocked drops idle sessions, at most once a minute; the sweep is O(n)
// but amortised over every request of that minute.
func (s *Store) gcLocked(now time.Time) {
	if now.Sub(s.lastGC) < time.Minute {
		return
	}
	s.lastGC = now
	for k, e := range s.sessions {
		if now.Sub(e.seen) > s.cfg.IdleTimeout {
			s.removeLocked(k, e)
		}
	}
}
