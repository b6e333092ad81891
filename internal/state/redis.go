package state

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/mcpgate/mcpgate/internal/redisconn"
)

// RedisConfig configures a Redis store. Conn is required; zero fields
// take the defaults shown.
type RedisConfig struct {
	// Conn is the connection to Redis (its key prefix, timeout, epoch).
	Conn *redisconn.Conn
	// MaxEntries is the history length kept per run. 0 → 1000.
	MaxEntries int
	// IdleTimeout forgets a record unchanged this long (the keys' TTL).
	// 0 → 1h.
	IdleTimeout time.Duration
	// MaxCached bounds the records this process keeps decoded between
	// calls (a cache checked against Redis on every call). 0 → 10000.
	MaxCached int
	// Now is the clock. nil → time.Now.
	Now func() time.Time
	// Guard, when set, names a key and the value this replica believes
	// it holds (the shared revocation list's version): every update
	// script checks it first and writes nothing, answering
	// ErrGuardChanged, when the key holds something else.
	Guard func() (key, want string)
}

// ErrGuardChanged is returned by Update when the guard key (RedisConfig)
// changed: nothing was written; the caller refreshes what the guard
// stands for and may try again.
var ErrGuardChanged = errors.New("state: the guarded shared state changed")

// Redis is the Store shared by replicas through a Redis server. Every
// Update is one round trip when this process holds the records' current
// version (the common case: a session sticks to a replica): fn runs on
// the cached records and a Lua script commits the change only if no one
// changed them since. Otherwise the script returns the current records in
// the same round trip and fn runs again on them, so concurrent calls of
// one run on different replicas serialise without a lock held across the
// network. A refused call (fn's error) is checked against the current
// version too before it is returned, so no replica decides on stale
// state.
type Redis struct {
	cfg     RedisConfig
	conn    *redisconn.Conn
	script  *rueidis.Lua
	stripes [64]sync.Mutex
	cancel  func() // the epoch subscription

	mu       sync.Mutex // guards the caches
	hists    map[Key]*histSnap
	counters map[Key]*ctrSnap
}

type histSnap struct {
	epoch string // the epoch it was written in
	ver   string
	stamp int64 // the epoch write stamp the history was written at
	hist  *History
}

type ctrSnap struct {
	ver  string
	c    *Counter
	seen time.Time
}

var _ Store = (*Redis)(nil)

// errNewEpoch refuses the call that found a new epoch: it was checked
// (its token against the revocations) before the epoch began; its retry
// meets the new epoch's floor.
var errNewEpoch = fmt.Errorf("%w: the shared state was lost or reset; a new epoch began", ErrUnavailable)

// ErrConflict is returned when an Update kept losing to concurrent
// changes of the same records.
var ErrConflict = errors.New("state: the records kept changing under concurrent updates")

// maxAttempts bounds the retries of one Update (the operation timeout
// bounds them too): losing this often takes many replicas hammering one
// run at once.
const maxAttempts = 64

// NewRedis returns a store on conn. Close it to stop its epoch
// subscription (the Conn is the caller's).
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.Conn == nil {
		return nil, errors.New("state: a Redis store needs a connection")
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 1000
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = time.Hour
	}
	if cfg.MaxCached <= 0 {
		cfg.MaxCached = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Redis{
		cfg: cfg, conn: cfg.Conn,
		script:   rueidis.NewLuaScript(redisconn.EpochCheckLua + updateScript),
		hists:    map[Key]*histSnap{},
		counters: map[Key]*ctrSnap{},
	}
	// What was cached belongs to the lost data.
	r.cancel = cfg.Conn.OnEpoch(func(redisconn.Epoch) { r.dropCache() })
	return r, nil
}

func (r *Redis) dropCache() {
	r.mu.Lock()
	clear(r.hists)
	clear(r.counters)
	r.mu.Unlock()
}

// Close ends the store's epoch subscription.
func (r *Redis) Close() error {
	r.cancel()
	return nil
}

