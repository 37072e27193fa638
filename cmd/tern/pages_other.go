//go:build !linux

package main

import "errors"

// releaseStartupPages is Linux's (MADV_PAGEOUT); elsewhere the kernel
// keeps what it keeps.
func releaseStartupPages() (int, error) {
	return 0, errors.New("releasing the executable's pages is implemented on Linux only")
}
