package state

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// RedisConfig configures a Redis store. URL is required; zero fields
// take the defaults shown.
type RedisConfig struct {
	// URL is redis://[user@]host:port[/db] or rediss://… (TLS). A
	// password in the URL is refused: it belongs in PasswordFile.
	URL string
	// Username is the ACL user; it overrides the URL's.
	Username string
	// PasswordFile holds the password; it is read again before every
	// (re)connection, so a rotated secret is picked up.
	PasswordFile string
	// TLS is used for rediss:// (nil → the system roots).
	TLS *tls.Config
	// KeyPrefix starts every key. "" → "mcpgate:".
	KeyPrefix string
	// Timeout bounds each operation. 0 → 1s.
	Timeout time.Duration
	// MaxEntries is the history length kept per run. 0 → 1000.
	MaxEntries int
	// IdleTimeout forgets a record unchanged this long (the keys' TTL).
	// 0 → 1h.
	IdleTimeout time.Duration
	// MaxCached bounds the records this process keeps decoded between
	// calls (a cache checked against Redis on every call). 0 → 10000.
	MaxCached int
	// EpochTTL is the lifetime of the epoch key, refreshed by every
	// replica at a quarter of it. 0 → 24h.
	EpochTTL time.Duration
	// OnEpoch is called (from a store goroutine) when the store finds
	// that Redis lost its data since this process last saw it: a flush,
	// an expiry of everything, or a failover to a replica without it.
	OnEpoch func(Epoch)
	// Now is the clock. nil → time.Now.
	Now func() time.Time
	// Logger receives store events. nil → slog.Default().
	Logger *slog.Logger
}

// Epoch identifies one lifetime of the data in Redis: a new epoch begins
// when the data is found lost. Everything remembered before Since (taint,
// budgets, revocations, session bindings) is gone.
type Epoch struct {
	ID    string
	Since time.Time
}

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
	client  rueidis.Client
	log     *slog.Logger
	script  *rueidis.Lua
	refresh *rueidis.Lua
	stripes [64]sync.Mutex

	epoch atomic.Pointer[Epoch]
	// epochMu serialises epoch changes.
	epochMu sync.Mutex

	mu       sync.Mutex // guards the caches
	hists    map[Key]*histSnap
	counters map[Key]*ctrSnap

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

type histSnap struct {
	ver  string
	hist *History
}

type ctrSnap struct {
	ver  string
	c    *Counter
	seen time.Time
}

var _ Store = (*Redis)(nil)

// ErrConflict is returned when an Update kept losing to concurrent
// changes of the same records.
var ErrConflict = errors.New("state: the records kept changing under concurrent updates")

// maxAttempts bounds the retries of one Update.
const maxAttempts = 16

// NewRedis connects to Redis, adopts (or starts) the data's epoch and
// starts refreshing it. The caller must Close it.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "mcpgate:"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
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
	if cfg.EpochTTL <= 0 {
		cfg.EpochTTL = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	opt, err := redisOptions(cfg)
	if err != nil {
		return nil, err
	}
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("%w: connect to redis %s: %w", ErrUnavailable, redactURL(cfg.URL), err)
	}
	r := &Redis{
		cfg: cfg, client: client, log: cfg.Logger,
		script:   rueidis.NewLuaScript(updateScript),
		refresh:  rueidis.NewLuaScript(epochScript),
		hists:    map[Key]*histSnap{},
		counters: map[Key]*ctrSnap{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	if err := r.checkEpoch(ctx); err != nil {
		client.Close()
		return nil, err
	}
	go r.run()
	return r, nil
}

// redisOptions turns the configuration into client options.
func redisOptions(cfg RedisConfig) (rueidis.ClientOption, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return rueidis.ClientOption{}, fmt.Errorf("state: redis url: %w", err)
	}
	if _, set := u.User.Password(); set {
		return rueidis.ClientOption{}, errors.New("state: the redis URL holds a password: use a password file")
	}
	opt, err := rueidis.ParseURL(cfg.URL)
	if err != nil {
		return rueidis.ClientOption{}, fmt.Errorf("state: redis url %s: %w", redactURL(cfg.URL), err)
	}
	if u.Scheme == "rediss" {
		if cfg.TLS != nil {
			opt.TLSConfig = cfg.TLS.Clone()
		}
		if opt.TLSConfig == nil {
			opt.TLSConfig = &tls.Config{}
		}
		if opt.TLSConfig.ServerName == "" {
			opt.TLSConfig.ServerName = u.Hostname()
		}
		opt.TLSConfig.MinVersion = max(opt.TLSConfig.MinVersion, tls.VersionTLS12)
	}
	user := opt.Username
	if cfg.Username != "" {
		user = cfg.Username
	}
	opt.Username, opt.Password = "", ""
	if cfg.PasswordFile != "" || user != "" {
		file := cfg.PasswordFile
		if file != "" {
			if _, err := readPassword(file); err != nil {
				return rueidis.ClientOption{}, err
			}
		}
		opt.AuthCredentialsFn = func(rueidis.AuthCredentialsContext) (rueidis.AuthCredentials, error) {
			c := rueidis.AuthCredentials{Username: user}
			if file != "" {
				p, err := readPassword(file)
				if err != nil {
					return c, err
				}
				c.Password = p
			}
			if c.Username == "" {
				c.Username = "default"
			}
			return c, nil
		}
	}
	opt.Dialer.Timeout = cfg.Timeout
	opt.ConnWriteTimeout = cfg.Timeout
	opt.ClientName = "mcpgate"
	return opt, nil
}

