package anomaly

import (
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

const (
	nTicks            = 6          // ticks per window
	quietTicks        = 2 * nTicks // a kind is not raised again for two windows
	maxPrincipalTools = 256        // tools remembered per principal
	maxRouteTools     = 4096       // tools remembered per route
	maxRoutes         = 4096       // routes tracked
	maxShards         = 64
	minPerShard       = 1024 // principals per shard before another shard is added
)

// Observation is one decided MCP request.
type Observation struct {
	// Time of the request; zero means Config.Now().
	Time time.Time
	// Route the request came through; "" skips the route scope.
	Route string
	// Principal is the opaque issuer+subject+client_id key; "" skips the
	// principal scope. It is hashed, never kept or returned.
	Principal string
	// Tool is the tool of a tools/call, "" for other methods.
	Tool string
	// TokenFP is a fingerprint of the access token; "" when none.
	TokenFP string
	// Denied: the request was denied (policy deny, step-up or reject).
	Denied bool
}

// Anomaly is a departure from a baseline, or an active cool-down.
type Anomaly struct {
	Kind   string // KindCallRate, …
	Scope  string // ScopePrincipal or ScopeRoute
	Action string // ActionNone, ActionStepUp or ActionDeny
	// StepUpScope is the scope to require, with ActionStepUp.
	StepUpScope string
	// Value in the current window and the Baseline it was compared with:
	// calls, denied fraction, tools or tokens per window. For new_tool,
	// Value is 1 and Baseline the number of tools known before.
	Value, Baseline float64
	// Route of the request that raised it.
	Route string
	// Tool first used, for new_tool.
	Tool string
	// Until is the end of the deny or step-up cool-down; zero with
	// ActionNone.
	Until time.Time
}

// String describes a without any principal data.
func (a Anomaly) String() string {
	s := fmt.Sprintf("%s %s anomaly on route %q: %.3g vs baseline %.3g, action %s",
		a.Scope, a.Kind, a.Route, a.Value, a.Baseline, a.Action)
	if a.Tool != "" {
		s += fmt.Sprintf(", tool %q", a.Tool)
	}
	if a.Action == ActionStepUp {
		s += fmt.Sprintf(" %q", a.StepUpScope)
	}
	if !a.Until.IsZero() {
		s += " until " + a.Until.UTC().Format(time.RFC3339)
	}
	return s
}

// Detector keeps the baselines. It is safe for concurrent use.
type Detector struct {
	cfg       Config
	seed      maphash.Seed
	tickNs    int64
	alpha     float64 // EWMA weight of one tick
	warmTicks uint32
	tokenCap  int
	disabled  [numKinds]bool

	shards    []shard
	shardMask uint64

	routesMu sync.RWMutex
	routes   map[string]*route
}

// New validates c, applies its defaults and returns a Detector.
func New(c Config) (*Detector, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	tick := c.Window / nTicks
	d := &Detector{
		cfg:       c,
		seed:      maphash.MakeSeed(),
		tickNs:    int64(tick),
		alpha:     1 - math.Exp2(-float64(tick)/float64(c.HalfLife)),
		warmTicks: uint32(min((c.WarmUp+tick-1)/tick, math.MaxUint32)),
		tokenCap:  c.MaxChurn + 1,
		routes:    make(map[string]*route),
	}
	for _, k := range c.Disabled {
		d.disabled[kindIndex(k)] = true
	}
	n := 1
	for n*2 <= maxShards && c.MaxPrincipals/(n*2) >= minPerShard {
		n *= 2
	}
	d.shards = make([]shard, n)
	d.shardMask = uint64(n - 1)
	for i := range d.shards {
		sh := &d.shards[i]
		sh.max = c.MaxPrincipals / n
		if i < c.MaxPrincipals%n {
			sh.max++
		}
		sh.m = make(map[uint64]*principal)
		sh.cool = make(map[uint64]Anomaly)
		sh.lru.next, sh.lru.prev = &sh.lru, &sh.lru
	}
	return d, nil
}

// seen is a tool or token and the last tick (truncated) it was used in.
type seen struct{ h, last uint32 }

// stats is the window and baseline of a principal or route.
type stats struct {
	tick                 int64 // tick of the newest bucket
	calls, denials       [nTicks]uint32
	winCalls, winDenials uint32
	active               uint32 // ticks folded into the baseline
	toolsFull            bool   // tools reached its cap: new_tool can no longer tell
	bCalls, bDeny        float64
	bTools, bTokens      float64
	flagged              [numKinds]int64 // tick+1 a kind was last raised in; 0 never
	tools                []seen          // sorted by h
	tokens               []seen          // principals only; at most tokenCap
}

type principal struct {
	key        uint64
	prev, next *principal // shard LRU, most recent first
	stats
}

type shard struct {
	mu   sync.Mutex
	m    map[uint64]*principal
	lru  principal // sentinel
	max  int
	cool map[uint64]Anomaly // active cool-downs, kept apart from eviction
}

type route struct {
	mu        sync.Mutex
	denyUntil atomic.Int64 // unix ns end of a deny cool-down; read without mu
	cool      Anomaly      // latest cool-down, guarded by mu
	stats
}

func (d *Detector) hash(s string) uint64 { return maphash.String(d.seed, s) }

func hash32(h uint64) uint32 { return uint32(h) ^ uint32(h>>32) }

func (d *Detector) tickOf(t time.Time) int64 {
	ns := t.UnixNano()
	q := ns / d.tickNs
	if ns%d.tickNs < 0 {
		q--
	}
	return q
}

// Check reports an active deny cool-down or step-up requirement of
// principal at now (zero: Config.Now()).
func (d *Detector) Check(principal string, now time.Time) (Anomaly, bool) {
	if principal == "" {
		return Anomaly{}, false
	}
	if now.IsZero() {
		now = d.cfg.Now()
	}
	key := d.hash(principal)
	sh := &d.shards[key&d.shardMask]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.active(key, now)
}

// CheckRoute reports an active deny cool-down or step-up requirement of a
// route (only with a RouteAction other than none).
func (d *Detector) CheckRoute(name string, now time.Time) (Anomaly, bool) {
	if now.IsZero() {
		now = d.cfg.Now()
	}
	d.routesMu.RLock()
	r := d.routes[name]
	d.routesMu.RUnlock()
	if r == nil {
		return Anomaly{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cool.Action == "" || !now.Before(r.cool.Until) {
		return Anomaly{}, false
	}
	return r.cool, true
}

func (sh *shard) active(key uint64, now time.Time) (Anomaly, bool) {
	a, ok := sh.cool[key]
	if !ok {
		return Anomaly{}, false
	}
	if !now.Before(a.Until) {
		delete(sh.cool, key)
		return Anomaly{}, false
	}
	return a, true
}

// Observe records o and returns the anomalies it raises (nil, without
// allocating, when none). A kind is raised at most once per two windows
// per principal and per route: a burst stays in the sliding window for up
// to two windows, and raises once. While the principal or the route is in
// a deny cool-down, Observe records nothing and returns that cool-down
// alone, so that the gateway refuses the request.
func (d *Detector) Observe(o Observation) []Anomaly {
	now := o.Time
	if now.IsZero() {
		now = d.cfg.Now()
	}
	tick := d.tickOf(now)
	var r *route
	if o.Route != "" {
		r = d.route(o.Route)
		if r != nil && now.UnixNano() < r.denyUntil.Load() {
			r.mu.Lock()
			a, ok := r.cool, r.cool.Action == ActionDeny && now.Before(r.cool.Until)
			r.mu.Unlock()
			if ok {
				return []Anomaly{a}
			}
		}
	}
	var toolH, tokH uint32
	if o.Tool != "" {
		toolH = hash32(d.hash(o.Tool))
	}
	if o.TokenFP != "" {
		tokH = hash32(d.hash(o.TokenFP))
	}
	var buf [2 * numKinds]Anomaly
	out := buf[:0]
	if o.Principal != "" {
		key := d.hash(o.Principal)
		sh := &d.shards[key&d.shardMask]
		sh.mu.Lock()
		if a, ok := sh.active(key, now); ok && a.Action == ActionDeny {
			sh.mu.Unlock()
			return []Anomaly{a}
		}
		p := sh.get(key, tick)
		n := len(out)
		out = d.record(&p.stats, ScopePrincipal, d.cfg.Action, &o, now, tick, toolH, tokH, maxPrincipalTools, out)
		if d.cfg.Action != ActionNone && len(out) > n {
			sh.setCool(key, out[n], now)
		}
		sh.mu.Unlock()
	}
	if r != nil {
		r.mu.Lock()
		n := len(out)
		out = d.record(&r.stats, ScopeRoute, d.cfg.RouteAction, &o, now, tick, toolH, 0, maxRouteTools, out)
		if d.cfg.RouteAction != ActionNone && len(out) > n {
			r.cool = out[n]
			if r.cool.Action == ActionDeny {
				r.denyUntil.Store(r.cool.Until.UnixNano())
			}
		}
		r.mu.Unlock()
	}
	if len(out) == 0 {
		return nil
	}
	return append([]Anomaly(nil), out...)
}

// route returns the state of name, creating it unless maxRoutes are
// tracked already (then nil).
func (d *Detector) route(name string) *route {
	d.routesMu.RLock()
	r := d.routes[name]
	d.routesMu.RUnlock()
	if r != nil {
		return r
	}
	d.routesMu.Lock()
	defer d.routesMu.Unlock()
	if r = d.routes[name]; r == nil && len(d.routes) < maxRoutes {
		r = &route{stats: stats{tick: math.MinInt64}}
		d.routes[name] = r
	}
	return r
}

// setCool records a cool-down. When the map is full, expired entries go
// first, then the one ending soonest.
func (sh *shard) setCool(key uint64, a Anomaly, now time.Time) {
	if _, ok := sh.cool[key]; !ok && len(sh.cool) >= sh.max {
		var victim uint64
		var end time.Time
		for k, c := range sh.cool {
			if !now.Before(c.Until) {
				delete(sh.cool, k)
				continue
			}
			if end.IsZero() || c.Until.Before(end) {
				victim, end = k, c.Until
			}
		}
		if len(sh.cool) >= sh.max {
			delete(sh.cool, victim)
		}
	}
	sh.cool[key] = a
}

// get returns the principal of key, most recent in the LRU, creating it
// (evicting the least recently seen when full).
func (sh *shard) get(key uint64, tick int64) *principal {
	p := sh.m[key]
	if p != nil {
		if sh.lru.next != p {
			p.unlink()
			sh.pushFront(p)
		}
		return p
	}
	if len(sh.m) >= sh.max {
		p = sh.lru.prev
		p.unlink()
		delete(sh.m, p.key)
		tools, tokens := p.tools[:0], p.tokens[:0]
		*p = principal{}
		p.tools, p.tokens = tools, tokens
	} else {
		p = new(principal)
	}
	p.key = key
	p.tick = math.MinInt64
	sh.m[key] = p
	sh.pushFront(p)
	return p
}

func (p *principal) unlink() {
	p.prev.next, p.next.prev = p.next, p.prev
	p.prev, p.next = nil, nil
}

func (sh *shard) pushFront(p *principal) {
	p.prev, p.next = &sh.lru, sh.lru.next
	sh.lru.next.prev = p
	sh.lru.next = p
}

// record adds o to s and appends the anomalies it raises to out.
func (d *Detector) record(s *stats, scope, action string, o *Observation, now time.Time, tick int64,
	toolH, tokH uint32, maxTools int, out []Anomaly) []Anomaly {
	d.advance(s, tick)
	cur := s.tick
	c32 := uint32(cur)
	slot := mod(cur)
	s.calls[slot]++
	s.winCalls++
	if o.Denied {
		s.denials[slot]++
		s.winDenials++
	}
	warm := s.active >= d.warmTicks
	raise := func(k int, value, base float64) {
		if !warm || d.disabled[k] || (s.flagged[k] != 0 && cur < s.flagged[k]-1+quietTicks) {
			return
		}
		s.flagged[k] = cur + 1
		a := Anomaly{Kind: kindName(k), Scope: scope, Action: action, Value: value, Baseline: base, Route: o.Route}
		if k == kNewTool {
			a.Tool = o.Tool
		}
		if action != ActionNone {
			a.Until = now.Add(d.cfg.CoolDown)
		}
		if action == ActionStepUp {
			a.StepUpScope = d.cfg.StepUpScope
		}
		out = append(out, a)
	}
	if w := float64(s.winCalls); s.winCalls >= uint32(d.cfg.MinCalls) && w > d.cfg.RateFactor*s.bCalls {
		raise(kCallRate, w, s.bCalls)
	}
	if o.Denied && s.winDenials >= uint32(d.cfg.MinDenials) {
		// The floor applies to the denials beyond those the baseline
		// expects: a few denials more than usual on a busy principal are
		// noise, not a storm.
		dn, c := float64(s.winDenials), float64(s.winCalls)
		if dn-s.bDeny*c >= float64(d.cfg.MinDenials) && dn/c > d.cfg.DenialFactor*s.bDeny {
			raise(kDenialRate, dn/c, s.bDeny)
		}
	}
	if o.Tool != "" {
		known := len(s.tools)
		grew, isNew := s.useTool(toolH, c32, maxTools)
		if isNew {
			raise(kNewTool, 1, float64(known))
		}
		if grew {
			if n := countIn(s.tools, c32); n >= d.cfg.MinTools && float64(n) > d.cfg.ToolsFactor*s.bTools {
				raise(kDistinctTools, float64(n), s.bTools)
			}
		}
	}
	if scope == ScopePrincipal && o.TokenFP != "" {
		if s.useToken(tokH, c32, d.tokenCap) {
			n := countIn(s.tokens, c32)
			if n > d.cfg.MaxChurn || n >= d.cfg.MinChurn && float64(n) > d.cfg.ChurnFactor*s.bTokens {
				raise(kTokenChurn, float64(n), s.bTokens)
			}
		}
	}
	return out
}

func mod(t int64) int {
	m := int(t % nTicks)
	if m < 0 {
		m += nTicks
	}
	return m
}

// advance closes the ticks before tick, folding each active window into
// the baseline. An empty window jumps straight to tick.
func (d *Detector) advance(s *stats, tick int64) {
	for s.tick < tick {
		if s.winCalls == 0 {
			s.tick = tick
			return
		}
		d.fold(s)
		s.tick++
		slot := mod(s.tick)
		s.winCalls -= s.calls[slot]
		s.winDenials -= s.denials[slot]
		s.calls[slot], s.denials[slot] = 0, 0
	}
}

// fold adds the window ending at s.tick to the baseline: a plain mean for
// the first 1/alpha windows, an EWMA after.
func (d *Detector) fold(s *stats) {
	a := max(d.alpha, 1/float64(s.active+1))
	c32 := uint32(s.tick)
	s.bCalls += a * (float64(s.winCalls) - s.bCalls)
	s.bDeny += a * (float64(s.winDenials)/float64(s.winCalls) - s.bDeny)
	s.bTools += a * (float64(countIn(s.tools, c32)) - s.bTools)
	s.bTokens += a * (float64(countIn(s.tokens, c32)) - s.bTokens)
	if s.active < math.MaxUint32 {
		s.active++
	}
}

// inWindow: last is one of the nTicks ticks ending at cur.
func inWindow(last, cur uint32) bool { return cur-last < nTicks }

func countIn(xs []seen, cur uint32) int {
	n := 0
	for _, x := range xs {
		if inWindow(x.last, cur) {
			n++
		}
	}
	return n
}

// useTool marks tool h used at cur. grew: it was not in the window
// before. isNew: it was never used (and the set could still tell).
func (s *stats) useTool(h, cur uint32, maxTools int) (grew, isNew bool) {
	lo, hi := 0, len(s.tools)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.tools[m].h < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(s.tools) && s.tools[lo].h == h {
		e := &s.tools[lo]
		grew = !inWindow(e.last, cur)
		e.last = cur
		return grew, false
	}
	if len(s.tools) >= maxTools {
		// Forget the least recently used tool; from now on a first use
		// cannot be told from a forgotten one, so new_tool is off.
		s.toolsFull = true
		old := 0
		for i, x := range s.tools {
			if cur-x.last > cur-s.tools[old].last {
				old = i
			}
		}
		s.tools = append(s.tools[:old], s.tools[old+1:]...)
		if old < lo {
			lo--
		}
	}
	s.tools = append(s.tools, seen{})
	copy(s.tools[lo+1:], s.tools[lo:])
	s.tools[lo] = seen{h, cur}
	return true, !s.toolsFull
}

// useToken marks token h used at cur and reports whether the count of
// tokens in the window may have grown. At most limit tokens are kept.
func (s *stats) useToken(h, cur uint32, limit int) bool {
	free := -1
	for i := range s.tokens {
		e := &s.tokens[i]
		if e.h == h {
			grew := !inWindow(e.last, cur)
			e.last = cur
			return grew
		}
		if free < 0 && !inWindow(e.last, cur) {
			free = i
		}
	}
	switch {
	case free >= 0:
		s.tokens[free] = seen{h, cur}
	case len(s.tokens) < limit:
		s.tokens = append(s.tokens, seen{h, cur})
	}
	return true
}
