package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// releaseStartupPages tells the kernel to reclaim the pages of tern's own
// executable that are mapped read-only (code and read-only data). Starting
// a node touches much of a large binary (configuration, API, Raft, metrics
// set-up) and the kernel maps file pages in 64 KiB runs around each fault,
// so a node serving a small zone kept about 15 MiB of its executable
// resident, most of it never used again; what the query path uses faults
// back in at once, a little over 1 MiB (BENCHMARKS.md). It returns how
// many bytes it asked about.
func releaseStartupPages() (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	total := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[5] != exe || strings.ContainsRune(fs[1], 'w') {
			continue
		}
		lo, hi, _ := strings.Cut(fs[0], "-")
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || b <= a {
			continue
		}
		// Not unix.Madvise: it takes a []byte, and these ranges are not
		// Go memory.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(a), uintptr(b-a), unix.MADV_PAGEOUT); errno != 0 {
			return total, fmt.Errorf("madvise MADV_PAGEOUT: %w", errno)
		}
		total += int(b - a)
	}
	return total, sc.Err()
}
