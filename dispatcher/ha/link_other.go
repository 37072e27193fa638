//go:build !linux

package ha

import (
	"context"
	"errors"
	"net/netip"
)

var errNotLinux = errors.New("ha: moving VIPs needs Linux (netlink, packet sockets)")

// Link is the Interface of a real network interface; only Linux has one.
type Link struct {
	Name string
}

var _ Interface = (*Link)(nil)

func (l *Link) AddVIPs(context.Context, []netip.Addr) error    { return errNotLinux }
func (l *Link) RemoveVIPs(context.Context, []netip.Addr) error { return errNotLinux }
func (l *Link) Announce(context.Context, []netip.Addr) error   { return errNotLinux }

func arping(context.Context, string, netip.Addr) error { return errNotLinux }
