package toolpin

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"unicode/utf8"
)

// Observe records the tool definitions of one tools/list result (or page)
// that route's upstream returned, and returns a Change for every listed
// tool not covered by its pin: one first seen (pinned now by trust on
// first use, unless the route does not trust first use or an approval
// already pinned it), or one whose definition differs from its pin. Tools
// whose definition matches their pin yield nothing; tools absent from the
// list are kept as they are (lists are paginated).
//
// Only upstream responses may be observed, never a definition a client
// sent. A malformed definition, two definitions with the same name, or
// more tools than the bounds allow is an error and nothing of the list is
// recorded: the gateway fails the list closed.
//
// When the state changed and File is set, Observe writes the file before
// returning. If that fails, the state has changed in memory (and protects
// from now on), the changes are returned, and so is an error matching
// [ErrPersist].
//
// Observe remembers, for each tool, the SHA-256 of the raw bytes of its
// latest observed definition and their fingerprint. A definition listed
// again byte for byte is not parsed again; any other spelling, even one
// with the same fingerprint, is canonicalized in full.
func (p *Pins) Observe(route string, tools [][]byte) ([]Change, error) {
	if route == "" || !utf8.ValidString(route) {
		return nil, errors.New("toolpin: observe: empty or invalid route")
	}
	defs, hits, err := p.read(route, tools)
	if err != nil {
		return nil, err
	}
	if hits == len(defs) {
		if changes, ok := p.settled(route, defs); ok {
			return changes, nil
		}
	}
	return p.record(route, tools, defs)
}

// read hashes each raw definition, takes from the raw memo what it knows
// of them and canonicalizes the others, and returns the definitions sorted
// by name (pointers, which sort cheaply) and how many the memo knew. A
// malformed definition or a name listed twice is an error.
//
// A memo hit is as good as parsing: the fingerprint and the name are
// functions of the raw bytes, which are the same (SHA-256 collisions
// aside), and so is their validity.
func (p *Pins) read(route string, tools [][]byte) ([]*definition, int, error) {
	defs := make([]definition, len(tools))
	for i, t := range tools {
		defs[i].idx, defs[i].sum = i, sha256.Sum256(t)
	}
	hits := 0
	p.mu.RLock()
	for i := range defs {
		if f, ok := p.byRaw[rawKey{route, defs[i].sum}]; ok {
			defs[i].name, defs[i].fingerprint = f.tool, f.fingerprint
			hits++
		}
	}
	p.mu.RUnlock()
	for i := range defs {
		if defs[i].fingerprint == "" {
			if err := p.parse(route, tools, &defs[i]); err != nil {
				return nil, 0, err
			}
		}
	}
	sorted := make([]*definition, len(defs))
	for i := range defs {
		sorted[i] = &defs[i]
	}
	slices.SortFunc(sorted, func(a, b *definition) int { return cmp.Compare(a.name, b.name) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].name == sorted[i-1].name {
			return nil, 0, fmt.Errorf("toolpin: route %s: %w: tool %s listed twice", quote(route), ErrMalformed, quote(sorted[i].name))
		}
	}
	return sorted, hits, nil
}

// parse canonicalizes d's raw definition, tools[d.idx].
func (p *Pins) parse(route string, tools [][]byte, d *definition) error {
	p.canonicalized.Add(1)
	nd, err := parseDefinition(tools[d.idx])
	if err != nil {
		return fmt.Errorf("toolpin: tool %d of route %s: %w", d.idx, quote(route), err)
	}
	nd.idx, nd.sum, nd.parsed = d.idx, d.sum, true
	*d = nd
	return nil
}

// settled returns the changes of observing defs (route's definitions, all
// known to the raw memo) when observing them changes nothing: each tool's
// latest observed definition is already the one listed. Otherwise ok is
// false. It takes only the read lock, and calls nothing outside the
// package.
func (p *Pins) settled(route string, defs []*definition) (changes []Change, ok bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, d := range defs {
		e, ok := p.entries[key{route, d.name}]
		if !ok || e.observed != d.fingerprint {
			return nil, false
		}
		if e.pin != d.fingerprint {
			changes = append(changes, Change{Route: route, Tool: d.name, Old: e.pin, New: d.fingerprint,
				FirstSeen: e.pin == "", Repeated: true})
		}
	}
	return changes, true
}

