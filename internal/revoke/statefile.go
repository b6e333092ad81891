package revoke

import (
	"time"

	"github.com/mcpgate/mcpgate/internal/statefile"
)

// lockTimeout bounds the wait for another process's lock (a command line
// change holds it for milliseconds).
const lockTimeout = 10 * time.Second

// lockFile takes the revocation file's advisory lock (see statefile.Lock).
func lockFile(path string, timeout time.Duration) (func(), error) {
	return statefile.Lock(path, timeout, "revocation file", ErrInsecureFile, ErrLocked)
}
