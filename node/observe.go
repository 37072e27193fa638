package node

import (
	"context"
	"time"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/probes"
)

// What a node keeps for people: the recent history of member state changes
// and the DNS query rate, behind /v1/events and /v1/stats (the status
// page).

const (
	eventsKept = 1000
	rateWindow = 10 * time.Second
)

// recordProbes adds an event for each of this node's own probe verdicts
// that flipped.
func (n *Node) recordProbes(name string, changed []probes.Verdict) {
	now := time.Now()
	for _, v := range changed {
		if !v.Probed {
			continue
		}
		to, from := "up", "down"
		if !v.ProbeUp {
			to, from = from, to
		}
		why := "probes pass"
		if v.Err != "" {
			why = v.Err
		}
		n.events.Add(api.Event{At: now, Pool: v.Key.Pool, Member: v.Key.Member, Node: name, From: from, To: to, Why: why})
	}
}

// Events returns recent member state changes (api.Events).
func (n *Node) Events(ctx context.Context, since time.Time) ([]api.Event, error) {
	return n.events.Events(ctx, since)
}

// Stats returns the DNS query counters and rate (api.Stats).
func (n *Node) Stats(context.Context) (api.QueryStats, error) {
	total, rcodes := n.dns.QueryCounts()
	rate, over := n.rate.Rate()
	return api.QueryStats{Total: total, Rate: rate, WindowSeconds: over.Seconds(), Rcodes: rcodes}, nil
}

// sampleRate feeds the query total to the rate meter every second.
func (n *Node) sampleRate(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		total, _ := n.dns.QueryCounts()
		n.rate.Sample(time.Now(), total)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SiteLoad reports the dispatcher's load in the shape a `load` check reads
// ({"load": active flows, "capacity": ...}), so that a DNS pool member can
// be a whole site whose dispatcher runs on this node.
func (n *Node) SiteLoad(context.Context) (api.SiteLoad, error) {
	if n.disp == nil {
		return api.SiteLoad{}, api.ErrNotFound
	}
	var sl api.SiteLoad
	for _, v := range n.disp.Load() {
		if !v.Forwarding {
			continue
		}
		sl.Load += float64(v.ActiveFlows)
		sl.PacketRate += v.PacketRate
		sl.Servers += v.Servers
		sl.Serving += v.Serving
		sl.VIPs++
	}
	return sl, nil
}
