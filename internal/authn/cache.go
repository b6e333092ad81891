package authn

import (
	"container/list"
	"sync"
	"time"
)

// tokenCache holds verified tokens, keyed by the SHA-256 of the token,
// bounded in size (least recently used goes first) and in time (each entry
// expires with its token, or sooner for introspection answers).
type tokenCache struct {
	max int

	mu  sync.Mutex // guards the fields below
	ll  *list.List // of *cacheEntry, most recently used first
	idx map[[32]byte]*list.Element
}

type cacheEntry struct {
	key     [32]byte
	id      *Identity
	expires time.Time    // the entry is unusable from this instant on
	iss     *issuerState // issuer that vouched for the token
	vk      *verifyKey   // key that verified it; nil for introspection
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, ll: list.New(), idx: make(map[[32]byte]*list.Element)}
}

// get returns the live entry for key; an expired one is dropped.
func (c *tokenCache) get(key [32]byte, now time.Time) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.idx[key]
	if !ok {
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.idx, key)
		return nil
	}
	c.ll.MoveToFront(el)
	return e
}

func (c *tokenCache) add(e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.idx[e.key]; ok {
		el.Value = e
		c.ll.MoveToFront(el)
		return
	}
	c.idx[e.key] = c.ll.PushFront(e)
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.idx, old.Value.(*cacheEntry).key)
	}
}

func (c *tokenCache) remove(key [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.idx[key]; ok {
		c.ll.Remove(el)
		delete(c.idx, key)
	}
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