func (r *Redis) key(kind string, k Key) string {
	return r.conn.Key(kind + base64.RawURLEncoding.EncodeToString(k[:]))
}

func (r *Redis) lock(keys ...Key) stripeSet {
	var s stripeSet
	for _, k := range keys {
		s |= 1 << (uint(k[0]) % uint(len(r.stripes)))
	}
	for i := range r.stripes {
		if s&(1<<i) != 0 {
			r.stripes[i].Lock()
		}
	}
	return s
}

func (r *Redis) unlock(s stripeSet) {
	for i := len(r.stripes) - 1; i >= 0; i-- {
		if s&(1<<i) != 0 {
			r.stripes[i].Unlock()
		}
	}
}

// backoff waits a random time that grows with attempt (at most a few
// milliseconds), or until ctx ends.
func backoff(ctx context.Context, attempt int) error {
	var b [2]byte
	rand.Read(b[:])
	d := time.Duration(int(b[0])<<8|int(b[1])) % time.Duration(attempt*250) * time.Microsecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newVersion returns a random version: a record that expired and was
// created again never repeats a version a replica still holds.
func newVersion() string { return redisconn.NewID() }

// view is what one Update works from: the records' versions and values,
// and whether they were read from Redis during this Update.
type view struct {
	epoch    string // the epoch the view belongs to (scripts check it)
	hver     string
	hstamp   int64 // the write stamp of that version (0: unknown or none)
	hist     *History
	cvers    []string
	ctrs     []*Counter
	seen     []time.Time
	verified bool
	// reset: the history was found expired (by its last change), so a
	// write replaces the stored entries instead of appending to them;
	// creset likewise per counter.
	reset  bool
	creset []bool
}

// cached returns this process's copy of the records (empty ones where it
// has none), unverified.
func (r *Redis) cached(h Key, c []Key) *view {
	v := &view{epoch: r.conn.Epoch().ID, cvers: make([]string, len(c)), ctrs: make([]*Counter, len(c)), seen: make([]time.Time, len(c)), creset: make([]bool, len(c))}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.hists[h]; s != nil && s.epoch == v.epoch {
		v.hver, v.hstamp, v.hist = s.ver, s.stamp, s.hist
	} else {
		v.hist = &History{}
	}
	for i, k := range c {
		if s := r.counters[k]; s != nil {
			v.cvers[i], v.ctrs[i], v.seen[i] = s.ver, s.c, s.seen
		} else {
			v.ctrs[i] = &Counter{}
		}
	}
	return v
}

// expire applies the idle timeout to records read from the store (by the
// clock of the process that wrote them, which the TTL also follows).
func (r *Redis) expire(v *view, now time.Time) {
	if !v.hist.LastSeen.IsZero() && now.Sub(v.hist.LastSeen) > r.cfg.IdleTimeout {
		v.hist, v.reset = &History{}, true
	}
	for i := range v.ctrs {
		if !v.seen[i].IsZero() && now.Sub(v.seen[i]) > r.cfg.IdleTimeout {
			v.ctrs[i], v.creset[i] = &Counter{}, true
		}
	}
}

// Update implements Store.
func (r *Redis) Update(ctx context.Context, h Key, c []Key, fn func(*History, []*Counter) error) error {
	var keys [8]Key
	defer r.unlock(r.lock(append(append(keys[:0], h), c...)...))
	ctx, cancel := context.WithTimeout(ctx, r.conn.Timeout())
	defer cancel()
	now := r.cfg.Now()
	v := r.cached(h, c)
	for attempt := range maxAttempts {
		if attempt >= 2 {
			// Lost twice to another replica: step aside for a moment.
			if err := backoff(ctx, attempt); err != nil {
				return fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
		}
		r.expire(v, now)
		hist := attemptCopy(v.hist)
		ctrs := make([]*Counter, len(v.ctrs))
		for i, x := range v.ctrs {
			// Shares the cached copy's array: fn only drops events from
			// the front and appends (Counter), past the copy's length.
			ctrs[i] = &Counter{Times: x.Times}
		}
		base := len(hist.Entries)
		if ferr := fn(hist, ctrs); ferr != nil {
			if v.verified {
				return ferr
			}
			res, err := r.exec(ctx, h, c, v, nil, nil, nil, now)
			if err == nil {
				err = r.settle(ctx, v, res)
			}
			switch {
			case err != nil:
				return err
			case res.fresh != nil:
				v = res.fresh
				continue
			}
			return ferr
		}
		if len(hist.Entries) < base {
			return errors.New("state: an update removed history entries (only appending is supported)")
		}
		added := hist.Entries[base:]
		if n := len(hist.Entries) - r.cfg.MaxEntries; n > 0 {
			hist.Entries = hist.Entries[n:]
			hist.Dropped += n
		}
		hist.LastSeen = now
		res, err := r.exec(ctx, h, c, v, hist, added, ctrs, now)
		if err != nil {
			r.forget(h, c) // the write may or may not have happened
			return err
		}
		if err := r.settle(ctx, v, res); err != nil {
			return err
		}
		if res.fresh != nil {
			v = res.fresh
			continue
		}
		r.remember(h, c, v.epoch, res.hver, res.hstamp, hist, res.cvers, ctrs, now)
		return nil
	}
	return ErrConflict
}

// settle handles what a script answered besides success: a new epoch
// (adopted; the call is refused) or newer records than v (checked for a
// rollback; the caller decides again on res.fresh).
func (r *Redis) settle(ctx context.Context, v *view, res result) error {
	switch {
	case res.epoch:
		if err := r.conn.EpochLost(ctx, res.current); err != nil {
			return err
		}
		r.dropCache()
		return errNewEpoch
	case res.fresh != nil:
		return r.recordRollback(ctx, v, res.fresh)
	}
	return nil
}

// AddTaint implements Store.
func (r *Redis) AddTaint(ctx context.Context, h Key, labels []string) error {
	if len(labels) == 0 {
		return nil
	}
	return r.Update(ctx, h, nil, func(hist *History, _ []*Counter) error {
		hist.AddTaint(labels...)
		return nil
	})
}

// result is what the update script answered.
type result struct {
	epoch   bool
	current string // the epoch found, when epoch
	fresh   *view  // the current records, when the expected versions were stale
	hver    string // the versions written, on success
	hstamp  int64  // the write stamp of that write
	cvers   []string
}

// exec runs the update script: with hist == nil it only checks that v is
// current; otherwise it writes hist, the added entries and ctrs if v is
// current.
func (r *Redis) exec(ctx context.Context, h Key, c []Key, v *view, hist *History, added []Entry, ctrs []*Counter, now time.Time) (result, error) {
	// The view's epoch: if the epoch changed since, the script answers
	// so and the call is refused (errNewEpoch) rather than mixing epochs.
	ep := redisconn.Epoch{ID: v.epoch}
	keys := make([]string, 0, 4+2*len(c))
	keys = append(keys, r.conn.EpochKey(), r.key("h:", h), r.key("e:", h))
	for _, k := range c {
		keys = append(keys, r.key("c:", k), r.key("t:", k))
	}
	gkey, gwant := r.conn.EpochKey(), "*" // no guard: "*" skips the check
	if r.cfg.Guard != nil {
		if k, want := r.cfg.Guard(); k != "" {
			gkey, gwant = k, want
		}
	}
	keys = append(keys, r.conn.StampKey(), gkey)
	write := hist != nil
	args := make([]string, 0, 8+len(added)+3*len(c))
	mode := "r"
	switch {
	case write && v.reset:
		mode = "wr"
	case write:
		mode = "w"
	}
	ttl := strconv.FormatInt(r.cfg.IdleTimeout.Milliseconds(), 10)
	var res result
	newH, meta := "", ""
	if write {
		var err error
		if meta, err = encodeMeta(hist); err != nil {
			return res, fmt.Errorf("state: encode history: %w", err)
		}
		newH = newVersion()
	}
	args = append(args, ep.ID, mode, ttl, strconv.Itoa(r.cfg.MaxEntries), v.hver, newH, meta, strconv.Itoa(len(added)))
	for i := range added {
		s, err := encodeEntry(&added[i])
		if err != nil {
			return res, fmt.Errorf("state: encode entry: %w", err)
		}
		args = append(args, s)
	}
	cvers := make([]string, len(c))
	for i := range c {
		if !write {
			args = append(args, v.cvers[i], "", "", "0", "0")
			continue
		}
		cvers[i] = newVersion()
		trim, add := counterDelta(v.ctrs[i].Times, ctrs[i].Times)
		if v.creset[i] {
			trim, add = -1, ctrs[i].Times
		}
		args = append(args, v.cvers[i], cvers[i], strconv.FormatInt(now.UnixNano(), 10), strconv.Itoa(trim), strconv.Itoa(len(add)))
		for _, t := range add {
			args = append(args, strconv.FormatInt(unixNano(t), 10))
		}
	}
	args = append(args, gwant)
	floor := r.conn.StampFloor(ep.ID) // before sending: see redisconn.Conn.StampFloor
	msgs, err := r.script.Exec(ctx, r.conn.Client(), keys, args).ToArray()
	if err != nil {
		if _, ok := rueidis.IsRedisErr(err); ok {
			return res, fmt.Errorf("state: the update script failed: %w", err)
		}
		return res, fmt.Errorf("%w: %w", ErrUnavailable, redisconn.Unavailable(err))
	}
	if len(msgs) == 0 {
		return res, fmt.Errorf("%w: empty answer from the update script", errCorrupt)
	}
	r.conn.Answered()
	tag, err := msgs[0].ToString()
	if err != nil {
		return res, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	switch tag {
	case "ok":
		res.hver, res.cvers = newH, cvers
		res.hstamp, err = r.stamp(ctx, ep.ID, msgs, 1, floor)
		return res, err
	case "current":
		_, err := r.stamp(ctx, ep.ID, msgs, 1, floor)
		return res, err
	case "guard":
		return res, ErrGuardChanged
	case "epoch":
		res.epoch = true
		if len(msgs) > 1 {
			res.current, _ = msgs[1].ToString()
		}
		return res, nil
	case "stale":
		fresh, err := r.decodeStale(msgs, len(c))
		if err != nil {
			return res, err
		}
		res.fresh = fresh
		fresh.epoch = v.epoch
		if fresh.hstamp, err = parseStamp(msgs[5]); err != nil {
			return res, err
		}
		_, err = r.stamp(ctx, ep.ID, msgs, 4, floor)
		return res, err
	}
	return res, fmt.Errorf("%w: unexpected answer %q from the update script", errCorrupt, tag)
}

// decodeStale decodes {"stale", hver, hmeta, {entries}, stamp, hstamp, then per
// counter: cver, seen, {times}}.
func (r *Redis) decodeStale(msgs []rueidis.RedisMessage, nc int) (*view, error) {
	if len(msgs) != 6+3*nc {
		return nil, fmt.Errorf("%w: %d values in the update script's answer", errCorrupt, len(msgs))
	}
	str := func(i int) (string, error) {
		s, err := msgs[i].ToString()
		if err != nil {
			return "", fmt.Errorf("%w: %w", errCorrupt, err)
		}
		return s, nil
	}
	list := func(i int) ([]string, error) {
		l, err := msgs[i].AsStrSlice()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errCorrupt, err)
		}
		return l, nil
	}
	v := &view{verified: true, cvers: make([]string, nc), ctrs: make([]*Counter, nc), seen: make([]time.Time, nc), creset: make([]bool, nc)}
	var err error
	if v.hver, err = str(1); err != nil {
		return nil, err
	}
	meta, err := str(2)
	if err != nil {
		return nil, err
	}
	entries, err := list(3)
	if err != nil {
		return nil, err
	}
	if v.hist, err = decodeHistory(meta, entries, r.cfg.MaxEntries); err != nil {
		return nil, err
	}
	for i := range nc {
		if v.cvers[i], err = str(6 + 3*i); err != nil {
			return nil, err
		}
		seen, err := str(7 + 3*i)
		if err != nil {
			return nil, err
		}
		times, err := list(8 + 3*i)
		if err != nil {
			return nil, err
		}
		if v.ctrs[i], v.seen[i], err = decodeCounter(seen, times); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// counterDelta returns how the stored times become next: how many to drop
// from the front and which to append. A counter changes by Prune (drops
// from the front) and appends; anything else is written whole (every
// stored time dropped, every time appended).
func counterDelta(prev, next []time.Time) (trim int, add []time.Time) {
	for k := 0; k < len(prev); k++ {
		keep := prev[k:]
		if len(keep) > len(next) {
			continue
		}
		if len(keep) > 0 && !keep[0].Equal(next[0]) {
			continue
		}
		if slices.EqualFunc(keep, next[:len(keep)], time.Time.Equal) {
			return k, next[len(keep):]
		}
	}
	return len(prev), next
}

// remember caches the records just written.
func (r *Redis) remember(h Key, c []Key, epoch, hver string, hstamp int64, hist *History, cvers []string, ctrs []*Counter, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.boundLocked(1 + len(c))
	if epoch != r.conn.Epoch().ID { // written in an epoch since left: nothing to keep
		return
	}
	r.hists[h] = &histSnap{epoch: epoch, ver: hver, stamp: hstamp, hist: hist}
	for i, k := range c {
		r.counters[k] = &ctrSnap{ver: cvers[i], c: ctrs[i], seen: now}
	}
}

// forget drops cached records whose stored state is unknown.
func (r *Redis) forget(h Key, c []Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.hists, h)
	for _, k := range c {
		delete(r.counters, k)
	}
}

// boundLocked makes room for n records: beyond MaxCached, arbitrary
// records are dropped (they are read again from Redis when needed).
func (r *Redis) boundLocked(n int) {
	over := len(r.hists) + len(r.counters) + n - r.cfg.MaxCached
	for k := range r.hists {
		if over <= 0 {
			return
		}
		delete(r.hists, k)
		over--
	}
	for k := range r.counters {
		if over <= 0 {
			return
		}
		delete(r.counters, k)
		over--
	}
}

// Cached returns the number of records held decoded in this process.
func (r *Redis) Cached() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.hists) + len(r.counters)
}

