//go:build unix

package snp

import (
	"syscall"
	"time"
)

// processCPU returns the user+system CPU time of the process, so that
// benchmarks can report CPU cost on a machine shared with other work.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