func readPassword(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("state: redis password file: %w", err)
	}
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return "", fmt.Errorf("state: redis password file %s is empty", file)
	}
	return p, nil
}

// redactURL drops any userinfo from a URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}

// Close stops the epoch refresh and disconnects.
func (r *Redis) Close() error {
	r.once.Do(func() {
		close(r.stop)
		<-r.done
		r.client.Close()
	})
	return nil
}

// Epoch returns the data's current epoch.
func (r *Redis) Epoch() Epoch { return *r.epoch.Load() }

// Ping checks that Redis answers (for readiness).
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	if err := r.client.Do(ctx, r.client.B().Ping().Build()).Error(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

func (r *Redis) key(kind string, k Key) string {
	return r.cfg.KeyPrefix + kind + base64.RawURLEncoding.EncodeToString(k[:])
}

func (r *Redis) epochKey() string { return r.cfg.KeyPrefix + "epoch" }

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
func newVersion() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// view is what one Update works from: the records' versions and values,
// and whether they were read from Redis during this Update.
type view struct {
	hver     string
	hist     *History
	cvers    []string
	ctrs     []*Counter
	seen     []time.Time
	verified bool
	// reset: the history was found expired (by its last change), so a
	// write replaces the stored entries instead of appending to them.
	reset bool
}

// cached returns this process's copy of the records (empty ones where it
// has none), unverified.
func (r *Redis) cached(h Key, c []Key) *view {
	v := &view{cvers: make([]string, len(c)), ctrs: make([]*Counter, len(c)), seen: make([]time.Time, len(c))}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.hists[h]; s != nil {
		v.hver, v.hist = s.ver, s.hist
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
			v.ctrs[i] = &Counter{}
		}
	}
}

// Update implements Store.
func (r *Redis) Update(ctx context.Context, h Key, c []Key, fn func(*History, []*Counter) error) error {
	var keys [8]Key
	defer r.unlock(r.lock(append(append(keys[:0], h), c...)...))
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	now := r.cfg.Now()
	v := r.cached(h, c)
	epochRetried := false
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
			cp := *x
			ctrs[i] = &cp
		}
		base := len(hist.Entries)
		if ferr := fn(hist, ctrs); ferr != nil {
			if v.verified {
				return ferr
			}
			res, err := r.exec(ctx, h, c, v, nil, nil, nil, now)
			switch {
			case err != nil:
				return err
			case res.epoch:
				if epochRetried {
					return fmt.Errorf("%w: the store's epoch keeps changing", ErrUnavailable)
				}
				epochRetried = true
				r.epochLost(ctx, res.current)
				v = r.cached(h, c)
				continue
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
		switch {
		case err != nil:
			r.forget(h, c) // the write may or may not have happened
			return err
		case res.epoch:
			if epochRetried {
				return fmt.Errorf("%w: the store's epoch keeps changing", ErrUnavailable)
			}
			epochRetried = true
			r.epochLost(ctx, res.current)
			v = r.cached(h, c)
			continue
		case res.fresh != nil:
			v = res.fresh
			continue
		}
		r.remember(h, c, res.hver, hist, res.cvers, ctrs, now)
		return nil
	}
	return ErrConflict
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
	cvers   []string
}

