package session

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/mcpgate/mcpgate/internal/redisconn"
)

// The Redis store keeps, under the connection's key prefix (H is
// SHA-256, base64url; no session id, request id, task id or identity
// appears in a key, and no session id in a value):
//
//	sess:b:H(id)         hash: p principal hash, r route, v version,
//	                     s last use (ms, by the configured clock),
//	                     g generation (random, new on every write);
//	                     TTL the idle timeout
//	sess:q:H(id)         zset of pending server requests H(request id),
//	                     scored by when they were sent; TTL the binding's
//	sess:p:H(principal)  zset of the principal's sessions H(id) and
//	                     reservations, scored by when they expire (ms)
//	sess:all             zset of every session and reservation, likewise
//	sess:t:H(route,task) string "principal-hash last-use-ms"; TTL TaskTTL
//
// The caps are counted in the zsets, pruned of expired members by the
// scripts that count them, so a replica that crashed between Reserve and
// Commit leaks its slot for reservationTTL at most.

const (
	// reservationTTL is how long an uncommitted reservation holds a slot.
	reservationTTL = time.Minute
	// maxCacheTTL bounds how long a replica keeps a binding in its
	// client-side cache (invalidations usually end it sooner).
	maxCacheTTL = time.Minute
	// maxStoredField bounds a stored route or protocol version.
	maxStoredField = 1024
	// recentWindow and maxRecent bound the record of this replica's own
	// writes (see recentWrites).
	recentWindow = 10 * time.Second
	maxRecent    = 1 << 16
	// genUnknown is the generation expected after a write whose outcome
	// is unknown: it matches nothing, so reads go to the server.
	genUnknown = "?"
)

// RedisConfig configures a Redis store. Conn is required; zero fields take
// the defaults shown (those of Config).
type RedisConfig struct {
	// Conn is the connection to Redis (its key prefix, timeout, epoch).
	Conn *redisconn.Conn
	// MaxSessions bounds the sessions and reservations of all principals.
	// 0 → 100000.
	MaxSessions int
	// MaxPerPrincipal bounds the sessions and reservations of one
	// principal. 0 → 64.
	MaxPerPrincipal int
	// IdleTimeout forgets a binding unused this long (at least 1s).
	// 0 → 1h. Use is recorded at most every IdleTimeout/4, so a binding
	// may be forgotten up to a quarter of it early.
	IdleTimeout time.Duration
	// MaxPending bounds the outstanding server requests per session.
	// 0 → 256.
	MaxPending int
	// TaskTTL forgets a task binding unused this long (at least 1s).
	// 0 → 24h.
	TaskTTL time.Duration
	// Now is the clock used for every expiry decision. nil → time.Now.
	Now func() time.Time
}

// Redis is a Bindings shared by the replicas through Redis. Lookup is
// answered from the client-side cache when this replica has read the
// binding before (no round trip) and Redis invalidates the cache when any
// replica changes or deletes it; every write is one Lua script that also
// checks the data's epoch (Release only removes its reservation, two ZREMs
// in one round trip). Failures, malformed stored values included, wrap
// redisconn.ErrUnavailable.
type Redis struct {
	cfg    RedisConfig
	conn   *redisconn.Conn
	client rueidis.Client

	cacheTTL       time.Duration
	touchEvery     time.Duration // a binding's use is written at most this often
	taskTouchEvery time.Duration
	idleMS, taskMS string
	setsMS         string // the TTL of the counting zsets
	maxPer, maxAll string
	maxPending     string

	bPrefix, qPrefix, pPrefix, tPrefix, allKey string

	reserveScript, commitScript, deleteScript, versionScript *rueidis.Lua
	touchScript, addPendingScript, takePendingScript         *rueidis.Lua
	taskScript                                               *rueidis.Lua

	recent recentWrites
}

var _ Bindings = (*Redis)(nil)

