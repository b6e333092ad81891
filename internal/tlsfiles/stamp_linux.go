package tlsfiles

import (
	"os"
	"syscall"
)

// sysStamp adds the inode, device and change time: a symlink swap changes
// the inode, and a rewrite that restores the old modification time still
// changes the change time.
func sysStamp(fi os.FileInfo, s *stamp) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
		s.dev = uint64(st.Dev) // uint32 on some architectures
		s.ctime = st.Ctim.Nano()
	}
}
