// Package tokencache is the cache of exchanged tokens that mcpgate
// replicas share through Redis (credential.SharedCache): a token one
// replica obtained by RFC 8693 token exchange is served by the others
// without a request to the authorization server.
//
// Tokens are encrypted at rest with AES-256-GCM under keys read from a
// key file (a Kubernetes Secret mount, mode 0400 or 0440), one key per
// line:
//
//	# comment
//	<key-id> <base64 (standard or URL-safe) of 32 random bytes>
//
// e.g. made with: echo "k$(date +%Y%m%d) $(head -c32 /dev/urandom | base64)".
// The first key encrypts; every listed key decrypts. To rotate, put a new
// key on top and keep the old one below until the tokens it encrypted
// have expired (the longest token lifetime), then remove it. The file is
// checked for a change at most once a second, so a rotation needs no
// restart; a new file that is refused (no key, a bad line, readable by
// everyone…) leaves the keys in use unchanged and is logged. While
// replicas disagree on the first key (a Secret update reaches pods at
// different times), a replica may miss a token another encrypted with a
// key it does not know yet and exchange anew: that costs a request, never
// a refusal. (Adding the new key second first, and moving it on top once
// every replica has it, avoids even that.)
//
// Each entry is one Redis string at Conn.Key("tok:" + base64url(key)),
// where key is the Exchange's cache key, itself a SHA-256: no user, client
// or token can be read from the key names. The value names its key id
// and is authenticated together with its Redis key name, so a value
// copied to another key does not decrypt. It expires (PX) when the entry
// stops being valid, never later. A value that cannot be read — unknown
// key id, failed authentication, malformed — is a miss, logged once per
// key id and reason.
//
// Reads are plain GETs, not client-side cached (DoCache): the Exchange
// keeps what it reads in memory, so a replica reads a key about once per
// token lifetime and a client-side copy would rarely be read again, while
// costing server-side tracking and a second copy of the ciphertext.
//
// Epoch: nothing is needed when Redis loses its data (redisconn's
// OnEpoch): the cached tokens simply vanish, and the next miss exchanges
// anew. Errors of Redis wrap redisconn.ErrUnavailable; the Exchange
// treats them as misses.
package tokencache

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/mcpgate/mcpgate/internal/credential"
	"github.com/mcpgate/mcpgate/internal/redisconn"
)

// reloadInterval is how often, at most, the key file is checked.
const reloadInterval = time.Second

// maxWarned bounds the remembered (reason, key id) pairs already logged.
const maxWarned = 64

// Config configures a Cache. Conn and KeysFile are required.
type Config struct {
	// Conn is the shared Redis connection (its key prefix and timeout).
	Conn *redisconn.Conn
	// KeysFile is the key file (see the package documentation).
	KeysFile string
	// Now is the clock. nil → time.Now.
	Now func() time.Time
	// Logger receives key file and unreadable-value events, never a key
	// or a token. nil → slog.Default().
	Logger *slog.Logger
}

// Cache is the shared, encrypted cache of exchanged tokens. It is safe
// for concurrent use.
type Cache struct {
	conn *redisconn.Conn
	file string
	now  func() time.Time
	log  *slog.Logger

	ring      atomic.Pointer[keyring]
	nextCheck atomic.Int64 // Unix nanoseconds of the next key file check

	reloadMu sync.Mutex
	loaded   os.FileInfo // the file the ring was read from
	refused  os.FileInfo // the last file refused (logged once)
	statErr  bool        // a failed stat was logged

	warnMu sync.Mutex
	warned map[string]bool
}

var _ credential.SharedCache = (*Cache)(nil)

// New validates cfg, reporting every problem at once, reads the key file
// and returns the Cache.
func New(cfg Config) (*Cache, error) {
	var errs []error
	if cfg.Conn == nil {
		errs = append(errs, errors.New("conn is required"))
	}
	var ring *keyring
	var fi os.FileInfo
	if cfg.KeysFile == "" {
		errs = append(errs, errors.New("keys file is required"))
	} else {
		var err error
		if ring, fi, err = readKeyFile(cfg.KeysFile); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(errors.New("tokencache: invalid config"), err)
	}
	c := &Cache{conn: cfg.Conn, file: cfg.KeysFile, now: cfg.Now, log: cfg.Logger, loaded: fi, warned: map[string]bool{}}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.ring.Store(ring)
	c.nextCheck.Store(c.now().Add(reloadInterval).UnixNano())
	c.log.Info("tokencache: keys loaded", "file", c.file, "key_ids", strings.Join(ring.ids, ","), "encrypt_with", ring.enc.id)
	return c, nil
}