// NewRedis returns a store on cfg.Conn (which remains the caller's).
func NewRedis(cfg RedisConfig) (*Redis, error) {
	var errs []error
	if cfg.Conn == nil {
		errs = append(errs, errors.New("session: a Redis store needs a connection"))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"MaxSessions", cfg.MaxSessions}, {"MaxPerPrincipal", cfg.MaxPerPrincipal}, {"MaxPending", cfg.MaxPending}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("session: %s is negative (%d)", f.name, f.v))
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"IdleTimeout", cfg.IdleTimeout}, {"TaskTTL", cfg.TaskTTL}} {
		if f.v != 0 && f.v < time.Second {
			errs = append(errs, fmt.Errorf("session: %s %v is below 1s", f.name, f.v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = 100000
	}
	if cfg.MaxPerPrincipal == 0 {
		cfg.MaxPerPrincipal = 64
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = time.Hour
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = 256
	}
	if cfg.TaskTTL == 0 {
		cfg.TaskTTL = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := cfg.Conn
	lua := func(body string) *rueidis.Lua { return rueidis.NewLuaScript(redisconn.EpochCheckLua + body) }
	return &Redis{
		cfg: cfg, conn: c, client: c.Client(),
		cacheTTL:       min(cfg.IdleTimeout, maxCacheTTL),
		touchEvery:     cfg.IdleTimeout / 4,
		taskTouchEvery: cfg.TaskTTL / 4,
		idleMS:         strconv.FormatInt(cfg.IdleTimeout.Milliseconds(), 10),
		taskMS:         strconv.FormatInt(cfg.TaskTTL.Milliseconds(), 10),
		setsMS:         strconv.FormatInt(max(cfg.IdleTimeout, reservationTTL).Milliseconds(), 10),
		maxPer:         strconv.Itoa(cfg.MaxPerPrincipal),
		maxAll:         strconv.Itoa(cfg.MaxSessions),
		maxPending:     strconv.Itoa(cfg.MaxPending),
		bPrefix:        c.Key("sess:b:"),
		qPrefix:        c.Key("sess:q:"),
		pPrefix:        c.Key("sess:p:"),
		tPrefix:        c.Key("sess:t:"),
		allKey:         c.Key("sess:all"),

		reserveScript:     lua(reserveScript),
		commitScript:      lua(commitScript),
		deleteScript:      lua(deleteScript),
		versionScript:     lua(versionScript),
		touchScript:       lua(touchScript),
		addPendingScript:  lua(addPendingScript),
		takePendingScript: lua(takePendingScript),
		taskScript:        lua(taskScript),
		recent:            recentWrites{m: map[string]recentWrite{}},
	}, nil
}

// Lookup implements Bindings. A binding this replica has read before is
// answered from the client-side cache; its use is written back (one
// script) at most once per IdleTimeout/4.
func (r *Redis) Lookup(ctx context.Context, id string, p Principal, route string) (Binding, error) {
	if err := r.conn.Fresh(); err != nil { // the cached binding may be stale
		return Binding{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.conn.Timeout())
	defer cancel()
	sh := hashString(hashID(id))
	st, found, err := r.readBinding(ctx, r.bPrefix+sh)
	if err != nil {
		return Binding{}, err
	}
	ph := principalHash(p)
	if !found || st.owner != ph || st.route != route {
		return Binding{}, ErrUnknown
	}
	now := r.cfg.Now()
	idle := now.Sub(st.seen)
	if idle > r.cfg.IdleTimeout {
		return Binding{}, ErrUnknown
	}
	if idle >= r.touchEvery {
		if err := r.touch(ctx, sh, ph, now); err != nil {
			return Binding{}, err
		}
	}
	return Binding{Principal: p, Route: route, Version: st.version}, nil
}

// readBinding reads a binding through the client-side cache. Redis
// delivers the invalidation caused by this replica's own write after the
// write's reply, so for a key this replica wrote the cached value is
// trusted only once it shows that write's generation; until then the
// server is read.
func (r *Redis) readBinding(ctx context.Context, key string) (storedBinding, bool, error) {
	c := r.client
	res := c.DoCache(ctx, c.B().Hmget().Key(key).Field("p", "r", "v", "s", "g").Cache(), r.cacheTTL)
	st, found, err := decodeBindingReply(res)
	if err != nil {
		return st, found, err
	}
	want, ok := r.recent.get(key)
	if !ok {
		return st, found, nil
	}
	if !res.IsCacheHit() || st.gen == want {
		r.recent.drop(key)
		return st, found, nil
	}
	res = c.Do(ctx, c.B().Hmget().Key(key).Field("p", "r", "v", "s", "g").Build())
	if st, found, err = decodeBindingReply(res); err != nil {
		return st, found, err
	}
	r.recent.wrote(key, st.gen) // what the cache will show once invalidated
	return st, found, nil
}

// touch records the use of a binding at now.
func (r *Redis) touch(ctx context.Context, sh, ph string, now time.Time) error {
	bkey, gen := r.bPrefix+sh, redisconn.NewID()
	_, tag, err := r.exec(ctx, r.touchScript,
		[]string{r.conn.EpochKey(), bkey, r.pPrefix + ph, r.allKey, r.qPrefix + sh},
		"", ph, sh, millis(now), r.idleMS, r.setsMS, gen)
	switch {
	case err != nil:
		r.recent.wrote(bkey, genUnknown)
		return err
	case tag == "ok":
		r.recent.wrote(bkey, gen)
		return nil
	case tag == "kept":
		return nil
	case tag == "gone":
		return ErrUnknown
	}
	return unexpected("touch", tag)
}

// Reserve implements Bindings.
func (r *Redis) Reserve(ctx context.Context, p Principal) (Slot, error) {
	ctx, cancel := context.WithTimeout(ctx, r.conn.Timeout())
	defer cancel()
	ph := principalHash(p)
	member := "r" + redisconn.NewID()
	now := r.cfg.Now()
	_, tag, err := r.exec(ctx, r.reserveScript,
		[]string{r.conn.EpochKey(), r.pPrefix + ph, r.allKey},
		"", millis(now), member, millis(now.Add(reservationTTL)), r.maxPer, r.maxAll, r.setsMS)
	if err != nil {
		return nil, err
	}
	switch tag {
	case "ok":
		return &redisSlot{r: r, ph: ph, member: member}, nil
	case "many":
		return nil, ErrTooManySessions
	case "full":
		return nil, ErrFull
	}
	return nil, unexpected("reserve", tag)
}

// redisSlot is a reservation: a member of the principal's and the global
// zset that expires after reservationTTL unless committed or released.
type redisSlot struct {
	r          *Redis
	ph, member string

	mu   sync.Mutex // guards done; held across Commit
	done bool
}

// Commit implements Slot. It binds id to the reserving principal. A
// reservation that expired before Commit takes a slot again if the caps
// allow (else ErrTooManySessions or ErrFull). When Redis cannot be reached
// the slot stays held, so a later Release (or its expiry) frees it.
func (s *redisSlot) Commit(ctx context.Context, id string, b Binding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	if len(b.Route) > maxStoredField || len(b.Version) > maxStoredField {
		s.releaseLocked()
		return fmt.Errorf("session: route or protocol version longer than %d bytes", maxStoredField)
	}
	r := s.r
	ctx, cancel := context.WithTimeout(ctx, r.conn.Timeout())
	defer cancel()
	sh := hashString(hashID(id))
	bkey, gen := r.bPrefix+sh, redisconn.NewID()
	_, tag, err := r.exec(ctx, r.commitScript,
		[]string{r.conn.EpochKey(), bkey, r.pPrefix + s.ph, r.allKey, r.qPrefix + sh},
		"", s.member, sh, s.ph, b.Route, b.Version, millis(r.cfg.Now()), r.idleMS, r.setsMS, r.maxPer, r.maxAll, gen)
	if err != nil {
		r.recent.wrote(bkey, genUnknown)
		return err
	}
	s.done = true
	switch tag {
	case "ok":
		r.recent.wrote(bkey, gen)
		return nil
	case "same":
		return nil
	case "taken":
		return ErrUnknown
	case "many":
		return ErrTooManySessions
	case "full":
		return ErrFull
	}
	return unexpected("commit", tag)
}

// Release implements Slot. If Redis cannot be reached the reservation
// expires on its own.
func (s *redisSlot) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		s.releaseLocked()
	}
}

func (s *redisSlot) releaseLocked() {
	s.done = true
	r, c := s.r, s.r.client
	ctx, cancel := context.WithTimeout(context.Background(), r.conn.Timeout())
	defer cancel()
	c.DoMulti(ctx,
		c.B().Zrem().Key(r.pPrefix+s.ph).Member(s.member).Build(),
		c.B().Zrem().Key(r.allKey).Member(s.member).Build())
}

// Delete implements Bindings.
func (r *Redis) Delete(ctx context.Context, id string, p Principal) error {
	ctx, cancel := context.WithTimeout(ctx, r.conn.Timeout())
	defer cancel()
	sh, ph := hashString(hashID(id)), principalHash(p)
	bkey := r.bPrefix + sh
	_, tag, err := r.exec(ctx, r.deleteScript,
		[]string{r.conn.EpochKey(), bkey, r.pPrefix + ph, r.allKey, r.qPrefix + sh}, "", ph, sh)
	switch {
	case err != nil:
		r.recent.wrote(bkey, genUnknown)
		return err
	case tag == "ok":
		r.recent.wrote(bkey, "")
		return nil
	case tag == "none":
		return nil
	}
	return unexpected("delete", tag)
}

// SetVersion implements Bindings.
func (r *Redis) SetVersion(ctx context.Context, id string, p Principal, v string) error {
	if len(v) > maxStoredField {
		return fmt.Errorf("session: protocol version longer than %d bytes", maxStoredField)
	}
	ctx, cancel := context.WithTimeout(ctx, r.conn.Timeout())
	defer cancel()
	bkey, gen := r.bPrefix+hashString(hashID(id)), redisconn.NewID()
	_, tag, err := r.exec(ctx, r.versionScript, []string{r.conn.EpochKey(), bkey}, "", principalHash(p), v, gen)
	switch {
	case err != nil:
		r.recent.wrote(bkey, genUnknown)
		return err
	case tag == "ok":
		r.recent.wrote(bkey, gen)
		return nil
	case tag == "none":
		return nil
	}
	return unexpected("set version", tag)
}

// AddPending implements Bindings.
func (r *Redis) AddPending(ctx context.Context, id, reqID string) error {
	ctx, cancel := context.WithTimeout(ctx, r.conn.Timeout())
	defer cancel()
	sh := hashString(hashID(id))
	_, tag, err := r.exec(ctx, r.addPendingScript,
		[]string{r.conn.EpochKey(), r.bPrefix + sh, r.qPrefix + sh},
		"", requestHash(reqID), millis(r.cfg.Now()), r.maxPending, r.idleMS)
	switch {
	case err != nil:
		return err
	case tag == "ok", tag == "none":
		return nil
	}
	return unexpected("add pending", tag)
}

// TakePending implements Bindings.
func (r *Redis) TakePending(ctx context.Context, id, reqID string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.conn.Timeout())
	defer cancel()
	sh := hashString(hashID(id))
	msgs, tag, err := r.exec(ctx, r.takePendingScript,
		[]string{r.conn.EpochKey(), r.bPrefix + sh, r.qPrefix + sh}, "", requestHash(reqID))
	if err != nil {
		return false, err
	}
	if tag != "ok" || len(msgs) != 2 {
		return false, unexpected("take pending", tag)
	}
	n, err := msgs[1].AsInt64()
	if err != nil {
		return false, corrupt("take pending answer")
	}
	return n == 1, nil
}

// BindTask implements Bindings.
func (r *Redis) BindTask(ctx context.Context, route, taskID string, p Principal) error {
	ctx, cancel := context.WithTimeout(ctx, r.conn.Timeout())
	defer cancel()
	_, tag, err := r.exec(ctx, r.taskScript, []string{r.conn.EpochKey(), r.tPrefix + taskHash(route, taskID)},
		"", principalHash(p), millis(r.cfg.Now()), r.taskMS, "bind")
	switch {
	case err != nil:
		return err
	case tag == "ok", tag == "other":
		return nil
	}
	return unexpected("bind task", tag)
}

// TaskOwnedBy implements Bindings. It reads the server (tasks are not on
// the per-request path); the use is written at most once per TaskTTL/4.
func (r *Redis) TaskOwnedBy(ctx context.Context, route, taskID string, p Principal) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.conn.Timeout())
	defer cancel()
	key := r.tPrefix + taskHash(route, taskID)
	v, err := r.client.Do(ctx, r.client.B().Get().Key(key).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	if err != nil {
		return false, redisconn.Unavailable(err)
	}
	owner, seen, err := parseTask(v)
	if err != nil {
		return false, err
	}
	ph := principalHash(p)
	now := r.cfg.Now()
	idle := now.Sub(seen)
	if owner != ph || idle > r.cfg.TaskTTL {
		return false, nil
	}
	if idle < r.taskTouchEvery {
		return true, nil
	}
	_, tag, err := r.exec(ctx, r.taskScript, []string{r.conn.EpochKey(), key}, "", ph, millis(now), r.taskMS, "touch")
	switch {
	case err != nil:
		return false, err
	case tag == "ok":
		return true, nil
	case tag == "gone", tag == "other":
		return false, nil
	}
	return false, unexpected("touch task", tag)
}

