package toolpin

import (
	"cmp"
	"context"
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
func (p *Pins) Observe(route string, tools [][]byte) ([]Change, error) {
	if route == "" || !utf8.ValidString(route) {
		return nil, errors.New("toolpin: observe: empty or invalid route")
	}
	defs := make([]definition, len(tools))
	seen := make(map[string]struct{}, len(tools))
	for i, t := range tools {
		d, err := parseDefinition(t)
		if err != nil {
			return nil, fmt.Errorf("toolpin: tool %d of route %s: %w", i, quote(route), err)
		}
		if _, dup := seen[d.name]; dup {
			return nil, fmt.Errorf("toolpin: route %s: %w: tool %s listed twice", quote(route), ErrMalformed, quote(d.name))
		}
		seen[d.name] = struct{}{}
		defs[i] = d
	}
	slices.SortFunc(defs, func(a, b definition) int { return cmp.Compare(a.name, b.name) })

	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	changes, updates, err := p.plan(route, defs)
	if err != nil || len(updates) == 0 {
		return changes, err
	}
	var persistErr error
	if p.file != "" {
		// Re-plan under the file lock, after the approvals an operator
		// recorded since, so that none is lost or overtaken.
		unlock, err := lockFile(p.file, lockTimeout)
		if err != nil {
			persistErr = err
		} else {
			defer unlock()
			if persistErr = p.syncApprovals(); persistErr == nil {
				if changes, updates, err = p.plan(route, defs); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, u := range updates {
		p.put(u.k, u.e)
	}
	p.logChanges(changes)
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
// anything. Callers hold writeMu, so entries cannot change under it.
func (p *Pins) plan(route string, defs []definition) ([]Change, []update, error) {
	now := p.now()
	var changes []Change
	var updates []update
	added := 0
	for _, d := range defs {
		k := key{route, d.name}
		e, ok := p.entries[k]
		fp := d.fingerprint
		if !ok {
			added++
			e = entry{observed: fp, observedAt: now}
			if p.trustFirstUse(route) {
				e.pin, e.source, e.pinnedAt = fp, SourceFirstUse, now
			} else {
				e.definition = d.canonical
			}
			changes = append(changes, Change{Route: route, Tool: d.name, New: fp, FirstSeen: true})
			updates = append(updates, update{k, e})
			continue
		}
		if e.pin != fp {
			changes = append(changes, Change{Route: route, Tool: d.name, Old: e.pin, New: fp,
				FirstSeen: e.pin == "", Repeated: e.observed == fp})
		}
		if e.observed != fp {
			e.observed, e.observedAt, e.definition = fp, now, nil
			if e.pin != fp {
				e.definition = d.canonical
			}
			updates = append(updates, update{k, e})
		}
	}
	if added > 0 {
		if err := p.checkRoom(route, added); err != nil {
			return nil, nil, fmt.Errorf("toolpin: route %s: %w", quote(route), err)
		}
	}
	return changes, updates, nil
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
