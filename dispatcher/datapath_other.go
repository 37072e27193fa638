//go:build !linux

package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
)

// ErrUnsupported is what the datapath and the decapsulator return on a
// system other than Linux: XDP is a Linux facility. The control plane,
// Maglev and HA packages build everywhere, so configurations can be
// checked and tests of the control plane run on any system.
var ErrUnsupported = fmt.Errorf("dispatcher: the XDP datapath needs Linux, this is %s: %w", runtime.GOOS, errors.ErrUnsupported)

// ErrInstanceBusy means another Datapath holds the instance's pins.
var ErrInstanceBusy = errors.New("dispatcher instance in use by another process")

// Datapath is the XDP load balancer; on this system it cannot be opened.
type Datapath struct{}

// OpenDatapath returns ErrUnsupported.
func OpenDatapath(DatapathConfig) (*Datapath, error) { return nil, ErrUnsupported }

func (*Datapath) SetBackend(uint32, Backend) error               { return ErrUnsupported }
func (*Datapath) DeleteBackend(uint32) error                     { return ErrUnsupported }
func (*Datapath) SetService(ServiceKey, Service, []uint32) error { return ErrUnsupported }
func (*Datapath) DeleteService(ServiceKey) error                 { return ErrUnsupported }
func (*Datapath) Services() ([]ServiceKey, error)                { return nil, ErrUnsupported }
func (*Datapath) Counters() (Counters, error)                    { return Counters{}, ErrUnsupported }
func (*Datapath) Close() error                                   { return nil }
func (*Datapath) Detach() error                                  { return ErrUnsupported }

// Decap is the IPIP decapsulator; on this system it cannot be attached.
type Decap struct{}

// AttachDecap returns ErrUnsupported.
func AttachDecap(string, []netip.Addr) (*Decap, error) { return nil, ErrUnsupported }

func (*Decap) Counter() (Counter, error) { return Counter{}, ErrUnsupported }
func (*Decap) Close() error              { return nil }

func runDecap(context.Context, string, []netip.Addr, XDPMode, *slog.Logger) error {
	return ErrUnsupported
}
