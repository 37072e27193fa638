package ha

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Target is a host a dispatcher must reach to hold VIPs.
type Target struct {
	Addr netip.Addr
	// Type is "arp" (the target answers ARP on Iface), "icmp" (echo) or
	// "tcp" (a connect to Port succeeds).
	Type     string
	Port     int
	Interval time.Duration
	Timeout  time.Duration
	// Fall failures in a row make the target unreachable; one success
	// makes it reachable again.
	Fall int
}

func (t Target) String() string {
	if t.Type == "tcp" {
		return "tcp:" + netip.AddrPortFrom(t.Addr, uint16(t.Port)).String()
	}
	return t.Type + ":" + t.Addr.String()
}

// Reach checks targets; it is the Reacher of an Agent. Reachable means
// every target reachable.
type Reach struct {
	Targets []Target
	// Iface is the interface ARP checks are sent from.
	Iface  string
	Logger *slog.Logger
	// Probe checks one target once; nil means the real checks. Tests
	// replace it.
	Probe func(ctx context.Context, t Target) error
}

var _ Reacher = (*Reach)(nil)

// Run checks every target at its interval until ctx ends and reports
// each change of the overall verdict.
func (r *Reach) Run(ctx context.Context, report func(ok bool)) error {
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	probe := r.Probe
	if probe == nil {
		probe = r.probe
	}
	var (
		mu   sync.Mutex
		down = map[int]bool{}
		was  = true
		wg   sync.WaitGroup
	)
	for i, t := range r.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fails := 0
			tick := time.NewTicker(t.Interval)
			defer tick.Stop()
			for {
				pctx, cancel := context.WithTimeout(ctx, t.Timeout)
				err := probe(pctx, t)
				cancel()
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					fails++
				} else {
					fails = 0
				}
				mu.Lock()
				prev := down[i]
				down[i] = fails >= max(t.Fall, 1)
				if down[i] != prev {
					if down[i] {
						log.Warn("ha: reach target unreachable", "target", t, "err", err)
					} else {
						log.Info("ha: reach target reachable", "target", t)
					}
				}
				ok := true
				for _, d := range down {
					ok = ok && !d
				}
				if ok != was {
					was = ok
					report(ok)
				}
				mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

func (r *Reach) probe(ctx context.Context, t Target) error {
	switch t.Type {
	case "tcp":
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(t.Addr.String(), strconv.Itoa(t.Port)))
		if err != nil {
			return err
		}
		return c.Close()
	case "icmp":
		return pingICMP(ctx, t.Addr)
	case "arp":
		return arping(ctx, r.Iface, t.Addr)
	}
	return fmt.Errorf("reach target type %q unknown", t.Type)
}

var errNoReply = errors.New("no reply")

// pingICMP sends one echo request over a raw socket and waits for the
// matching reply.
func pingICMP(ctx context.Context, to netip.Addr) error {
	c, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return fmt.Errorf("icmp socket: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	id := uint16(time.Now().UnixNano())
	msg := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), 0, 1, 't', 'e', 'r', 'n'}
	binary.BigEndian.PutUint16(msg[2:], inetChecksum(msg))
	if _, err := c.WriteTo(msg, &net.IPAddr{IP: to.AsSlice()}); err != nil {
		return fmt.Errorf("icmp echo to %s: %w", to, err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("icmp echo to %s: %w", to, errNoReply)
		}
		ip, _ := from.(*net.IPAddr)
		if ip == nil || !ip.IP.Equal(to.AsSlice()) || n < 8 {
			continue
		}
		if buf[0] == 0 && binary.BigEndian.Uint16(buf[4:]) == id {
			return nil
		}
	}
}

func inetChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
