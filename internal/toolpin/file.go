package toolpin

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/mcpgate/mcpgate/internal/statefile"
)

// fileVersion is the version of the pins file format this package reads
// and writes. A file of another version is refused (ErrCorrupt), never
// guessed at.
const fileVersion = 1

// Bounds on the pins file.
const (
	maxFileBytes = 256 << 20
	maxApprovals = 10000
)

// errNoFile: the pins file does not exist. It wraps fs.ErrNotExist.
var errNoFile = fmt.Errorf("pins file %w", fs.ErrNotExist)

// fileDoc is a pins file in memory.
type fileDoc struct {
	Version   int
	tools     []fileEntry
	approvals []approval
}

type fileEntry struct {
	k key
	e entry
}

type approval struct {
	k           key
	fingerprint string
	at          time.Time
}

// jsonDoc, jsonTool and jsonApproval are the file's JSON shape (see the
// package documentation).
type jsonDoc struct {
	Version   int            `json:"version"`
	Tools     []jsonTool     `json:"tools"`
	Approvals []jsonApproval `json:"approvals"`
}

type jsonTool struct {
	Route      string          `json:"route"`
	Tool       string          `json:"tool"`
	Pin        string          `json:"pin,omitempty"`
	PinSource  Source          `json:"pin_source,omitempty"`
	PinnedAt   time.Time       `json:"pinned_at,omitzero"`
	Observed   string          `json:"observed,omitempty"`
	ObservedAt time.Time       `json:"observed_at,omitzero"`
	Definition json.RawMessage `json:"definition,omitempty"`
}

type jsonApproval struct {
	Route       string    `json:"route"`
	Tool        string    `json:"tool"`
	Fingerprint string    `json:"fingerprint"`
	ApprovedAt  time.Time `json:"approved_at,omitzero"`
}

// readFile reads and validates the pins file at path. A missing file is
// errNoFile; an insecure one ErrInsecureFile; an unreadable one the os
// error; anything else wrong ErrCorrupt.
func readFile(path string) (*fileDoc, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoFile
	}
	if err != nil {
		return nil, fmt.Errorf("read pins file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read pins file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, path)
	}
	if statefile.InsecureMode(fi) {
		return nil, fmt.Errorf("%w: %s (mode %v)", ErrInsecureFile, path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read pins file: %w", err)
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("%w: %s larger than %d bytes", ErrCorrupt, path, maxFileBytes)
	}
	doc, err := parseFile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc, nil
}

// parseFile decodes and validates a pins file. Every error matches
// ErrCorrupt.
func parseFile(b []byte) (*fileDoc, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
	// The strict reader first: duplicate names, invalid UTF-8, trailing
	// data. Definitions sit four levels down.
	c := canonicalizer{data: b, maxDepth: maxDepth + 4}
	if _, err := c.document(ctxData); err != nil {
		return nil, corrupt("%w", err)
	}
	var j jsonDoc
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, corrupt("%w", err)
	}
	if j.Version != fileVersion {
		return nil, corrupt("version %d, want %d", j.Version, fileVersion)
	}
	if len(j.Approvals) > maxApprovals {
		return nil, corrupt("more than %d approvals", maxApprovals)
	}
	doc := &fileDoc{Version: j.Version}
	seen := make(map[key]bool, len(j.Tools))
	for i, t := range j.Tools {
		k := key{t.Route, t.Tool}
		e := entry{pin: t.Pin, source: t.PinSource, pinnedAt: t.PinnedAt, observed: t.Observed, observedAt: t.ObservedAt}
		if err := checkEntry(k, e, t.Definition); err != nil {
			return nil, corrupt("tools[%d]: %w", i, err)
		}
		if seen[k] {
			return nil, corrupt("tools[%d]: route and tool listed twice", i)
		}
		seen[k] = true
		if len(t.Definition) > 0 {
			d, _ := parseDefinition(t.Definition) // checked by checkEntry
			e.definition = d.canonical
		}
		doc.tools = append(doc.tools, fileEntry{k, e})
	}
	for i, a := range j.Approvals {
		if a.Route == "" || a.Tool == "" || len(a.Tool) > maxNameBytes {
			return nil, corrupt("approvals[%d]: invalid route or tool", i)
		}
		if !validFingerprint(a.Fingerprint) {
			return nil, corrupt("approvals[%d]: invalid fingerprint", i)
		}
		doc.approvals = append(doc.approvals, approval{key{a.Route, a.Tool}, a.Fingerprint, a.ApprovedAt})
	}
	return doc, nil
}

// checkEntry validates one tool record of the file.
func checkEntry(k key, e entry, def json.RawMessage) error {
	switch {
	case k.route == "" || k.tool == "" || len(k.tool) > maxNameBytes:
		return errors.New("invalid route or tool")
	case e.pin == "" && e.observed == "":
		return errors.New("neither pin nor observed")
	case e.pin != "" && !validFingerprint(e.pin):
		return errors.New("invalid pin")
	case e.pin != "" && e.source != SourceFirstUse && e.source != SourceApproved:
		return errors.New("invalid pin_source")
	case e.pin == "" && e.source != "":
		return errors.New("pin_source without pin")
	case e.observed != "" && !validFingerprint(e.observed):
		return errors.New("invalid observed")
	}
	if len(def) == 0 {
		return nil
	}
	if !e.awaitsApproval() {
		return errors.New("definition of a tool that awaits no approval")
	}
	d, err := parseDefinition(def)
	switch {
	case err != nil:
		return fmt.Errorf("definition: %w", err)
	case d.name != k.tool:
		return errors.New("definition of another tool")
	case d.fingerprint != e.observed:
		return errors.New("definition does not match observed")
	}
	return nil
}

// encodeFile renders doc as the file's JSON, tools sorted by route and
// tool, approvals in the order they were recorded.
func encodeFile(doc *fileDoc) ([]byte, error) {
	j := jsonDoc{Version: fileVersion, Tools: []jsonTool{}, Approvals: []jsonApproval{}}
	tools := slices.Clone(doc.tools)
	slices.SortFunc(tools, func(a, b fileEntry) int {
		return cmp.Or(cmp.Compare(a.k.route, b.k.route), cmp.Compare(a.k.tool, b.k.tool))
	})
	for _, t := range tools {
		j.Tools = append(j.Tools, jsonTool{
			Route: t.k.route, Tool: t.k.tool,
			Pin: t.e.pin, PinSource: t.e.source, PinnedAt: t.e.pinnedAt,
			Observed: t.e.observed, ObservedAt: t.e.observedAt,
			Definition: json.RawMessage(t.e.definition),
		})
	}
	for _, a := range doc.approvals {
		j.Approvals = append(j.Approvals, jsonApproval{Route: a.k.route, Tool: a.k.tool, Fingerprint: a.fingerprint, ApprovedAt: a.at})
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode pins file: %w", err)
	}
	return append(b, '\n'), nil
}

// writeFile replaces the file at path with doc atomically: a temporary file
// (mode 0600, owned like the file it replaces) in the same directory,
// written and fsynced, renamed over path, and the directory fsynced.
// Callers hold the file lock.
func writeFile(path string, doc *fileDoc) error {
	b, err := encodeFile(doc)
	if err != nil {
		return err
	}
	return statefile.WriteFile(path, b, "pins file", nil)
}
