//go:build !linux

package datapath

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
)

// ErrUnsupported is what the datapath and the decapsulator return on a
// system other than Linux: XDP is a Linux facility. The control plane,
// Maglev and HA packages build everywhere, so configurations can be
// checked and tests of the control plane run on any system.
var ErrUnsupported = fmt.Errorf("datapath: XDP needs Linux, this is %s: %w", runtime.GOOS, errors.ErrUnsupported)

// The errors of Open on Linux.
var (
	ErrInstanceBusy = errors.New("dispatcher instance in use by another process")
	ErrOtherNetns   = errors.New("dispatcher instance belongs to another network namespace")
	ErrPrivateBPFFS = errors.New("bpffs is private to this process's mount namespace; the pins would not outlive it")
)

// LB is the XDP load balancer; on this system it cannot be opened.
type LB struct{}

// Open returns ErrUnsupported.
func Open(Config) (*LB, error) { return nil, ErrUnsupported }

func (*LB) SetBackend(uint32, Backend) error               { return ErrUnsupported }
func (*LB) DeleteBackend(uint32) error                     { return ErrUnsupported }
func (*LB) SetService(ServiceKey, Service, []uint32) error { return ErrUnsupported }
func (*LB) DeleteService(ServiceKey) error                 { return ErrUnsupported }
func (*LB) Services() ([]ServiceKey, error)                { return nil, ErrUnsupported }
func (*LB) Counters() (Counters, error)                    { return Counters{}, ErrUnsupported }
func (*LB) Persistent() bool                               { return false }
func (*LB) Close() error                                   { return nil }
func (*LB) Detach() error                                  { return ErrUnsupported }

// Decap is the IPIP decapsulator; on this system it cannot be attached.
type Decap struct{}

// AttachDecap returns ErrUnsupported.
func AttachDecap(string, []netip.Addr, XDPMode) (*Decap, error) { return nil, ErrUnsupported }

func (*Decap) Counter() (Counter, error) { return Counter{}, ErrUnsupported }
func (*Decap) Close() error              { return nil }