// exec runs the update script: with hist == nil it only checks that v is
// current; otherwise it writes hist, the added entries and ctrs if v is
// current.
func (r *Redis) exec(ctx context.Context, h Key, c []Key, v *view, hist *History, added []Entry, ctrs []*Counter, now time.Time) (result, error) {
	ep := r.epoch.Load()
	keys := make([]string, 0, 3+len(c))
	keys = append(keys, r.epochKey(), r.key("h:", h), r.key("e:", h))
	for _, k := range c {
		keys = append(keys, r.key("c:", k))
	}
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
		nv, data := "", ""
		if write {
			var err error
			if data, err = encodeCounter(ctrs[i], now); err != nil {
				return res, fmt.Errorf("state: encode counter: %w", err)
			}
			nv = newVersion()
			cvers[i] = nv
		}
		args = append(args, v.cvers[i], nv, data)
	}
	msgs, err := r.script.Exec(ctx, r.client, keys, args).ToArray()
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if len(msgs) == 0 {
		return res, fmt.Errorf("%w: empty answer from the update script", errCorrupt)
	}
	tag, err := msgs[0].ToString()
	if err != nil {
		return res, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	switch tag {
	case "ok":
		res.hver, res.cvers = newH, cvers
		return res, nil
	case "current":
		return res, nil
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
		return res, nil
	}
	return res, fmt.Errorf("%w: unexpected answer %q from the update script", errCorrupt, tag)
}

