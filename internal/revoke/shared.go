package revoke

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/mcpgate/mcpgate/internal/redisconn"
)

// With Config.Redis set, the list is shared by replicas through Redis: the
// same JSON document as the file, under the key "rev:doc", and a random
// version under "rev:ver". A write reads both, applies its change and
// stores the result only if the version is still the one it read (a Lua
// compare-and-set), so no replica's revocation overwrites another's.
//
// [List.Sync] keeps the snapshot current: it reads the version through
// client-side caching (no round trip while it is unchanged; Redis
// invalidates it on every replica when any replica writes), and only when
// it changed fetches the document, in the same script as the epoch, so a
// flushed Redis is noticed before an empty list is believed. The gateway
// calls Sync before every Check, and a background loop calls it so that
// the streams of a token revoked elsewhere are ended without a request.
// An unreachable Redis makes Sync fail: the gateway refuses the request
// (503), it never checks against a list it cannot know is current.
//
// When the data is found lost (a new epoch, [redisconn.Conn]), every
// token issued before the new epoch began is refused until the longest
// token lifetime has passed ([KindEpoch]): the revocations that might have
// covered it were lost with the data.

// KindEpoch is the kind of the entry Check reports for a token issued
// before the shared data's epoch began. It cannot be added.
const KindEpoch Kind = "epoch"

// syncCacheTTL bounds how long a cached version is trusted without an
// invalidation (the server invalidates it on change).
const syncCacheTTL = time.Minute

func (l *List) verKey() string { return l.rc.Key("rev:ver") }
func (l *List) docKey() string { return l.rc.Key("rev:doc") }

func (l *List) docStampKey() string { return l.rc.Key("rev:stamp") }

// readScript: KEYS epoch, ver, doc, epoch write stamp, the doc's write
// stamp → {epoch, ver, doc, stamp, doc stamp} ("" when absent).
var readScript = rueidis.NewLuaScriptReadOnly(`
local out = {}
for i = 1, 5 do out[i] = redis.call('GET', KEYS[i]) or '' end
return out
`)

// casScript: KEYS ver, doc, epoch write stamp, epoch, doc's write stamp;
// ARGV expected ver, new ver, doc, TTL ms, epoch id. It answers the write
// stamp of the write (see redisconn.Conn.StampKey), 0 when the version was
// not the expected one, -1 when the epoch is not ARGV[5].
var casScript = rueidis.NewLuaScript(`
local ep = redis.call('GET', KEYS[4])
if not ep or string.sub(ep, 1, #ARGV[5] + 1) ~= ARGV[5] .. ' ' then return -1 end
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
local st = redis.call('INCR', KEYS[3])
local ettl = redis.call('PTTL', KEYS[4])
if ettl > 0 then redis.call('PEXPIRE', KEYS[3], ettl) end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
redis.call('SET', KEYS[5], ARGV[5] .. ' ' .. st, 'PX', ARGV[4])
return st
`)

// Sync makes the snapshot current with the shared list (a no-op without
// Config.Redis). An error means the list could not be confirmed: the
// caller must refuse.
func (l *List) Sync(ctx context.Context) error { return l.sync(ctx, true) }

// SyncStrict is Sync reading the version from Redis rather than from the
// client-side cache: one round trip, and no window (the invalidation's
// flight, under a millisecond) in which a revocation just made on another
// replica is not seen. The gateway uses it for requests that make no other
// round trip; a tools/call instead has its state update check the version
// (SharedGuard) in the same round trip.
func (l *List) SyncStrict(ctx context.Context) error { return l.sync(ctx, false) }

// SharedGuard returns the key of the shared list's version and the
// version this replica's snapshot is ("" when there is no list), for a
// store script to refuse a write when the list changed since; key is ""
// without Config.Redis.
func (l *List) SharedGuard() (key, version string) {
	if l.rc == nil {
		return "", ""
	}
	if p := l.sharedVer.Load(); p != nil {
		version = *p
	}
	return l.verKey(), version
}

