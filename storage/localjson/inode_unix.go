//go:build unix

package localjson

import (
	"io/fs"
	"syscall"
)

// inode returns the file's inode number, so that a file replaced by rename
// is noticed even when its size and modification time are unchanged.
func inode(st fs.FileInfo) uint64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Ino)
	}
	return 0
}
