//go:build !unix

package localjson

import "io/fs"

// inode is unavailable here; change detection relies on size and
// modification time only.
func inode(fs.FileInfo) uint64 { return 0 }
