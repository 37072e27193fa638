package control

import (
	"net/netip"
	"slices"
	"time"

	"github.com/ternlb/tern/dispatcher/datapath"
)

// VIPLoad is how much traffic a VIP takes through this dispatcher, summed
// over its services, so that a DNS pool member standing for a whole site
// can be weighed by it.
type VIPLoad struct {
	VIP netip.Addr
	// Packets and Bytes are totals since the services were set.
	Packets, Bytes uint64
	// PacketRate and ByteRate are per second over the last sample interval.
	PacketRate, ByteRate float64
	// ActiveFlows estimates the TCP flows open through this dispatcher
	// from the client's SYN, FIN and RST segments it forwarded (see the
	// package documentation, Active flows, for how and how far to trust
	// it). UDP has no flows to count.
	ActiveFlows uint64
	// NewFlows counts TCP flows opened (the client's SYNs) since the
	// services were set; NewFlowRate is per second over the last sample
	// interval.
	NewFlows    uint64
	NewFlowRate float64
	// Servers is how many distinct servers the VIP's services list,
	// Serving how many of them take new flows of at least one service (up
	// and weight above 0).
	Servers, Serving int
	// Forwarding is whether this dispatcher forwards the VIP now.
	Forwarding bool
}

// Load returns the latest sample for every VIP of the Spec, sorted by VIP.
// Rates are 0 until two samples have been taken.
func (c *Control) Load() []VIPLoad {
	spec, health, owned := c.desired()

	c.lmu.Lock()
	defer c.lmu.Unlock()
	out := make([]VIPLoad, 0, len(spec.Services))
	idx := map[netip.Addr]int{}
	type vs struct{ vip, srv netip.Addr }
	listed, serving := map[vs]bool{}, map[vs]bool{}
	for _, s := range spec.Services {
		i, ok := idx[s.Key.VIP]
		if !ok {
			i = len(out)
			idx[s.Key.VIP] = i
			l := VIPLoad{VIP: s.Key.VIP, Forwarding: owned[s.Key.VIP] == ownForward}
			if sampled := c.load[s.Key.VIP]; sampled != nil {
				l.Packets, l.Bytes = sampled.Packets, sampled.Bytes
				l.PacketRate, l.ByteRate = sampled.PacketRate, sampled.ByteRate
				l.ActiveFlows, l.NewFlows, l.NewFlowRate = sampled.ActiveFlows, sampled.NewFlows, sampled.NewFlowRate
			}
			out = append(out, l)
		}
		for _, srv := range s.Servers {
			k := vs{s.Key.VIP, srv.Addr}
			if !listed[k] {
				listed[k] = true
				out[i].Servers++
			}
			up, known := health[healthKey{srv.Addr, srv.Check}]
			if srv.Weight > 0 && (!known || up || srv.Check == "" || srv.Check == "none") && !serving[k] {
				serving[k] = true
				out[i].Serving++
			}
		}
	}
	slices.SortFunc(out, func(a, b VIPLoad) int { return a.VIP.Compare(b.VIP) })
	return out
}

// SampleLoad takes a sample for Load now, when the Maps can read
// counters (Run does every loadEvery; a last one before exit shows the
// final figures).
func (c *Control) SampleLoad(now time.Time) {
	if cr, ok := c.maps.(counterReader); ok {
		c.sampleLoad(cr, now)
	}
}

// sampleLoad reads the counters and updates per-VIP totals and rates.
func (c *Control) sampleLoad(cr counterReader, now time.Time) {
	cs, err := cr.Counters()
	if err != nil {
		c.log.Warn("dispatcher: read counters", "err", err)
		return
	}
	c.lmu.Lock()
	defer c.lmu.Unlock()
	totals := map[netip.Addr]datapath.Counter{}
	for k, v := range cs.Services {
		t := totals[k.VIP]
		t.Packets += v.Packets
		t.Bytes += v.Bytes
		totals[k.VIP] = t
	}
	prev := map[netip.Addr]datapath.Counter{}
	for k, v := range c.last.Services {
		p := prev[k.VIP]
		p.Packets += v.Packets
		p.Bytes += v.Bytes
		prev[k.VIP] = p
	}
	dt := now.Sub(c.lastRead).Seconds()
	next := map[netip.Addr]*VIPLoad{}
	for vip, t := range totals {
		l := &VIPLoad{VIP: vip, Packets: t.Packets, Bytes: t.Bytes}
		p, had := prev[vip]
		// A service re-created starts its counters at 0: no rate then.
		if had && !c.lastRead.IsZero() && dt > 0 && t.Packets >= p.Packets && t.Bytes >= p.Bytes {
			l.PacketRate = float64(t.Packets-p.Packets) / dt
			l.ByteRate = float64(t.Bytes-p.Bytes) / dt
		}
		next[vip] = l
	}
	for k, tc := range cs.TCP {
		e := c.flows[k]
		if e == nil {
			e = &flowEstimate{}
			c.flows[k] = e
		}
		opened := e.update(now, tc, c.flowLifetime)
		l := next[k.VIP]
		if l == nil {
			l = &VIPLoad{VIP: k.VIP}
			next[k.VIP] = l
		}
		l.ActiveFlows += e.active
		l.NewFlows += tc.Opened
		if dt > 0 && !c.lastRead.IsZero() {
			l.NewFlowRate += float64(opened) / dt
		}
	}
	for k := range c.flows {
		if _, ok := cs.TCP[k]; !ok {
			delete(c.flows, k) // service gone: its estimate starts afresh
		}
	}
	c.load = next
	c.last = cs
	c.lastRead = now
}