// exec runs a script whose KEYS[1] is the epoch key and ARGV[1] the epoch
// id (args[0] is overwritten with it). When the script finds another
// epoch, the connection adopts it and the script runs once more.
func (r *Redis) exec(ctx context.Context, s *rueidis.Lua, keys []string, args ...string) ([]rueidis.RedisMessage, string, error) {
	args[0] = r.conn.Epoch().ID
	msgs, err := s.Exec(ctx, r.client, keys, args).ToArray()
	if err != nil {
		return nil, "", redisconn.Unavailable(err)
	}
	if len(msgs) == 0 {
		return nil, "", corrupt("empty script answer")
	}
	tag, err := msgs[0].ToString()
	if err != nil {
		return nil, "", corrupt("script answer")
	}
	if tag != "epoch" {
		return msgs, tag, nil
	}
	current := ""
	if len(msgs) > 1 {
		current, _ = msgs[1].ToString()
	}
	if err := r.conn.EpochLost(ctx, current); err != nil {
		if errors.Is(err, redisconn.ErrUnavailable) {
			return nil, "", err
		}
		return nil, "", redisconn.Unavailable(err)
	}
	// The request was checked (its token against the revocations) before
	// the new epoch began: refuse it; its retry meets the epoch's floor.
	return nil, "", fmt.Errorf("%w: the shared state was lost or reset; a new epoch began", redisconn.ErrUnavailable)
}

