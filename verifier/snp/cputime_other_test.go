//go:build !unix

package snp

import "time"

func processCPU() time.Duration { return 0 }
