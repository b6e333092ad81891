// Package redisconn is mcpgate's one connection to a shared Redis (or
// Valkey) server: the client, the key prefix, the operation timeout and
// the data's epoch. The stores that replicas share (sequence state,
// revocations, session bindings, exchanged tokens) take a *Conn.
//
// The epoch is a key holding a random id and the time it was created. It
// is created when absent and refreshed by every replica, so a data set
// that was lost — flushed, expired, or replaced by a failover to a server
// without it — is noticed: the key is gone or holds another id. Every
// replica then adopts the new epoch and tells its subscribers, which drop
// what they cached from the lost data; the gateway also refuses tokens
// issued before the new epoch began, because the revocations that might
// have covered them were lost too.
package redisconn

import (
	"context"
	"crypto/rand"
	"crypto/tls"
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

// ErrUnavailable is returned (wrapped) when Redis cannot be reached or
// did not answer in time; callers fail closed.
var ErrUnavailable = errors.New("redis unavailable")

// ErrCorrupt is returned (wrapped) when a stored value is malformed.
var ErrCorrupt = errors.New("redis: a stored value is malformed")

// Config configures a connection. URL is required; zero fields take the
// defaults shown.
type Config struct {
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
	// Timeout bounds each operation and each dial. 0 → 1s.
	Timeout time.Duration
	// EpochTTL is the lifetime of the epoch key, refreshed at a quarter
	// of it. 0 → 24h.
	EpochTTL time.Duration
	// DisableCache turns client-side caching off (servers without
	// CLIENT TRACKING); reads that use it then go to the server.
	DisableCache bool
	// Now is the clock. nil → time.Now.
	Now func() time.Time
	// Logger receives connection events. nil → slog.Default().
	Logger *slog.Logger
}

// Epoch identifies one lifetime of the data in Redis.
type Epoch struct {
	ID    string
	Since time.Time
}

// Conn is a connection to Redis shared by mcpgate's stores.
type Conn struct {
	cfg     Config
	client  rueidis.Client
	log     *slog.Logger
	refresh *rueidis.Lua

	epoch   atomic.Pointer[Epoch]
	epochMu sync.Mutex
	// lastOK is when Redis last answered, in nanoseconds since start (a
	// monotonic clock): the heartbeat's and the epoch checks' successes.
	lastOK atomic.Int64
	start  time.Time

	// The highest write stamp seen in the current epoch (see Stamp).
	stamps  Stamps
	subMu   sync.Mutex
	subs    map[uint64]func(Epoch)
	nextSub uint64

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Open connects, adopts (or starts) the data's epoch and starts
// refreshing it. The caller must Close the Conn.
func Open(cfg Config) (*Conn, error) {
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "mcpgate:"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
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
	opt, err := options(cfg)
	if err != nil {
		return nil, err
	}
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("%w: connect to %s: %w", ErrUnavailable, RedactURL(cfg.URL), err)
	}
	c := &Conn{
		cfg: cfg, client: client, log: cfg.Logger, start: time.Now(),
		refresh: rueidis.NewLuaScript(epochScript),
		subs:    map[uint64]func(Epoch){},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	if err := c.CheckEpoch(ctx); err != nil {
		client.Close()
		return nil, err
	}
	go c.run()
	return c, nil
}

// options turns the configuration into client options.
func options(cfg Config) (rueidis.ClientOption, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return rueidis.ClientOption{}, fmt.Errorf("redis url: %w", err)
	}
	if _, set := u.User.Password(); set {
		return rueidis.ClientOption{}, errors.New("the redis URL holds a password: use a password file")
	}
	opt, err := rueidis.ParseURL(cfg.URL)
	if err != nil {
		return rueidis.ClientOption{}, fmt.Errorf("redis url %s: %w", RedactURL(cfg.URL), err)
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
	if file := cfg.PasswordFile; file != "" || user != "" {
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
	opt.DisableCache = cfg.DisableCache
	return opt, nil
}

func readPassword(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("redis password file: %w", err)
	}
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return "", fmt.Errorf("redis password file %s is empty", file)
	}
	return p, nil
}

// RedactURL drops any userinfo from a URL, for messages.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}

// Client is the Redis client.
func (c *Conn) Client() rueidis.Client { return c.client }

// Key returns the prefixed key for name.
func (c *Conn) Key(name string) string { return c.cfg.KeyPrefix + name }

// Timeout is the bound of one operation.
func (c *Conn) Timeout() time.Duration { return c.cfg.Timeout }

// Unavailable wraps an error from the client as ErrUnavailable.
func Unavailable(err error) error { return fmt.Errorf("%w: %w", ErrUnavailable, err) }

// Close stops the epoch refresh and disconnects.
func (c *Conn) Close() error {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		c.client.Close()
	})
	return nil
}

// Ping checks that Redis answers (readiness).
func (c *Conn) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := c.client.Do(ctx, c.client.B().Ping().Build()).Error(); err != nil {
		return Unavailable(err)
	}
	c.answered()
	return nil
}

