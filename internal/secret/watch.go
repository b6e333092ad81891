package secret

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultWatchInterval is how often a watched file is checked for changes
// when no interval is given.
const DefaultWatchInterval = time.Second

// File is a secret file that is re-read when it changes: a rotated API key
// or signing key takes effect without a restart.
//
// Checks are lazy: Value and Current stat the file at most once per
// interval, on the calling goroutine, and re-read it only when its
// identity (device and inode), size, modification time or mode changed.
// The path is stat'ed through symbolic links, so the atomic "..data"
// symlink swap by which Kubernetes updates a Secret volume is seen as a
// change.
//
// A failed check fails closed: until the file is readable again (and still
// not accessible by other users), Value returns an error, and the check is
// retried at the next interval. Errors name the path, never the content.
//
// A File is safe for concurrent use.
type File struct {
	path     string
	interval time.Duration
	now      func() time.Time
	onChange func()

	// state is the last check's outcome; reads on the fast path are one
	// atomic load. mu serialises checks.
	state atomic.Pointer[fileState]
	mu    sync.Mutex
}

// fileState is an immutable snapshot of a File.
type fileState struct {
	checked time.Time   // when the file was last stat'ed
	info    os.FileInfo // stat of the file the value was read from; nil after an error
	value   []byte      // current value; nil after an error
	good    []byte      // last value successfully read (to detect real changes)
	version uint64      // bumped whenever good changes
	err     error       // non-nil: the last check failed
}

// WatchOption configures Watch.
type WatchOption func(*File)

// WithInterval sets how often the file is checked (default
// DefaultWatchInterval). An interval <= 0 checks on every access.
func WithInterval(d time.Duration) WatchOption {
	return func(f *File) { f.interval = d }
}

// WithClock replaces time.Now (for tests).
func WithClock(now func() time.Time) WatchOption {
	return func(f *File) {
		if now != nil {
			f.now = now
		}
	}
}

// WithOnChange registers fn, called after a check found new content (not
// for the initial read, nor for an error). It runs on the goroutine that
// made the check, after the new value is visible, without locks held; it
// may call the File's methods.
func WithOnChange(fn func()) WatchOption {
	return func(f *File) { f.onChange = fn }
}

// Watch reads the secret file at path (see ReadFile) and returns a File
// that follows its changes. It fails if the file cannot be read now.
func Watch(path string, opts ...WatchOption) (*File, error) {
	f := &File{path: path, interval: DefaultWatchInterval, now: time.Now}
	for _, o := range opts {
		o(f)
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	v, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	f.state.Store(&fileState{checked: f.now(), info: info, value: v, good: v, version: 1})
	return f, nil
}

// Path returns the watched path.
func (f *File) Path() string { return f.path }

// Value returns the file's current content, trimmed. The slice is a copy
// the caller may keep and modify.
func (f *File) Value() ([]byte, error) {
	v, _, err := f.Current()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(v), nil
}

// Current returns the file's current content and its version, a number
// that changes exactly when the content does, so that a dependant (a
// parsed key, a header value) is rebuilt only when needed. The slice is
// shared: the caller must not modify it.
func (f *File) Current() ([]byte, uint64, error) {
	s := f.state.Load()
	if !f.due(s) {
		return s.value, s.version, s.err
	}
	s, changed := f.check()
	if changed && f.onChange != nil {
		f.onChange()
	}
	return s.value, s.version, s.err
}

// due reports whether s is older than the check interval. A clock that
// went backwards also triggers a check.
func (f *File) due(s *fileState) bool {
	if f.interval <= 0 {
		return true
	}
	d := f.now().Sub(s.checked)
	return d >= f.interval || d < 0
}

// check stats the file and re-reads it if needed. It reports whether the
// content changed.
func (f *File) check() (*fileState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.state.Load()
	if !f.due(s) { // another goroutine checked meanwhile
		return s, false
	}
	now := f.now()
	next := *s
	next.checked = now

	// Stat before reading: if the file changes between the two, the next
	// check sees a stat different from the one stored and reads again.
	info, err := os.Stat(f.path)
	switch {
	case err != nil:
		next.info, next.value, next.err = nil, nil, fmt.Errorf("secret: %w", err)
	case s.err == nil && s.info != nil && sameFile(s.info, info):
		// Unchanged; only the check time moves.
	default:
		v, err := ReadFile(f.path)
		if err != nil {
			next.info, next.value, next.err = nil, nil, err
			break
		}
		next.info, next.value, next.err = info, v, nil
		if !bytes.Equal(v, s.good) {
			next.good = v
			next.version++
			f.state.Store(&next)
			return &next, true
		}
		next.value = s.good // keep sharing the old slice
	}
	f.state.Store(&next)
	return &next, false
}

// sameFile reports whether b describes the same file, with the same size,
// modification time and mode, as a. os.SameFile compares device and inode
// (volume and file index on Windows), which catches a replaced file or a
// swapped symlink even when size and time are equal.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && a.Mode() == b.Mode()
}
