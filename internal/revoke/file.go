package revoke

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/mcpgate/mcpgate/internal/statefile"
)

// fileVersion is the version of the file format this package reads and
// writes. A file of another version is refused (ErrCorrupt).
const fileVersion = 1

// Bounds on the file. Writes that would exceed maxFileBytes are refused
// (ErrFull), so the package never writes a file it would not read.
const (
	maxFileBytes   = 256 << 20
	maxFileEntries = maxEntriesLimit
)

// errNoFile: the file does not exist. It wraps fs.ErrNotExist.
var errNoFile = fmt.Errorf("revocation file %w", fs.ErrNotExist)

// jsonDoc and jsonEntry are the file's JSON shape.
type jsonDoc struct {
	Version int         `json:"version"`
	Entries []jsonEntry `json:"entries"`
}

type jsonEntry struct {
	Kind      Kind      `json:"kind"`
	Issuer    string    `json:"issuer"`
	Value     string    `json:"value"`
	NotBefore time.Time `json:"not_before,omitzero"`
	Until     time.Time `json:"until"`
	Created   time.Time `json:"created,omitzero"`
	Reason    string    `json:"reason,omitempty"`
}

// readFile reads and validates the file at path, dropping the entries
// expired at now. A missing file is errNoFile; an insecure one
// ErrInsecureFile; an unreadable one the os error; anything else wrong
// ErrCorrupt.
func readFile(path string, now time.Time) (set, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return set{}, errNoFile
	}
	if err != nil {
		return set{}, fmt.Errorf("read revocation file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return set{}, fmt.Errorf("read revocation file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return set{}, fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, path)
	}
	if statefile.InsecureMode(fi) {
		return set{}, fmt.Errorf("%w: %s (mode %v)", ErrInsecureFile, path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return set{}, fmt.Errorf("read revocation file: %w", err)
	}
	if len(b) > maxFileBytes {
		return set{}, fmt.Errorf("%w: %s larger than %d bytes", ErrCorrupt, path, maxFileBytes)
	}
	m, err := parseFile(b, now)
	if err != nil {
		return set{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// parseFile decodes and validates a revocation file, dropping the entries
// expired at now. Every error matches ErrCorrupt and quotes no value.
func parseFile(b []byte, now time.Time) (set, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
	if !utf8.Valid(b) {
		// encoding/json would silently replace the bad bytes, changing keys.
		return set{}, corrupt("not valid UTF-8")
	}
	var j jsonDoc
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return set{}, corrupt("%w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return set{}, corrupt("data after the document")
	}
	if j.Version != fileVersion {
		return set{}, corrupt("version %d, want %d", j.Version, fileVersion)
	}
	if len(j.Entries) > maxFileEntries {
		return set{}, corrupt("more than %d entries", maxFileEntries)
	}
	m := makeSet(len(j.Entries))
	seen := make(map[key]bool, len(j.Entries))
	for i, je := range j.Entries {
		e := Entry{
			Kind: je.Kind, Issuer: je.Issuer, Value: je.Value,
			NotBefore: je.NotBefore.UTC(), Until: je.Until.UTC(), Created: je.Created.UTC(),
			Reason: je.Reason,
		}
		if err := checkStored(e); err != nil {
			return set{}, corrupt("entries[%d]: %w", i, err)
		}
		k := keyOf(&e)
		if seen[k] {
			return set{}, corrupt("entries[%d]: kind, issuer and value listed twice", i)
		}
		seen[k] = true
		if now.Before(e.Until) {
			m.put(&e)
		}
	}
	return m, nil
}

// checkStored validates an entry read from the file.
func checkStored(e Entry) error {
	errs := checkKey(e)
	switch {
	case e.Kind == KindJTI && !e.NotBefore.IsZero():
		errs = append(errs, errors.New("not_before in a jti entry"))
	case e.Kind != KindJTI && e.NotBefore.IsZero():
		errs = append(errs, errors.New("no not_before"))
	}
	if e.Until.IsZero() {
		errs = append(errs, errors.New("no until"))
	}
	errs = append(errs, checkTimes(e)...)
	errs = append(errs, checkReason(e.Reason)...)
	return errors.Join(errs...)
}

// encodeFile renders m as the file's JSON, entries sorted by kind, issuer
// and value.
func encodeFile(s set) ([]byte, error) {
	entries := make([]Entry, 0, s.size())
	for _, e := range s.all() {
		entries = append(entries, *e)
	}
	slices.SortFunc(entries, compareEntries)
	j := jsonDoc{Version: fileVersion, Entries: make([]jsonEntry, len(entries))}
	for i, e := range entries {
		j.Entries[i] = jsonEntry(e)
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode revocation file: %w", err)
	}
	if len(b) >= maxFileBytes {
		return nil, fmt.Errorf("%w: the file would be larger than %d bytes", ErrFull, maxFileBytes)
	}
	return append(b, '\n'), nil
}

// writeFile replaces l.file with m atomically: a temporary file (mode
// 0600, owned like the file it replaces) in the same directory, written
// and fsynced, renamed over the file, and the directory fsynced. Callers
// hold the file lock.
func (l *List) writeFile(s set) error {
	b, err := encodeFile(s)
	if err != nil {
		return err
	}
	return statefile.WriteFile(l.file, b, "revocation file", l.beforeRename)
}