// Epoch returns the data's current epoch.
func (c *Conn) Epoch() Epoch { return *c.epoch.Load() }

// EpochKey is the epoch's key, for scripts that check it.
func (c *Conn) EpochKey() string { return c.Key("epoch") }

// StampKey is the key of the epoch's write stamp: a counter that every
// write of sequence state and revocations increments (INCR) and that lives
// exactly as long as the epoch (the epoch refresh keeps its TTL). It only
// grows within an epoch, whatever expires. So a script that reads a lower
// stamp than one this replica had seen before sending it — or a record
// written at a lower stamp than a version of it this replica saw — shows
// that Redis went back to an older state (a failover to a replica that
// missed the latest writes, a restored backup) without the epoch key
// showing it.
func (c *Conn) StampKey() string { return c.Key("stamp") }

// ErrRolledBack is returned (wrapping ErrUnavailable) when Redis went back
// to an older state: a new epoch has begun, and the operation that found
// it must be refused (its caller was checked against the old epoch).
var ErrRolledBack = fmt.Errorf("%w: the shared state went back to an older version; a new epoch began", ErrUnavailable)

// Stamps tracks the highest write stamp seen in an epoch: for the epoch
// as a whole (Conn.StampFloor) or for one record.
type Stamps struct {
	mu    sync.Mutex
	epoch string
	max   int64
}

// Floor returns the highest stamp seen in epoch id (0 in another epoch).
func (s *Stamps) Floor(id string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != id {
		return 0
	}
	return s.max
}

// Saw records stamp as seen in epoch id.
func (s *Stamps) Saw(id string, stamp int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != id {
		s.epoch, s.max = id, 0
	}
	s.max = max(s.max, stamp)
}

// StampFloor returns the highest epoch stamp this replica has seen in
// epoch id. Take it before sending a script and pass it to Stamp with the
// stamp the script answers: the answer cannot be lower unless Redis went
// back (a lower answer than a stamp seen only while the script was in
// flight is ordinary concurrency).
func (c *Conn) StampFloor(id string) int64 { return c.stamps.Floor(id) }

// Stamp records the epoch stamp a script answered in epoch id, sent when
// the floor was floor. A lower stamp starts a new epoch and returns
// ErrRolledBack. Another epoch's stamp is ignored (the caller handles the
// epoch change).
func (c *Conn) Stamp(ctx context.Context, id string, stamp, floor int64) error {
	if ep := c.epoch.Load(); ep == nil || ep.ID != id {
		return nil
	}
	if stamp < floor {
		return c.RolledBack(ctx, fmt.Sprintf("the write stamp is %d, %d was seen before", stamp, floor))
	}
	c.stamps.Saw(id, stamp)
	return nil
}

// RolledBack starts a new epoch because Redis was found to have gone back
// to an older state, and returns ErrRolledBack.
func (c *Conn) RolledBack(ctx context.Context, why string) error {
	c.log.Warn("redis: the shared state went back to an older version", "evidence", why)
	if err := c.ForceNewEpoch(ctx, "the shared state went back to an older version"); err != nil {
		return err
	}
	return ErrRolledBack
}

// OnEpoch registers fn to be called (on the goroutine that noticed it)
// when the data is found lost and a new epoch begins.
func (c *Conn) OnEpoch(fn func(Epoch)) (cancel func()) {
	c.subMu.Lock()
	id := c.nextSub
	c.nextSub++
	c.subs[id] = fn
	c.subMu.Unlock()
	return func() {
		c.subMu.Lock()
		delete(c.subs, id)
		c.subMu.Unlock()
	}
}

// heartbeat is how often an idle connection is checked (a PING).
func (c *Conn) heartbeat() time.Duration { return max(c.cfg.Timeout/4, 10*time.Millisecond) }

// Fresh returns an error (wrapping ErrUnavailable) when Redis has not
// answered for longer than the operation timeout plus a heartbeat. Reads
// served from the client-side cache call it first: while Redis is
// unreachable without the connection being closed (a frozen server, a
// network partition) the cache cannot receive invalidations, so what it
// holds may be stale and must not be trusted.
func (c *Conn) Fresh() error {
	since := time.Since(c.start) - time.Duration(c.lastOK.Load())
	if since > c.cfg.Timeout+c.heartbeat() {
		return Unavailable(fmt.Errorf("no answer from redis for %v", since.Round(time.Millisecond)))
	}
	return nil
}

func (c *Conn) answered() { c.lastOK.Store(int64(time.Since(c.start))) }

// Answered records that Redis just answered a command (for Fresh).
func (c *Conn) Answered() { c.answered() }

// run sends the heartbeat and refreshes the epoch key at a quarter of its
// TTL, which also notices a lost data set while no call arrives.
func (c *Conn) run() {
	defer close(c.done)
	t := time.NewTicker(max(c.cfg.EpochTTL/4, time.Second))
	defer t.Stop()
	hb := time.NewTicker(c.heartbeat())
	defer hb.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-hb.C:
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
			if c.client.Do(ctx, c.client.B().Ping().Build()).Error() == nil {
				c.answered()
			}
			cancel()
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
			if err := c.CheckEpoch(ctx); err != nil {
				c.log.Warn("redis: epoch check failed", "error", err)
			}
			cancel()
		}
	}
}

