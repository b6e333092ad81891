//go:build !unix

package statefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// Lock creates path+".lock" exclusively, waiting up to timeout, and
// returns its removal. Unlike flock on Unix, a lock left by a process that
// died is not released: the error says to remove it by hand.
func Lock(path string, timeout time.Duration, what string, errInsecure, errLocked error) (func(), error) {
	name := path + ".lock"
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(name) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", what, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %s exists (remove it if no mcpgate process is running)", errLocked, name)
		}
		time.Sleep(delay) // polling another process's lock
	}
}

// InsecureMode is false: permission bits do not describe access here.
func InsecureMode(os.FileInfo) bool { return false }

// MatchOwner does nothing here.
func MatchOwner(*os.File, os.FileInfo) error { return nil }

// SyncDir does nothing here.
func SyncDir(string) {}