// record observes defs on route under writeMu: it updates the entries and
// the raw memos, and persists what changed.
func (p *Pins) record(route string, tools [][]byte, defs []*definition) ([]Change, error) {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	// plan keeps the canonical form of a definition that becomes the
	// latest observed (for review). A memo hit has none: parse those whose
	// tool is new or was observed otherwise since the lookup (entries do
	// not change while writeMu is held).
	for _, d := range defs {
		if d.parsed {
			continue
		}
		if e, ok := p.entries[key{route, d.name}]; !ok || e.observed != d.fingerprint {
			if err := p.parse(route, tools, d); err != nil {
				return nil, err
			}
		}
	}
	changes, updates, dirty, err := p.plan(route, defs)
	if err != nil || len(updates) == 0 {
		return changes, err
	}
	var persistErr error
	if dirty && p.file != "" {
		// Re-plan under the file lock, after the approvals an operator
		// recorded since, so that none is lost or overtaken.
		unlock, err := lockFile(p.file, lockTimeout)
		if err != nil {
			persistErr = err
		} else {
			defer unlock()
			if persistErr = p.syncApprovals(); persistErr == nil {
				if changes, updates, _, err = p.plan(route, defs); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, u := range updates {
		p.put(u.k, u.e)
	}
	p.logChanges(changes)
	if !dirty {
		return changes, nil // only raw memos changed: nothing to persist
	}
	if p.file != "" && persistErr == nil {
		persistErr = p.writeLocked()
	}
	if persistErr != nil {
		p.logger.LogAttrs(context.Background(), slog.LevelError, "tool pins not persisted",
			slog.String("file", p.file), slog.String("error", persistErr.Error()))
		return changes, fmt.Errorf("toolpin: %w: %w", ErrPersist, persistErr)
	}
	return changes, nil
}

type update struct {
	k key
	e entry
}

// plan computes what observing defs on route changes, without changing
// anything: the changes to report, and the updates of entries, which
// include remembering the raw bytes of the definitions parsed. dirty
// reports an update of more than raw memos (one to persist). Callers hold
// writeMu, so entries cannot change under it, and have parsed every
// definition that becomes a tool's latest observed.
func (p *Pins) plan(route string, defs []*definition) (changes []Change, updates []update, dirty bool, err error) {
	now := p.now()
	added := 0
	for _, d := range defs {
		k := key{route, d.name}
		e, ok := p.entries[k]
		fp := d.fingerprint
		changed := false
		switch {
		case !ok:
			added++
			e = entry{observed: fp, observedAt: now}
			if p.trustFirstUse(route) {
				e.pin, e.source, e.pinnedAt = fp, SourceFirstUse, now
			} else {
				e.definition = d.canonical
			}
			changes = append(changes, Change{Route: route, Tool: d.name, New: fp, FirstSeen: true})
			changed = true
		default:
			if e.pin != fp {
				changes = append(changes, Change{Route: route, Tool: d.name, Old: e.pin, New: fp,
					FirstSeen: e.pin == "", Repeated: e.observed == fp})
			}
			if e.observed != fp {
				e.observed, e.observedAt, e.definition = fp, now, nil
				if e.pin != fp {
					e.definition = d.canonical
				}
				changed = true
			}
		}
		// Remember the raw bytes just parsed (they are now the latest
		// observed definition's), replacing those remembered before.
		remember := d.parsed && (e.raw != d.sum || e.rawFP != fp)
		if remember {
			e.raw, e.rawFP = d.sum, fp
		}
		if changed || remember {
			updates = append(updates, update{k, e})
		}
		dirty = dirty || changed
	}
	if added > 0 {
		if err := p.checkRoom(route, added); err != nil {
			return nil, nil, false, fmt.Errorf("toolpin: route %s: %w", quote(route), err)
		}
	}
	return changes, updates, dirty, nil
}

func (p *Pins) logChanges(changes []Change) {
	ctx := context.Background()
	for _, c := range changes {
		switch {
		case c.Repeated:
		case c.FirstSeen && c.New != "" && p.Status(c.Route, c.Tool) == Pinned:
			p.logger.LogAttrs(ctx, slog.LevelDebug, "tool pinned on first use",
				slog.String("route", c.Route), slog.String("tool", quote(c.Tool)), slog.String("fingerprint", c.New))
		case c.FirstSeen:
			p.logger.LogAttrs(ctx, slog.LevelInfo, "new tool awaits approval",
				slog.String("route", c.Route), slog.String("tool", quote(c.Tool)), slog.String("fingerprint", c.New))
		default:
			p.logger.LogAttrs(ctx, slog.LevelWarn, "tool definition changed",
				slog.String("route", c.Route), slog.String("tool", quote(c.Tool)),
				slog.String("pinned", c.Old), slog.String("observed", c.New))
		}
	}
}

// Approve accepts the latest observed definition of route's tool as its
// pin and persists it. A tool never observed is [ErrNotFound]; one whose
// latest definition is already pinned is left as it is.
//
// Between an operator's review and this call the upstream may have
// changed the definition again; [Pins.ApproveFingerprint] approves only
// the reviewed fingerprint.
func (p *Pins) Approve(route, tool string) error {
	return p.approve(route, tool, "")
}

// ApproveFingerprint makes fingerprint the pin of route's tool and
// persists it. If it is the latest observed definition, the tool becomes
// Pinned; otherwise it stays Changed (the upstream serves something else)
// until the upstream serves the approved definition. A tool not observed
// yet is pinned ahead of its first observation.
func (p *Pins) ApproveFingerprint(route, tool, fingerprint string) error {
	if !validFingerprint(fingerprint) {
		return fmt.Errorf("toolpin: approve: invalid fingerprint")
	}
	return p.approve(route, tool, fingerprint)
}

func (p *Pins) approve(route, tool, fp string) error {
	if route == "" || tool == "" || !utf8.ValidString(route) || !utf8.ValidString(tool) {
		return errors.New("toolpin: approve: empty or invalid route or tool")
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if p.file != "" {
		unlock, err := lockFile(p.file, lockTimeout)
		if err != nil {
			return fmt.Errorf("toolpin: approve: %w", err)
		}
		defer unlock()
		if err := p.syncApprovals(); err != nil {
			return fmt.Errorf("toolpin: approve: %w", err)
		}
	}
	k := key{route, tool}
	if fp == "" {
		e, ok := p.entries[k]
		if !ok || e.observed == "" {
			return fmt.Errorf("toolpin: approve %s on route %s: %w", quote(tool), quote(route), ErrNotFound)
		}
		if e.pin == e.observed {
			return nil
		}
		fp = e.observed
	}
	if err := p.applyApprovals([]approval{{k: k, fingerprint: fp, at: p.now()}}); err != nil {
		return fmt.Errorf("toolpin: approve: %w", err)
	}
	if p.file == "" {
		return nil
	}
	if err := p.writeLocked(); err != nil {
		return fmt.Errorf("toolpin: approve: %w: %w", ErrPersist, err)
	}
	return nil
}

// Reload re-reads File and applies the approvals recorded in it (by
// [ApproveInFile] or an operator). The file's tools section is the
// gateway's own record and is not re-read: pins change only through
// approvals. If the file cannot be read, is insecure or corrupt, or an
// approval does not fit the bounds, nothing is applied and the last good
// state stays in force. Without a File, Reload does nothing.
func (p *Pins) Reload() error {
	if p.file == "" {
		return nil
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	doc, err := readFile(p.file)
	if err != nil {
		return fmt.Errorf("toolpin: reload: %w", err)
	}
	if err := p.applyApprovals(doc.approvals); err != nil {
		return fmt.Errorf("toolpin: reload: %w", err)
	}
	return nil
}

// syncApprovals applies the approvals in the file before a write replaces
// it. Callers hold writeMu and the file lock. A missing file has none.
func (p *Pins) syncApprovals() error {
	doc, err := readFile(p.file)
	if errors.Is(err, errNoFile) {
		return nil
	}
	if err != nil {
		return err
	}
	return p.applyApprovals(doc.approvals)
}

// applyApprovals makes each approval's fingerprint its tool's pin, in
// order, all or nothing. Applying the same approvals again changes
// nothing. Callers hold writeMu.
func (p *Pins) applyApprovals(as []approval) error {
	newPerRoute := map[string]int{}
	newKeys := map[key]bool{}
	for _, a := range as {
		if _, ok := p.entries[a.k]; !ok && !newKeys[a.k] {
			newKeys[a.k] = true
			newPerRoute[a.k.route]++
		}
	}
	for route, n := range newPerRoute {
		if len(p.entries)+len(newKeys) > p.maxTools || p.perRoute[route]+n > p.maxPerRoute {
			return fmt.Errorf("approvals: %w", ErrTooMany)
		}
	}
	for _, a := range as {
		e := p.entries[a.k]
		if e.pin == a.fingerprint && e.source == SourceApproved {
			continue
		}
		e.pin, e.source, e.pinnedAt = a.fingerprint, SourceApproved, a.at
		if e.observed == a.fingerprint {
			e.definition = nil
		}
		p.put(a.k, e)
		p.logger.LogAttrs(context.Background(), slog.LevelInfo, "tool definition approved",
			slog.String("route", a.k.route), slog.String("tool", quote(a.k.tool)), slog.String("fingerprint", a.fingerprint))
	}
	return nil
}

// writeLocked writes the whole state, consuming the approvals (they are
// now pins). Callers hold writeMu and the file lock, and have applied the
// file's approvals under that lock.
func (p *Pins) writeLocked() error {
	p.mu.RLock()
	doc := &fileDoc{Version: fileVersion}
	for k, e := range p.entries {
		doc.tools = append(doc.tools, fileEntry{k: k, e: e})
	}
	p.mu.RUnlock()
	return writeFile(p.file, doc)
}
