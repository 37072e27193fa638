//go:build !linux

package selector

import "time"

func threadCPU() time.Duration { return 0 }