// recentWrites remembers, for a short while, the generation this replica
// last wrote (or saw on the server) for a binding key: Redis sends the
// invalidation caused by a client's own write after the write's reply, so
// for a moment the client-side cache may still hold the value from before.
type recentWrites struct {
	mu sync.Mutex // guards m
	m  map[string]recentWrite
}

type recentWrite struct {
	gen string // "" = deleted
	at  time.Time
}

func (w *recentWrites) wrote(key, gen string) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.m) >= maxRecent {
		for k, v := range w.m {
			if now.Sub(v.at) > recentWindow {
				delete(w.m, k)
			}
		}
		for k := range w.m { // still full: forget arbitrary entries
			if len(w.m) < maxRecent/2 {
				break
			}
			delete(w.m, k)
		}
	}
	w.m[key] = recentWrite{gen: gen, at: now}
}

func (w *recentWrites) get(key string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.m) == 0 {
		return "", false
	}
	v, ok := w.m[key]
	if !ok {
		return "", false
	}
	if time.Since(v.at) > recentWindow {
		delete(w.m, key)
		return "", false
	}
	return v.gen, true
}

func (w *recentWrites) drop(key string) {
	w.mu.Lock()
	delete(w.m, key)
	w.mu.Unlock()
}

// storedBinding is a decoded binding value.
type storedBinding struct {
	owner          string // principal hash
	route, version string
	seen           time.Time
	gen            string
}

