//go:build unix && !linux

package tlsfiles

import (
	"os"
	"syscall"
)

// sysStamp adds the inode and device, so that a symlink swap to an older
// file of the same size is still noticed.
func sysStamp(fi os.FileInfo, s *stamp) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = uint64(st.Ino)
		s.dev = uint64(st.Dev)
	}
}
