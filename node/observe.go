package node

import (
	"context"
	"sync"
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

// probeLog turns this node's probe verdicts into events: one per flip of
// a member's probe verdict, never one for a verdict that only refreshed,
// changed its load or error text, or that a new configuration's prober
// reported again for a member it kept. Its state outlives configurations;
// it is guarded by its own lock (the prober's observer calls it).
type probeLog struct {
	mu sync.Mutex
	up map[probes.Key]bool // the last verdict recorded per member
}

func newProbeLog() *probeLog { return &probeLog{up: map[probes.Key]bool{}} }

// flips returns, of changed, the verdicts that flipped a member's probe
// verdict since the last one recorded, and records them. A member's first
// verdict records nothing: it did not change from anything (the served
// state's events say when it took a member out of the pool's initial
// state).
func (l *probeLog) flips(changed []probes.Verdict) []probes.Verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []probes.Verdict
	for _, v := range changed {
		if !v.Probed {
			continue
		}
		was, seen := l.up[v.Key]
		l.up[v.Key] = v.ProbeUp
		if seen && was != v.ProbeUp {
			out = append(out, v)
		}
	}
	return out
}

// keep forgets the members keep does not hold (a configuration without
// them), so that the log stays bounded by the members configured.
func (l *probeLog) keep(keep func(probes.Key) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.up {
		if !keep(k) {
			delete(l.up, k)
		}
	}
}

// recordProbes adds an event for each of this node's own probe verdicts
// that flipped.
func (n *Node) recordProbes(name string, changed []probes.Verdict) {
	now := time.Now()
	for _, v := range n.probeLog.flips(changed) {
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

// Stats returns the DNS query counters and rate, and the history the
// status page plots (api.Stats).
func (n *Node) Stats(context.Context) (api.QueryStats, error) {
	total, rcodes := n.dns.QueryCounts()
	rate, over := n.rate.Rate()
	return api.QueryStats{Total: total, Rate: rate, WindowSeconds: over.Seconds(), Rcodes: rcodes, History: n.hist.snapshot()}, nil
}

// sampleRate feeds the query total to the rate meter and the history every
// second, and this node's probe latencies to the history when a step is
// due.
func (n *Node) sampleRate(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		total, _ := n.dns.QueryCounts()
		now := time.Now()
		n.rate.Sample(now, total)
		n.hist.sampleQPS(now, total)
		if n.hist.latencyDue(now) {
			n.mu.Lock()
			g := n.gen
			n.mu.Unlock()
			n.hist.sampleLatency(now, g.prober.Verdicts())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// The history kept for the status page's plots: an hour of the query rate
// in 10 s steps, an hour of each member's probe latency in 1 min steps, for
// at most historyMembers members (the first in configuration order). At
// most 360 + 1,000 x 60 numbers.
const (
	qpsStep        = 10 * time.Second
	qpsKept        = 360
	latencyStep    = time.Minute
	latencyKept    = 60
	historyMembers = 1000
)

// statsHistory is the node's bounded history of the query rate and of its
// own probes' latency. Safe for concurrent use.
type statsHistory struct {
	qpsStep, latStep time.Duration
	latKept, members int

	mu       sync.Mutex
	qps      *api.Series
	qpsAt    time.Time // the last step's end (zero: no sample yet)
	qpsTotal uint64
	lat      map[probes.Key]*api.Series
	latOrder []probes.Key // configuration order
	latAt    time.Time
	latN     int // steps sampled: every series is padded to it
}

func newStatsHistory() *statsHistory {
	return &statsHistory{qpsStep: qpsStep, latStep: latencyStep, latKept: latencyKept, members: historyMembers,
		qps: api.NewSeries(qpsKept), lat: map[probes.Key]*api.Series{}}
}

// sampleQPS takes in the query total at now; each time a step has passed
// since the last point, the rate over it becomes the next point.
func (h *statsHistory) sampleQPS(now time.Time, total uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.qpsAt.IsZero() || total < h.qpsTotal || now.Before(h.qpsAt) {
		h.qpsAt, h.qpsTotal = now, total // the first sample, or a reset: a fresh start
		return
	}
	if d := now.Sub(h.qpsAt); d >= h.qpsStep {
		h.qps.Add(float64(total-h.qpsTotal) / d.Seconds())
		h.qpsAt, h.qpsTotal = now, total
	}
}

// latencyDue reports whether a latency step is due at now.
func (h *statsHistory) latencyDue(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.latAt.IsZero() || now.Sub(h.latAt) >= h.latStep
}

// sampleLatency adds a point to each probed member's series: its latest
// probe's round-trip time when that probe started within the last step,
// else -1. Members no longer probed are dropped; a new one's series is
// padded with -1 so that every series ends at the same step.
func (h *statsHistory) sampleLatency(now time.Time, vs []probes.Verdict) {
	h.mu.Lock()
	defer h.mu.Unlock()
	keep := make(map[probes.Key]*api.Series, len(h.lat))
	order := h.latOrder[:0]
	for _, v := range vs {
		if len(order) == h.members {
			break
		}
		if !v.Probed && v.Checked.IsZero() {
			continue // not probed here (no check, not assigned, not allowed)
		}
		s := h.lat[v.Key]
		if s == nil {
			s = api.NewSeries(h.latKept)
			for range min(h.latN, h.latKept) {
				s.Add(-1)
			}
		}
		ms := -1.0
		if !v.Checked.IsZero() && v.Checked.After(now.Add(-h.latStep)) {
			ms = float64(v.RTT) / float64(time.Millisecond)
		}
		s.Add(ms)
		keep[v.Key] = s
		order = append(order, v.Key)
	}
	h.lat, h.latOrder = keep, order
	h.latAt = now
	h.latN++
}

// snapshot is the history as the API shows it.
func (h *statsHistory) snapshot() *api.StatsHistory {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := &api.StatsHistory{QPSStep: h.qpsStep.Seconds(), QPS: h.qps.Values(), LatencyStep: h.latStep.Seconds()}
	if h.qps.Len() > 0 {
		out.QPSEnd = h.qpsAt.UTC()
	}
	if h.latN > 0 {
		out.LatencyEnd = h.latAt.UTC()
	}
	for _, k := range h.latOrder {
		out.Latency = append(out.Latency, api.MemberLatency{Pool: k.Pool, Member: k.Member, Millis: h.lat[k].Values()})
	}
	return out
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