// decodeBindingReply decodes the reply to HMGET p r v s g.
func decodeBindingReply(res rueidis.RedisResult) (storedBinding, bool, error) {
	msgs, err := res.ToArray()
	if err != nil {
		return storedBinding{}, false, redisconn.Unavailable(err)
	}
	if len(msgs) != bindingFields {
		return storedBinding{}, false, corrupt("session binding reply")
	}
	var vals [bindingFields]string
	var present [bindingFields]bool
	for i := range msgs {
		if msgs[i].IsNil() {
			continue
		}
		s, err := msgs[i].ToString()
		if err != nil {
			return storedBinding{}, false, corrupt("session binding field")
		}
		vals[i], present[i] = s, true
	}
	return parseBinding(vals, present)
}

const bindingFields = 5 // p, r, v, s, g

// parseBinding decodes the fields p, r, v, s, g of a binding (present[i]
// false: the field is absent). No field present is no binding; anything
// incomplete or malformed is an error.
func parseBinding(vals [bindingFields]string, present [bindingFields]bool) (storedBinding, bool, error) {
	n := 0
	for _, ok := range present {
		if ok {
			n++
		}
	}
	if n == 0 {
		return storedBinding{}, false, nil
	}
	if n != bindingFields {
		return storedBinding{}, false, corrupt("incomplete session binding")
	}
	st := storedBinding{owner: vals[0], route: vals[1], version: vals[2], gen: vals[4]}
	if !validHash(st.owner) {
		return storedBinding{}, false, corrupt("session binding owner")
	}
	if len(st.route) > maxStoredField || len(st.version) > maxStoredField {
		return storedBinding{}, false, corrupt("session binding size")
	}
	ms, ok := parseMillis(vals[3])
	if !ok {
		return storedBinding{}, false, corrupt("session binding time")
	}
	st.seen = time.UnixMilli(ms)
	if !validGen(st.gen) {
		return storedBinding{}, false, corrupt("session binding generation")
	}
	return st, true, nil
}

