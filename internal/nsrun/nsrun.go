//go:build linux

// Package nsrun runs a function inside a named network namespace (one
// made by `ip netns add`), for the tests of the dispatcher and its
// commands, which set up their links in namespaces of their own.
package nsrun

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs f on a thread switched into namespace name and switches the
// thread back after. If switching back fails the thread is left locked,
// so that it dies with its goroutine instead of running others in the
// wrong namespace.
func Do(name string, f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	h, err := netns.GetFromName(name)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("restore namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}
