//go:build !unix

package revoke

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// lockTimeout bounds the wait for another process's lock.
const lockTimeout = 10 * time.Second

// lockFile creates path+".lock" exclusively, waiting up to timeout, and
// returns its removal. Unlike flock on Unix, a lock left by a process that
// died is not released: the error says to remove it by hand.
func lockFile(path string, timeout time.Duration) (func(), error) {
	name := path + ".lock"
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(name) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock revocation file: %w", err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %s exists (remove it if no mcpgate process is running)", ErrLocked, name)
		}
		time.Sleep(delay) // polling another process's lock
	}
}

// insecureMode is false: permission bits do not describe access here.
func insecureMode(os.FileInfo) bool { return false }

// matchOwner does nothing here.
func matchOwner(*os.File, os.FileInfo) error { return nil }

// syncDir does nothing here.
func syncDir(string) {}