// Get returns the entry stored under key, if there is one this process
// can read and it is still valid. A Redis failure is an error wrapping
// redisconn.ErrUnavailable.
func (c *Cache) Get(ctx context.Context, key [32]byte) (credential.Credential, time.Time, bool, error) {
	c.maybeReload()
	name := c.redisKey(key)
	client := c.conn.Client()
	ctx, cancel := context.WithTimeout(ctx, c.conn.Timeout())
	defer cancel()
	value, err := client.Do(ctx, client.B().Get().Key(name).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return credential.Credential{}, time.Time{}, false, nil
	}
	if err != nil {
		return credential.Credential{}, time.Time{}, false, fmt.Errorf("tokencache: get: %w", redisconn.Unavailable(err))
	}
	plain, id, err := c.ring.Load().open(name, value)
	if err != nil {
		c.warnOnce(err, id)
		return credential.Credential{}, time.Time{}, false, nil
	}
	cred, validUntil, err := decodeEntry(plain)
	clear(plain)
	if err != nil {
		c.warnOnce(err, id)
		return credential.Credential{}, time.Time{}, false, nil
	}
	if !c.now().Before(validUntil) {
		return credential.Credential{}, time.Time{}, false, nil
	}
	return cred, validUntil, true, nil
}

// Put stores cred under key until validUntil (the Redis key expires then,
// or a little earlier: the TTL is rounded down to the millisecond). An
// entry already past its validUntil is not stored. A Redis failure is an
// error wrapping redisconn.ErrUnavailable.
func (c *Cache) Put(ctx context.Context, key [32]byte, cred credential.Credential, validUntil time.Time) error {
	c.maybeReload()
	ttl := validUntil.Sub(c.now()).Truncate(time.Millisecond)
	if ttl < time.Millisecond {
		return nil
	}
	plain, err := encodeEntry(cred, validUntil)
	if err != nil {
		return fmt.Errorf("tokencache: put: %w", err)
	}
	name := c.redisKey(key)
	value := c.ring.Load().seal(name, plain)
	clear(plain)
	client := c.conn.Client()
	ctx, cancel := context.WithTimeout(ctx, c.conn.Timeout())
	defer cancel()
	err = client.Do(ctx, client.B().Set().Key(name).Value(rueidis.BinaryString(value)).Px(ttl).Build()).Error()
	if err != nil {
		return fmt.Errorf("tokencache: put: %w", redisconn.Unavailable(err))
	}
	return nil
}

// Reload reads the key file now (as the periodic check does when the
// file changed). On error the keys in use are kept.
func (c *Cache) Reload() error {
	return c.reload(true)
}

// redisKey is the Redis key of a cache key.
func (c *Cache) redisKey(key [32]byte) string {
	return c.conn.Key("tok:" + base64.RawURLEncoding.EncodeToString(key[:]))
}

// maybeReload checks the key file when the interval has passed; one
// caller checks, the others go on with the keys in use.
func (c *Cache) maybeReload() {
	now := c.now().UnixNano()
	next := c.nextCheck.Load()
	if now < next || !c.nextCheck.CompareAndSwap(next, now+int64(reloadInterval)) {
		return
	}
	_ = c.reload(false)
}

// reload reads the key file if it changed (or always, when forced).
func (c *Cache) reload(force bool) error {
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	stat, err := os.Stat(c.file)
	if err != nil {
		if !c.statErr {
			c.log.Error("tokencache: cannot check the key file; keeping the keys in use", "file", c.file, "error", err)
			c.statErr = true
		}
		return fmt.Errorf("tokencache: key file: %w", err)
	}
	c.statErr = false
	if !force && (sameFile(stat, c.loaded) || sameFile(stat, c.refused)) {
		return nil
	}
	ring, fi, err := readKeyFile(c.file)
	if fi == nil { // not opened
		fi = stat
	}
	if err != nil {
		c.log.Error("tokencache: the key file is refused; keeping the keys in use", "file", c.file, "error", err,
			"key_ids", strings.Join(c.ring.Load().ids, ","))
		c.refused = fi
		return err
	}
	c.loaded, c.refused = fi, nil
	c.ring.Store(ring)
	c.warnMu.Lock()
	clear(c.warned)
	c.warnMu.Unlock()
	c.log.Info("tokencache: keys loaded", "file", c.file, "key_ids", strings.Join(ring.ids, ","), "encrypt_with", ring.enc.id)
	return nil
}

// warnOnce logs an unreadable value once per reason and key id (until
// the keys are reloaded).
func (c *Cache) warnOnce(reason error, id string) {
	if id != "" && !validID(id) {
		id = "(invalid)"
	}
	k := reason.Error() + "\x00" + id
	c.warnMu.Lock()
	log := !c.warned[k] && len(c.warned) < maxWarned // when full, quiet
	if log {
		c.warned[k] = true
	}
	c.warnMu.Unlock()
	if log {
		c.log.Warn("tokencache: a cached token cannot be read; treated as a miss (logged once per key id)", "reason", reason, "key_id", id)
	}
}