// updateScript checks (after redisconn.EpochCheckLua) the expected
// versions of a history and its counters and, in a write mode, writes them.
//
// KEYS: epoch, history header (hash v/d), history entries (list), then
// per counter: header (hash v/s) and times (list), then the epoch's write
// stamp and the guard key.
// ARGV: epoch id, mode ("r" check, "w" write, "wr" write replacing the
// entries), TTL ms, max entries, expected history version, new version,
// new header, n, n entries, then per counter: expected version, new
// version, seen, trim (times dropped from the front; -1: all), m, m times,
// then the guard's expected value ("*": none).
//
// Answers {"epoch", current-or-""}, {"guard"}, {"stale", hver, hdata, {entries}, stamp, hstamp,
// then per counter cver, seen, {times}}, {"current", stamp} (mode r) or
// {"ok", stamp}: the epoch's write stamp (redisconn.Conn.StampKey), which
// a write increments.
const updateScript = `
local function rpush_args(key, from, to)
  while from <= to do
    local last = math.min(from + 999, to)
    redis.call('RPUSH', key, unpack(ARGV, from, last))
    from = last + 1
  end
end
local gw = ARGV[#ARGV]
if gw ~= '*' and (redis.call('GET', KEYS[#KEYS]) or '') ~= gw then return {'guard'} end
local sk = KEYS[#KEYS - 1]
local n = tonumber(ARGV[8])
local nc = (#KEYS - 5) / 2
local stale = (redis.call('HGET', KEYS[2], 'v') or '') ~= ARGV[5]
local pos = 9 + n
local cpos = {}
for i = 1, nc do
  cpos[i] = pos
  if (redis.call('HGET', KEYS[2 + 2 * i], 'v') or '') ~= ARGV[pos] then stale = true end
  pos = pos + 5 + tonumber(ARGV[pos + 4])
end
if stale then
  local h = redis.call('HMGET', KEYS[2], 'v', 'd', 's')
  local out = {'stale', h[1] or '', h[2] or '', redis.call('LRANGE', KEYS[3], 0, -1), redis.call('GET', sk) or '', h[3] or ''}
  for i = 1, nc do
    local c = redis.call('HMGET', KEYS[2 + 2 * i], 'v', 's')
    out[#out + 1] = c[1] or ''
    out[#out + 1] = c[2] or ''
    out[#out + 1] = redis.call('LRANGE', KEYS[3 + 2 * i], 0, -1)
  end
  return out
end
if ARGV[2] == 'r' then return {'current', redis.call('GET', sk) or ''} end
local ttl = tonumber(ARGV[3])
local st = redis.call('INCR', sk)
local ettl = redis.call('PTTL', KEYS[1])
if ettl > 0 then redis.call('PEXPIRE', sk, ettl) end
redis.call('HSET', KEYS[2], 'v', ARGV[6], 'd', ARGV[7], 's', st)
redis.call('PEXPIRE', KEYS[2], ttl)
if ARGV[2] == 'wr' then redis.call('DEL', KEYS[3]) end
if n > 0 then
  rpush_args(KEYS[3], 9, 8 + n)
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[4]), -1)
end
redis.call('PEXPIRE', KEYS[3], ttl)
for i = 1, nc do
  local p = cpos[i]
  local mk, tk = KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  redis.call('HSET', mk, 'v', ARGV[p + 1], 's', ARGV[p + 2])
  redis.call('PEXPIRE', mk, ttl)
  local trim, add = tonumber(ARGV[p + 3]), tonumber(ARGV[p + 4])
  if trim < 0 then
    redis.call('DEL', tk)
  elseif trim > 0 then
    redis.call('LTRIM', tk, trim, -1)
  end
  if add > 0 then rpush_args(tk, p + 5, p + 4 + add) end
  redis.call('PEXPIRE', tk, ttl)
end
return {'ok', st}
`

