package datapath

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Decap is the IPIP decapsulator (bpf/decap.c) attached to a server's
// interface. It is not pinned: it detaches when closed or when its process
// ends.
type Decap struct {
	objs decapObjects
	link link.Link
}

// AttachDecap attaches the decapsulator to iface in XDP mode mode:
// IPv4-in-IPv4 and IPv6-in-IPv4 packets whose inner destination is one of
// vips lose their outer header and go up the stack as the inner packet.
func AttachDecap(iface string, vips []netip.Addr, mode XDPMode) (*Decap, error) {
	if len(vips) == 0 {
		return nil, errors.New("decap: no VIP")
	}
	for _, v := range vips {
		if !v.IsValid() {
			return nil, errors.New("decap: invalid VIP")
		}
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("decap interface %q: %w", iface, err)
	}
	d, err := newDecap(vips)
	if err != nil {
		return nil, err
	}
	flags := link.XDPGenericMode
	if mode == XDPNative {
		flags = link.XDPDriverMode
	}
	d.link, err = link.AttachXDP(link.XDPOptions{Program: d.objs.TernDecap, Interface: ifi.Index, Flags: flags})
	if err != nil {
		d.objs.Close()
		return nil, fmt.Errorf("attach decap XDP (%s) to %s: %w", mode, iface, err)
	}
	return d, nil
}

// newDecap loads the program with vips, unattached.
func newDecap(vips []netip.Addr) (*Decap, error) {
	if err := rlimit.RemoveMemlock(); err != nil { // kernels before 5.11 count BPF memory against it
		return nil, fmt.Errorf("decap: raise RLIMIT_MEMLOCK: %w", err)
	}
	d := &Decap{}
	if err := loadDecapObjects(&d.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load decap program: %+v", ve)
		}
		return nil, fmt.Errorf("load decap program: %w", err)
	}
	for _, v := range vips {
		var err error
		if v.Unmap().Is4() {
			err = d.objs.DecapVips.Put(be32(v), uint8(1))
		} else {
			err = d.objs.DecapVips6.Put(v.As16(), uint8(1))
		}
		if err != nil {
			d.objs.Close()
			return nil, fmt.Errorf("decap VIP %s: %w", v, err)
		}
	}
	return d, nil
}

// Counter is how many packets were decapsulated (bytes after removal of the
// outer header).
func (d *Decap) Counter() (Counter, error) {
	return sumCounterOf[decapCounter](d.objs.DecapCounter, 0, func(c decapCounter) Counter {
		return Counter{c.Packets, c.Bytes}
	})
}

// Close detaches the decapsulator.
func (d *Decap) Close() error {
	var errs []error
	if d.link != nil {
		errs = append(errs, d.link.Close())
	}
	errs = append(errs, d.objs.Close())
	return errors.Join(errs...)
}

func sumCounterOf[T any](m *ebpf.Map, idx uint32, conv func(T) Counter) (Counter, error) {
	var per []T
	if err := m.Lookup(idx, &per); err != nil {
		return Counter{}, err
	}
	var c Counter
	for _, x := range per {
		n := conv(x)
		c.Packets += n.Packets
		c.Bytes += n.Bytes
	}
	return c, nil
}