// parseTask decodes a task value "principal-hash last-use-ms".
func parseTask(v string) (owner string, seen time.Time, err error) {
	if len(v) > hashLen+1+maxMillisDigits || len(v) < hashLen+2 || v[hashLen] != ' ' {
		return "", time.Time{}, corrupt("task binding")
	}
	owner = v[:hashLen]
	ms, ok := parseMillis(v[hashLen+1:])
	if !validHash(owner) || !ok {
		return "", time.Time{}, corrupt("task binding")
	}
	return owner, time.UnixMilli(ms), nil
}

const (
	hashLen         = 43 // base64url (unpadded) of a SHA-256 sum
	maxMillisDigits = 15 // ms since 1970 until the year 33658
)

func parseMillis(s string) (int64, bool) {
	if len(s) == 0 || len(s) > maxMillisDigits {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func validHash(s string) bool {
	if len(s) != hashLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validGen(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func corrupt(what string) error {
	return fmt.Errorf("%w: %w: %s", redisconn.ErrUnavailable, redisconn.ErrCorrupt, what)
}

func unexpected(script, tag string) error {
	return corrupt(fmt.Sprintf("unexpected answer %q from the %s script", truncate(tag, 32), script))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func hashString(sum [sha256.Size]byte) string { return base64.RawURLEncoding.EncodeToString(sum[:]) }

// hashParts hashes a domain and length-prefixed parts, so that no two
// different tuples share an encoding.
func hashParts(domain string, parts ...string) string {
	buf := make([]byte, 0, 128)
	buf = append(buf, domain...)
	buf = append(buf, 0)
	for _, s := range parts {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	return hashString(sha256.Sum256(buf))
}

func principalHash(p Principal) string {
	return hashParts("mcpgate/session/principal", p.Issuer, p.Subject, p.ClientID)
}

func taskHash(route, taskID string) string { return hashParts("mcpgate/session/task", route, taskID) }

func requestHash(reqID string) string { return hashParts("mcpgate/session/request", reqID) }

// The scripts. KEYS[1] is the epoch key and ARGV[1] the epoch id (checked
// by redisconn.EpochCheckLua, prepended); each answers {tag, …}. Times
// are ms by the configured clock; a member of a counting zset is alive
// while its score (expiry) is not before now.

// reserveScript: KEYS principal zset, global zset; ARGV now, member,
// member expiry, max per principal, max sessions, zsets TTL.
const reserveScript = `
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[2])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return {'many'} end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[6]) then return {'full'} end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('PEXPIRE', KEYS[3], ARGV[7])
return {'ok'}
`

// commitScript: KEYS binding, principal zset, global zset, pending zset;
// ARGV reservation member, session member, principal hash, route,
// version, now, idle ms, zsets TTL, max per principal, max sessions,
// generation. A live binding is never replaced.
const commitScript = `
local now = tonumber(ARGV[7])
local idle = tonumber(ARGV[8])
local cur = redis.call('HMGET', KEYS[2], 'p', 'r', 's')
if cur[1] and now - (tonumber(cur[3]) or 0) <= idle then
  redis.call('ZREM', KEYS[3], ARGV[2])
  redis.call('ZREM', KEYS[4], ARGV[2])
  if cur[1] == ARGV[4] and cur[2] == ARGV[5] then return {'same'} end
  return {'taken'}
end
local held = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[2]) or '')
if not held or held < now then
  redis.call('ZREM', KEYS[3], ARGV[2])
  redis.call('ZREM', KEYS[4], ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[7])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[7])
  if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[10]) then return {'many'} end
  if redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[11]) then return {'full'} end
end
redis.call('DEL', KEYS[2], KEYS[5])
redis.call('HSET', KEYS[2], 'p', ARGV[4], 'r', ARGV[5], 'v', ARGV[6], 's', ARGV[7], 'g', ARGV[12])
redis.call('PEXPIRE', KEYS[2], ARGV[8])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[2])
local exp = string.format('%d', now + idle)
redis.call('ZADD', KEYS[3], exp, ARGV[3])
redis.call('ZADD', KEYS[4], exp, ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[9])
redis.call('PEXPIRE', KEYS[4], ARGV[9])
return {'ok'}
`

// deleteScript: KEYS binding, principal zset, global zset, pending zset;
// ARGV principal hash, session member.
const deleteScript = `
if redis.call('HGET', KEYS[2], 'p') ~= ARGV[2] then return {'none'} end
redis.call('DEL', KEYS[2], KEYS[5])
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('ZREM', KEYS[4], ARGV[3])
return {'ok'}
`

// versionScript: KEYS binding; ARGV principal hash, version, generation.
const versionScript = `
if redis.call('HGET', KEYS[2], 'p') ~= ARGV[2] then return {'none'} end
redis.call('HSET', KEYS[2], 'v', ARGV[3], 'g', ARGV[4])
return {'ok'}
`

// touchScript: KEYS binding, principal zset, global zset, pending zset;
// ARGV principal hash, session member, now, idle ms, zsets TTL,
// generation. It records a use (unless one at least as recent is
// recorded) and extends every TTL of the session.
const touchScript = `
local now = tonumber(ARGV[4])
local idle = tonumber(ARGV[5])
local cur = redis.call('HMGET', KEYS[2], 'p', 's')
local seen = tonumber(cur[2] or '')
if cur[1] ~= ARGV[2] or not seen or now - seen > idle then return {'gone'} end
if now <= seen then return {'kept'} end
redis.call('HSET', KEYS[2], 's', ARGV[4], 'g', ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[5], ARGV[5])
local exp = string.format('%d', now + idle)
redis.call('ZADD', KEYS[3], exp, ARGV[3])
redis.call('ZADD', KEYS[4], exp, ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
redis.call('PEXPIRE', KEYS[4], ARGV[6])
return {'ok'}
`

// addPendingScript: KEYS binding, pending zset; ARGV request member, now,
// max pending, idle ms. The pending zset lives as long as the binding.
const addPendingScript = `
local ttl = redis.call('PTTL', KEYS[2])
if ttl == -2 then return {'none'} end
if ttl < 0 then ttl = ARGV[5] end
if not redis.call('ZSCORE', KEYS[3], ARGV[2]) then
  local over = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[4]) + 1
  if over > 0 then redis.call('ZPOPMIN', KEYS[3], over) end
end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ttl)
return {'ok'}
`

// takePendingScript: KEYS binding, pending zset; ARGV request member.
const takePendingScript = `
if redis.call('EXISTS', KEYS[2]) == 0 then return {'ok', 0} end
return {'ok', redis.call('ZREM', KEYS[3], ARGV[2])}
`

// taskScript: KEYS task; ARGV principal hash, now, TTL ms, mode ("bind"
// creates the binding when there is no live one; "touch" only refreshes
// the owner's).
const taskScript = `
local now = tonumber(ARGV[3])
local cur = redis.call('GET', KEYS[2])
if cur then
  local sp = string.find(cur, ' ', 1, true)
  local seen = sp and tonumber(string.sub(cur, sp + 1))
  if seen and now - seen <= tonumber(ARGV[4]) then
    if string.sub(cur, 1, sp - 1) ~= ARGV[2] then return {'other'} end
    if now > seen then redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. ARGV[3], 'PX', ARGV[4]) end
    return {'ok'}
  end
end
if ARGV[5] ~= 'bind' then return {'gone'} end
redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. ARGV[3], 'PX', ARGV[4])
return {'ok'}
`

// Count returns the sessions (and reservations) live in the store, across
// every replica: for the sessions gauge.
func (r *Redis) Count(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.conn.Timeout())
	defer cancel()
	c := r.conn.Client()
	n, err := c.Do(ctx, c.B().Zcount().Key(r.allKey).Min(millis(r.cfg.Now())).Max("+inf").Build()).AsInt64()
	if err != nil {
		return 0, redisconn.Unavailable(err)
	}
	return int(n), nil
}