// stamp passes the epoch write stamp at msgs[i] (see
// redisconn.Conn.StampKey), answered by a script sent when the floor was
// floor, to the connection, which notices a rollback; it returns it.
func (r *Redis) stamp(ctx context.Context, epoch string, msgs []rueidis.RedisMessage, i int, floor int64) (int64, error) {
	if len(msgs) <= i {
		return 0, fmt.Errorf("%w: no write stamp in the update script's answer", errCorrupt)
	}
	n, err := parseStamp(msgs[i])
	if err != nil {
		return 0, err
	}
	if err := r.conn.Stamp(ctx, epoch, n, floor); err != nil {
		r.dropCache()
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return n, nil
}

// parseStamp reads a write stamp: INCR's integer, or a stored decimal
// ("" or nil: none, 0).
func parseStamp(m rueidis.RedisMessage) (int64, error) {
	if n, err := m.ToInt64(); err == nil {
		return n, nil
	}
	if m.IsNil() {
		return 0, nil
	}
	v, err := m.ToString()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: write stamp", errCorrupt)
	}
	return n, nil
}

// recordRollback compares a history read from Redis with this replica's
// copy of it: a history is written at ever higher stamps within an epoch,
// so one read at a lower stamp than the copy's is an older version of it
// (later writes elsewhere cannot hide that). A history that is gone (it
// may have expired) is left to the epoch stamp.
func (r *Redis) recordRollback(ctx context.Context, cached, fresh *view) error {
	// (Both views are of one epoch: cached() keeps only the current
	// epoch's copies and exec runs in the view's epoch.)
	if cached.verified || cached.hstamp == 0 || fresh.hstamp == 0 || fresh.hstamp >= cached.hstamp {
		return nil
	}
	r.dropCache()
	err := r.conn.RolledBack(ctx, fmt.Sprintf("a history written at stamp %d was read at stamp %d", cached.hstamp, fresh.hstamp))
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