// CheckEpoch refreshes the epoch key, creating it when absent, and adopts
// what is stored.
func (c *Conn) CheckEpoch(ctx context.Context) error {
	candidate := encodeEpoch(Epoch{ID: NewID(), Since: c.cfg.Now()})
	s, err := c.refresh.Exec(ctx, c.client, []string{c.EpochKey(), c.StampKey()},
		[]string{candidate, strconv.FormatInt(c.cfg.EpochTTL.Milliseconds(), 10)}).ToString()
	if err != nil {
		return Unavailable(err)
	}
	c.answered()
	ep, err := decodeEpoch(s)
	if err != nil {
		return c.ForceNewEpoch(ctx, "the stored epoch is malformed")
	}
	if c.epoch.Load() == nil {
		c.epoch.Store(&ep)
		c.log.Info("redis: store ready", "epoch", ep.ID, "since", ep.Since)
		return nil
	}
	c.adopt(ep)
	return nil
}

// ForceNewEpoch replaces the stored epoch with a new one and adopts it,
// for when the data is known to be lost or rolled back in a way the epoch
// key did not show (a malformed epoch value, a failover to a replica that
// missed the latest writes). Every replica adopts it on its next check.
func (c *Conn) ForceNewEpoch(ctx context.Context, why string) error {
	ep := Epoch{ID: NewID(), Since: time.Unix(0, c.cfg.Now().UnixNano())} // as every replica decodes it
	err := forceScript.Exec(ctx, c.client, []string{c.EpochKey(), c.StampKey()},
		[]string{encodeEpoch(ep), strconv.FormatInt(c.cfg.EpochTTL.Milliseconds(), 10)}).Error()
	if err != nil {
		return Unavailable(err)
	}
	c.answered()
	c.log.Warn("redis: starting a new epoch", "reason", why)
	c.adopt(ep)
	return nil
}

// EpochLost handles a script that found another epoch value, or none. It
// reads the epoch again rather than trusting the value the script saw: a
// concurrent replica may have started a newer one since, and a replica
// must never go back to an older epoch.
func (c *Conn) EpochLost(ctx context.Context, _ string) error {
	return c.CheckEpoch(ctx)
}

// adopt switches to ep if it is new and tells the subscribers.
func (c *Conn) adopt(ep Epoch) {
	c.epochMu.Lock()
	defer c.epochMu.Unlock()
	if cur := c.epoch.Load(); cur != nil && cur.ID == ep.ID {
		return
	}
	c.epoch.Store(&ep)
	c.log.Warn("redis: the shared data was lost (flushed, expired or failed over); histories, taint, budgets, revocations and session bindings start again, and tokens issued before the new epoch are refused",
		"epoch", ep.ID, "since", ep.Since)
	c.subMu.Lock()
	fns := make([]func(Epoch), 0, len(c.subs))
	for _, fn := range c.subs {
		fns = append(fns, fn)
	}
	c.subMu.Unlock()
	for _, fn := range fns {
		fn(ep)
	}
}

// NewID returns a random 24-hex-digit id (versions, epochs).
func NewID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func encodeEpoch(ep Epoch) string {
	return ep.ID + " " + strconv.FormatInt(ep.Since.UnixNano(), 10)
}

// MatchEpoch reports whether a stored epoch value is ep.
func MatchEpoch(stored string, ep Epoch) bool {
	id, _, ok := strings.Cut(stored, " ")
	return ok && id == ep.ID
}

func decodeEpoch(s string) (Epoch, error) {
	id, ns, ok := strings.Cut(s, " ")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || id == "" || len(id) > 64 || err != nil {
		return Epoch{}, fmt.Errorf("%w: epoch value", ErrCorrupt)
	}
	return Epoch{ID: id, Since: time.Unix(0, n)}, nil
}

// epochScript: KEYS[1] epoch key, KEYS[2] the stamp key; ARGV[1] a new
// epoch value, ARGV[2] the TTL in ms. It creates the epoch when absent
// (with a fresh stamp), refreshes both TTLs and returns the epoch.
const epochScript = `
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('DEL', KEYS[2])
  return ARGV[1]
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return cur
`

// forceScript: KEYS epoch, stamp; ARGV the new epoch value, TTL ms.
var forceScript = rueidis.NewLuaScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
`)

// EpochCheckLua is a Lua fragment for scripts whose KEYS[1] is the epoch
// key and ARGV[1] the epoch id they expect: it returns {'epoch', value}
// from the script when the epoch differs.
const EpochCheckLua = `
local epoch_cur = redis.call('GET', KEYS[1])
if not epoch_cur then return {'epoch', ''} end
local epoch_sp = string.find(epoch_cur, ' ', 1, true)
if not epoch_sp or string.sub(epoch_cur, 1, epoch_sp - 1) ~= ARGV[1] then return {'epoch', epoch_cur} end
`
