//go:build unix

package statefile

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Lock waits up to timeout for an exclusive flock(2) on path+".lock",
// creating that file (mode 0600) if needed, and returns its release. The
// kernel releases the lock if the process dies, so no lock is ever stale.
// The lock file is never removed: removing it would let two processes lock
// different files. what names the file in errors; a lock file others may
// write wraps errInsecure, a lock held past timeout wraps errLocked.
func Lock(path string, timeout time.Duration, what string, errInsecure, errLocked error) (func(), error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", what, err)
	}
	if fi, err := f.Stat(); err == nil && InsecureMode(fi) {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w: %s.lock", what, errInsecure, path)
	}
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", what, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w: %s.lock held for more than %v", errLocked, path, timeout)
		}
		time.Sleep(delay) // polling another process's lock; there is no channel to wait on
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// InsecureMode reports whether group or others may write the file.
func InsecureMode(fi os.FileInfo) bool { return fi.Mode().Perm()&0o022 != 0 }

// MatchOwner gives tmp the owner of the file it will replace, so that a
// command run as root (an approval, a revocation) does not leave a file
// the gateway can no longer read. Only root can change ownership; for anyone else the file is
// already theirs or the rename would fail anyway.
func MatchOwner(tmp *os.File, old os.FileInfo) error {
	st, ok := old.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 || int(st.Uid) == 0 {
		return nil
	}
	return tmp.Chown(int(st.Uid), int(st.Gid))
}

// SyncDir makes a rename in dir durable (best effort).
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
