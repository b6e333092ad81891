package toolpin

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// ListFile reads the pins file at path and returns its tools, sorted by
// route and tool, with the approvals recorded in the file applied (as a
// running gateway applies them on Reload). It takes no lock: the file is
// only ever replaced whole.
func ListFile(path string) ([]Entry, error) {
	doc, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("toolpin: %w", err)
	}
	view := fileView(doc)
	out := make([]Entry, 0, len(view))
	for k, e := range view {
		out = append(out, exportEntry(k, e))
	}
	sortEntries(out)
	return out, nil
}

// fileView is the file's tools with its approvals applied, as
// Pins.applyApprovals applies them (without the bounds on definitions).
func fileView(doc *fileDoc) map[key]entry {
	view := make(map[key]entry, len(doc.tools))
	for _, t := range doc.tools {
		view[t.k] = t.e
	}
	for _, a := range doc.approvals {
		e := view[a.k]
		e.pin, e.source, e.pinnedAt = a.fingerprint, SourceApproved, a.at
		if !e.awaitsApproval() {
			e.definition = nil
		}
		view[a.k] = e
	}
	return view
}

// ApproveInFile records in the pins file at path an approval of the latest
// definition of route's tool that the file records, for a running gateway
// to apply on Reload (and a starting one on New). A tool the file does not
// record as observed is [ErrNotFound]; one whose latest definition is
// already pinned is left as it is. The approval names the fingerprint, so
// a definition that changes again before the gateway applies it stays
// Changed.
//
// The file is read and replaced under the same lock the gateway takes to
// write it, so neither loses the other's records.
func ApproveInFile(path, route, tool string) error {
	return approveInFile(path, route, tool, "", time.Now())
}

// ApproveFingerprintInFile records in the pins file at path an approval of
// fingerprint (as printed by ListFile, after review) for route's tool,
// observed or not. See [Pins.ApproveFingerprint].
func ApproveFingerprintInFile(path, route, tool, fingerprint string) error {
	if !validFingerprint(fingerprint) {
		return errors.New("toolpin: approve: invalid fingerprint")
	}
	return approveInFile(path, route, tool, fingerprint, time.Now())
}

func approveInFile(path, route, tool, fp string, now time.Time) error {
	if route == "" || tool == "" || len(tool) > maxNameBytes || !utf8.ValidString(route) || !utf8.ValidString(tool) {
		return errors.New("toolpin: approve: invalid route or tool")
	}
	unlock, err := lockFile(path, lockTimeout)
	if err != nil {
		return fmt.Errorf("toolpin: approve: %w", err)
	}
	defer unlock()
	doc, err := readFile(path)
	if err != nil {
		return fmt.Errorf("toolpin: approve: %w", err)
	}
	k := key{route, tool}
	if fp == "" {
		e, ok := fileView(doc)[k]
		if !ok || e.observed == "" {
			return fmt.Errorf("toolpin: approve %s on route %s: %w", quote(tool), quote(route), ErrNotFound)
		}
		if e.pin == e.observed {
			return nil
		}
		fp = e.observed
	}
	if len(doc.approvals) >= maxApprovals {
		return fmt.Errorf("toolpin: approve: %w: %d approvals not yet applied by a gateway", ErrTooMany, len(doc.approvals))
	}
	doc.approvals = append(doc.approvals, approval{k: k, fingerprint: fp, at: now.UTC()})
	if err := writeFile(path, doc); err != nil {
		return fmt.Errorf("toolpin: approve: %w", err)
	}
	return nil
}
