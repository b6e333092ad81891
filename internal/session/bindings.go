package session

import "context"

// Bindings is what the gateway needs from a session store: the in-memory
// Store (through Store.Bindings) and the Redis store shared by replicas
// (Redis) implement it with the same semantics.
//
// Every method can fail when the store is shared: an error other than
// ErrUnknown, ErrTooManySessions or ErrFull means the store could not
// answer (for Redis it wraps redisconn.ErrUnavailable) and the gateway
// fails closed (503). A store that cannot be reached is never reported as
// an unknown session or an unowned task.
type Bindings interface {
	// Lookup returns the binding of session id if it belongs to p on
	// route, and refreshes its idle timer. Anything else — unknown,
	// expired, another principal, another route — is ErrUnknown.
	Lookup(ctx context.Context, id string, p Principal, route string) (Binding, error)
	// Reserve takes a session slot for p before an initialize request is
	// forwarded, so concurrent initializes cannot exceed the caps:
	// ErrTooManySessions when p holds its maximum (sessions and
	// reservations), ErrFull when the store does.
	Reserve(ctx context.Context, p Principal) (Slot, error)
	// Delete forgets session id if it belongs to p; otherwise it does
	// nothing.
	Delete(ctx context.Context, id string, p Principal) error
	// SetVersion records the protocol version negotiated for session id
	// of p; it does nothing for a session p does not own.
	SetVersion(ctx context.Context, id string, p Principal, v string) error
	// AddPending records that the upstream sent server request reqID (the
	// raw JSON id) on session id; the client may answer it once. An
	// unknown session is ignored; beyond the per-session bound the oldest
	// pending request is forgotten.
	AddPending(ctx context.Context, id, reqID string) error
	// TakePending consumes the pending server request reqID on session
	// id. It reports false when the session has no such outstanding
	// request; of concurrent calls, exactly one reports true.
	TakePending(ctx context.Context, id, reqID string) (bool, error)
	// BindTask records that p created task taskID on route. A task is
	// never re-owned by another principal while its binding lives.
	BindTask(ctx context.Context, route, taskID string, p Principal) error
	// TaskOwnedBy reports whether task taskID on route was created by p,
	// and refreshes the task's idle timer when it was.
	TaskOwnedBy(ctx context.Context, route, taskID string, p Principal) (bool, error)
}

// Slot is a session slot held for a principal while its session is
// initialized (what Bindings.Reserve returns). Exactly one of Commit or
// Release must be called; further calls do nothing.
type Slot interface {
	// Commit binds session id to the reserving principal. Committing an
	// id that is already bound replaces nothing: the existing owner keeps
	// it, the slot is released, and the result is ErrUnknown unless the
	// owner is the same principal on the same route.
	Commit(ctx context.Context, id string, b Binding) error
	// Release gives the slot back (the initialize failed or returned no
	// session id). It is safe to call after Commit.
	Release()
}

// Bindings returns s as a Bindings. Its methods never fail other than
// with the store's own errors; ctx is not consulted.
func (s *Store) Bindings() Bindings { return memBindings{s} }

// memBindings adapts the in-memory Store to Bindings.
type memBindings struct{ s *Store }

var _ Bindings = memBindings{}

func (m memBindings) Lookup(_ context.Context, id string, p Principal, route string) (Binding, error) {
	return m.s.Lookup(id, p, route)
}

func (m memBindings) Reserve(_ context.Context, p Principal) (Slot, error) {
	r, err := m.s.Reserve(p)
	if err != nil {
		return nil, err
	}
	return memSlot{r}, nil
}

func (m memBindings) Delete(_ context.Context, id string, p Principal) error {
	m.s.Delete(id, p)
	return nil
}

func (m memBindings) SetVersion(_ context.Context, id string, p Principal, v string) error {
	m.s.SetVersion(id, p, v)
	return nil
}

func (m memBindings) AddPending(_ context.Context, id, reqID string) error {
	m.s.AddPending(id, reqID)
	return nil
}

func (m memBindings) TakePending(_ context.Context, id, reqID string) (bool, error) {
	return m.s.TakePending(id, reqID), nil
}

func (m memBindings) BindTask(_ context.Context, route, taskID string, p Principal) error {
	m.s.BindTask(route, taskID, p)
	return nil
}

func (m memBindings) TaskOwnedBy(_ context.Context, route, taskID string, p Principal) (bool, error) {
	return m.s.TaskOwnedBy(route, taskID, p), nil
}

// memSlot adapts *Reservation to Slot.
type memSlot struct{ r *Reservation }

func (m memSlot) Commit(_ context.Context, id string, b Binding) error { return m.r.Commit(id, b) }

func (m memSlot) Release() { m.r.Release() }