func (l *List) sync(ctx context.Context, cached bool) error {
	if l.rc == nil {
		return nil
	}
	if err := l.rc.Fresh(); cached && err != nil { // the cached version may be stale
		return fmt.Errorf("revoke: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.rc.Timeout())
	defer cancel()
	c := l.rc.Client()
	// The version and the epoch together: a new epoch (started by a
	// replica that found the data lost or rolled back) is noticed even
	// when the version looks unchanged.
	var vals []rueidis.RedisMessage
	var err error
	if cached {
		resps := c.DoMultiCache(ctx,
			rueidis.CT(c.B().Get().Key(l.verKey()).Cache(), syncCacheTTL),
			rueidis.CT(c.B().Get().Key(l.rc.EpochKey()).Cache(), syncCacheTTL))
		for _, r := range resps {
			m, e := r.ToMessage()
			if e != nil && !rueidis.IsRedisNil(e) {
				err = e
			}
			vals = append(vals, m)
		}
	} else {
		vals, err = c.Do(ctx, c.B().Mget().Key(l.verKey(), l.rc.EpochKey()).Build()).ToArray()
		if err == nil {
			l.rc.Answered()
		}
	}
	if err != nil {
		return fmt.Errorf("revoke: %w", redisconn.Unavailable(err))
	}
	if len(vals) != 2 {
		return fmt.Errorf("revoke: %w: %d values for the version and the epoch", ErrCorrupt, len(vals))
	}
	str := func(m rueidis.RedisMessage) string {
		if m.IsNil() {
			return ""
		}
		s, _ := m.ToString()
		return s
	}
	v, ep := str(vals[0]), str(vals[1])
	if p := l.sharedVer.Load(); p != nil && *p == v && redisconn.MatchEpoch(ep, l.rc.Epoch()) {
		return nil
	}
	return l.reloadShared(ctx)
}

// reloadShared fetches the shared document and publishes it.
func (l *List) reloadShared(ctx context.Context) error {
	var changed []Entry
	err := func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		s, ver, err := l.fetchShared(ctx)
		if err != nil {
			return err
		}
		prev := *l.snap.Load()
		l.snap.Store(&s)
		l.sharedVer.Store(&ver)
		changed = diff(prev, s)
		return nil
	}()
	if err != nil {
		return err
	}
	l.notify(changed)
	return nil
}

// fetchShared reads the document and its version, after checking the
// epoch. l.mu is held.
func (l *List) fetchShared(ctx context.Context) (set, string, error) {
	ep := l.rc.Epoch() // once: the floor, the epoch check and the trackers agree
	epoch := ep.ID
	floor := l.rc.StampFloor(epoch) // before sending: see redisconn.Conn.StampFloor
	vals, err := readScript.Exec(ctx, l.rc.Client(), []string{l.rc.EpochKey(), l.verKey(), l.docKey(), l.rc.StampKey(), l.docStampKey()}, nil).AsStrSlice()
	if err != nil {
		return set{}, "", fmt.Errorf("revoke: %w", redisconn.Unavailable(err))
	}
	if len(vals) != 5 {
		return set{}, "", fmt.Errorf("revoke: %w: %d values from the read script", ErrCorrupt, len(vals))
	}
	stamp, _ := strconv.ParseInt(vals[3], 10, 64)
	// The list's write stamp is "<epoch> <stamp>": one of another epoch
	// (written before the epoch changed) counts as none.
	var docStamp int64
	if id, n, ok := strings.Cut(vals[4], " "); ok && id == epoch {
		docStamp, _ = strconv.ParseInt(n, 10, 64)
	}
	if !redisconn.MatchEpoch(vals[0], ep) {
		// The data was lost: adopt the new epoch (which sets the floor)
		// before believing what is stored now.
		if err := l.rc.EpochLost(ctx, vals[0]); err != nil {
			return set{}, "", fmt.Errorf("revoke: %w", err)
		}
	} else {
		// Same epoch, older state — a failover to a replica that missed
		// the latest writes, a restored backup — shows as a lower epoch
		// stamp than seen before sending, or the list written at a lower
		// stamp than a version of it seen here (later writes elsewhere
		// cannot hide that). The revocations written since may be gone: a
		// new epoch begins, whose floor refuses every token they could
		// have covered; the request that found it is refused.
		if err := l.rc.Stamp(ctx, epoch, stamp, floor); err != nil {
			return set{}, "", fmt.Errorf("revoke: %w", err)
		}
		if seen := l.docStamps.Floor(epoch); docStamp > 0 && docStamp < seen {
			err := l.rc.RolledBack(ctx, fmt.Sprintf("the revocation list written at stamp %d was read at stamp %d", seen, docStamp))
			return set{}, "", fmt.Errorf("revoke: %w", err)
		}
		l.docStamps.Saw(epoch, docStamp)
	}
	if vals[2] == "" {
		return makeSet(0), vals[1], nil
	}
	s, err := parseFile([]byte(vals[2]), l.clock())
	if err != nil {
		return set{}, "", fmt.Errorf("revoke: shared list: %w", err)
	}
	return s, vals[1], nil
}

// updateShared is update for a shared list: read, apply, compare-and-set,
// retried when another replica wrote in between. l.mu is held.
func (l *List) updateShared(now time.Time, apply func(set) error, changed *[]Entry) error {
	ctx, cancel := context.WithTimeout(context.Background(), 4*l.rc.Timeout())
	defer cancel()
	for range 16 {
		base, ver, err := l.fetchShared(ctx)
		if err != nil {
			return err
		}
		next := base.liveCopy(now)
		err = apply(next)
		if errors.Is(err, errUnchanged) {
			prev := *l.snap.Load()
			l.snap.Store(&next)
			l.sharedVer.Store(&ver)
			*changed = diff(prev, next)
			return nil
		}
		if err != nil {
			return err
		}
		doc, err := encodeFile(next)
		if err != nil {
			return err
		}
		nv := redisconn.NewID()
		ttl := sharedTTL(next, now)
		epoch := l.rc.Epoch().ID
		floor := l.rc.StampFloor(epoch)
		stamp, err := casScript.Exec(ctx, l.rc.Client(), []string{l.verKey(), l.docKey(), l.rc.StampKey(), l.rc.EpochKey(), l.docStampKey()},
			[]string{ver, nv, string(doc), strconv.FormatInt(ttl.Milliseconds(), 10), epoch}).AsInt64()
		if err != nil {
			return fmt.Errorf("revoke: %w", redisconn.Unavailable(err))
		}
		switch stamp {
		case 0:
			continue // another replica wrote: apply on its result
		case -1: // a new epoch began meanwhile: read it (fetchShared adopts it)
			continue
		}
		if err := l.rc.Stamp(ctx, epoch, stamp, floor); err != nil {
			return fmt.Errorf("revoke: %w", err)
		}
		l.docStamps.Saw(epoch, stamp)
		prev := *l.snap.Load()
		l.snap.Store(&next)
		l.sharedVer.Store(&nv)
		*changed = diff(prev, next)
		return nil
	}
	return errors.New("revoke: the shared list kept changing under concurrent writes; try again")
}

// sharedTTL is how long the shared document must live: until its last
// entry expires (at least a minute).
func sharedTTL(s set, now time.Time) time.Duration {
	ttl := time.Minute
	for _, e := range s.all() {
		ttl = max(ttl, e.Until.Sub(now)+time.Minute)
	}
	return ttl
}

// setFloor refuses, until floor + MaxTokenLifetime, the tokens issued
// before floor (see KindEpoch), and tells the subscribers.
//
// floor is rounded down to the second, like iat: a token issued in the
// same second as the data loss but before it is accepted (a revocation of
// it could only have been made within that second), and a token issued
// just after it is not refused for its rounded-down iat.
func (l *List) setFloor(floor time.Time) {
	floor = floor.Round(0).UTC().Truncate(time.Second)
	if cur := l.floor.Load(); cur != nil && cur.After(floor) {
		return // never lower: epochs only move forward
	}
	l.floor.Store(&floor)
	l.notify([]Entry{l.floorEntry(floor)})
}

func (l *List) floorEntry(floor time.Time) Entry {
	return Entry{Kind: KindEpoch, NotBefore: floor, Until: floor.Add(l.lifetime), Created: floor,
		Reason: "the shared state (Redis) was lost or started anew; tokens issued before then are refused"}
}

// checkFloor reports the epoch entry covering t, if any.
func (l *List) checkFloor(t Token) (Entry, bool) {
	p := l.floor.Load()
	if p == nil || !issuedBefore(t.IssuedAt, *p) {
		return Entry{}, false
	}
	e := l.floorEntry(*p)
	if !l.now().Before(e.Until) {
		return Entry{}, false
	}
	e.Issuer = t.Issuer
	return e, true
}

// runShared syncs the shared list periodically until stop is closed.
func (l *List) runShared(every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if err := l.Sync(context.Background()); err != nil {
				l.logger.Warn("revocation list: shared list not reachable; requests are refused until it is", "error", err)
			}
		}
	}
}

// Close stops the background sync of a shared list.
func (l *List) Close() error {
	if l.rc == nil {
		return nil
	}
	l.closeOnce.Do(func() {
		l.cancelEpoch()
		close(l.stop)
		<-l.done
	})
	return nil
}

// startShared loads the shared list, sets the epoch floor and starts the
// background sync.
func (l *List) startShared(rc *redisconn.Conn, every time.Duration) (*List, error) {
	l.rc = rc
	ctx, cancel := context.WithTimeout(context.Background(), 2*rc.Timeout())
	defer cancel()
	if err := l.reloadShared(ctx); err != nil {
		return nil, err
	}
	l.setFloor(rc.Epoch().Since)
	l.cancelEpoch = rc.OnEpoch(func(ep redisconn.Epoch) { l.setFloor(ep.Since) })
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.runShared(every)
	return l, nil
}
