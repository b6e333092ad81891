package statefile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile replaces the file at path with data atomically: a temporary
// file (mode 0600, owned like the file it replaces) in the same directory,
// written and fsynced, renamed over path, and the directory fsynced.
// beforeRename, if not nil, runs just before the rename (tests inject a
// failure there). what names the file in errors. Callers hold the lock.
func WriteFile(path string, data []byte, what string, beforeRename func() error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if fi, statErr := os.Stat(path); statErr == nil {
		if err := MatchOwner(tmp, fi); err != nil {
			return fmt.Errorf("write %s: %w", what, err)
		}
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if beforeRename != nil {
		if err := beforeRename(); err != nil {
			return fmt.Errorf("write %s: %w", what, err)
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	SyncDir(dir)
	return nil
}