// decodeStale decodes {"stale", hver, hmeta, {entries}, cver1, cdata1, …}.
func (r *Redis) decodeStale(msgs []rueidis.RedisMessage, nc int) (*view, error) {
	if len(msgs) != 4+2*nc {
		return nil, fmt.Errorf("%w: %d values in the update script's answer", errCorrupt, len(msgs))
	}
	str := func(i int) (string, error) {
		s, err := msgs[i].ToString()
		if err != nil {
			return "", fmt.Errorf("%w: %w", errCorrupt, err)
		}
		return s, nil
	}
	v := &view{verified: true, cvers: make([]string, nc), ctrs: make([]*Counter, nc), seen: make([]time.Time, nc)}
	var err error
	if v.hver, err = str(1); err != nil {
		return nil, err
	}
	meta, err := str(2)
	if err != nil {
		return nil, err
	}
	list, err := msgs[3].ToArray()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	entries := make([]string, len(list))
	for i := range list {
		if entries[i], err = list[i].ToString(); err != nil {
			return nil, fmt.Errorf("%w: %w", errCorrupt, err)
		}
	}
	if v.hist, err = decodeHistory(meta, entries, r.cfg.MaxEntries); err != nil {
		return nil, err
	}
	for i := range nc {
		if v.cvers[i], err = str(4 + 2*i); err != nil {
			return nil, err
		}
		data, err := str(5 + 2*i)
		if err != nil {
			return nil, err
		}
		if v.ctrs[i], v.seen[i], err = decodeCounter(data); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// remember caches the records just written.
func (r *Redis) remember(h Key, c []Key, hver string, hist *History, cvers []string, ctrs []*Counter, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.boundLocked(1 + len(c))
	r.hists[h] = &histSnap{ver: hver, hist: hist}
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

// run refreshes the epoch key at a quarter of its TTL, which also notices
// a lost data set while no call arrives.
func (r *Redis) run() {
	defer close(r.done)
	t := time.NewTicker(max(r.cfg.EpochTTL/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
			if err := r.checkEpoch(ctx); err != nil {
				r.log.Warn("state: redis epoch check failed", "error", err)
			}
			cancel()
		}
	}
}

// checkEpoch refreshes the epoch key, creating it when absent, and adopts
// what is stored.
func (r *Redis) checkEpoch(ctx context.Context) error {
	mine := ""
	if ep := r.epoch.Load(); ep != nil {
		mine = ep.ID
	}
	candidate := encodeEpoch(Epoch{ID: newVersion(), Since: r.cfg.Now()})
	s, err := r.refresh.Exec(ctx, r.client, []string{r.epochKey()},
		[]string{candidate, strconv.FormatInt(r.cfg.EpochTTL.Milliseconds(), 10)}).ToString()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	ep, err := decodeEpoch(s)
	if err != nil {
		return err
	}
	if mine == "" {
		r.epoch.Store(&ep)
		r.log.Info("state: redis store ready", "epoch", ep.ID, "since", ep.Since)
		return nil
	}
	if ep.ID != mine {
		r.adopt(ep)
	}
	return nil
}

// epochLost handles an update script that found another epoch (or none).
func (r *Redis) epochLost(ctx context.Context, current string) {
	if current != "" {
		if ep, err := decodeEpoch(current); err == nil {
			r.adopt(ep)
			return
		}
	}
	if err := r.checkEpoch(ctx); err != nil {
		r.log.Warn("state: redis epoch check failed", "error", err)
	}
}

// adopt switches to a new epoch: what this process cached belongs to the
// lost data and is dropped.
func (r *Redis) adopt(ep Epoch) {
	r.epochMu.Lock()
	defer r.epochMu.Unlock()
	if cur := r.epoch.Load(); cur != nil && cur.ID == ep.ID {
		return
	}
	r.epoch.Store(&ep)
	r.mu.Lock()
	clear(r.hists)
	clear(r.counters)
	r.mu.Unlock()
	r.log.Warn("state: the redis data was lost (flushed, expired or failed over): histories, taint and budgets start again", "epoch", ep.ID, "since", ep.Since)
	if r.cfg.OnEpoch != nil {
		r.cfg.OnEpoch(ep)
	}
}

func encodeEpoch(ep Epoch) string {
	return ep.ID + " " + strconv.FormatInt(ep.Since.UnixNano(), 10)
}

func decodeEpoch(s string) (Epoch, error) {
	id, ns, ok := strings.Cut(s, " ")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || id == "" || len(id) > 64 || err != nil {
		return Epoch{}, fmt.Errorf("%w: epoch value", errCorrupt)
	}
	return Epoch{ID: id, Since: time.Unix(0, n)}, nil
}

// epochScript: KEYS[1] epoch key; ARGV[1] a new epoch value, ARGV[2] the
// TTL in ms. It creates the key when absent, refreshes its TTL and
// returns its value.
const epochScript = `
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return cur
`

// updateScript checks the epoch and the expected versions of a history
// and its counters and, in mode "w", writes them.
//
// KEYS: epoch, history header (hash v/d), history entries (list),
// counters (hash v/d)…
// ARGV: epoch id, mode ("r" check, "w" write, "wr" write replacing the
// entries), TTL ms, max entries, expected
// history version, new version, new header, n, n entries, then per
// counter: expected version, new version, new value.
//
// Answers {"epoch", current-or-""}, {"stale", hver, hdata, {entries},
// cver, cdata, …}, {"current"} (mode r) or {"ok"} (mode w).
const updateScript = `
local cur = redis.call('GET', KEYS[1])
if not cur then return {'epoch', ''} end
local sp = string.find(cur, ' ', 1, true)
if not sp or string.sub(cur, 1, sp - 1) ~= ARGV[1] then return {'epoch', cur} end
local n = tonumber(ARGV[8])
local base = 9 + n
local nc = #KEYS - 3
local stale = (redis.call('HGET', KEYS[2], 'v') or '') ~= ARGV[5]
for i = 1, nc do
  if (redis.call('HGET', KEYS[3 + i], 'v') or '') ~= ARGV[base + 3 * (i - 1)] then stale = true end
end
if stale then
  local h = redis.call('HMGET', KEYS[2], 'v', 'd')
  local out = {'stale', h[1] or '', h[2] or '', redis.call('LRANGE', KEYS[3], 0, -1)}
  for i = 1, nc do
    local c = redis.call('HMGET', KEYS[3 + i], 'v', 'd')
    out[#out + 1] = c[1] or ''
    out[#out + 1] = c[2] or ''
  end
  return out
end
if ARGV[2] == 'r' then return {'current'} end
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[2], 'v', ARGV[6], 'd', ARGV[7])
redis.call('PEXPIRE', KEYS[2], ttl)
if ARGV[2] == 'wr' then redis.call('DEL', KEYS[3]) end
if n > 0 then
  redis.call('RPUSH', KEYS[3], unpack(ARGV, 9, 8 + n))
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[4]), -1)
end
redis.call('PEXPIRE', KEYS[3], ttl)
for i = 1, nc do
  local b = base + 3 * (i - 1)
  redis.call('HSET', KEYS[3 + i], 'v', ARGV[b + 1], 'd', ARGV[b + 2])
  redis.call('PEXPIRE', KEYS[3 + i], ttl)
end
return {'ok'}
`
