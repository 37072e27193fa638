package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ternlb/tern/health"
)

// latencyCollector exports every member's fresh smoothed RTT by vantage
// node, as the Resolver last resolved them: tern_member_rtt_seconds.
type latencyCollector struct{ n *Node }

var rttDesc = prometheus.NewDesc("tern_member_rtt_seconds",
	"Smoothed round-trip time of a pool member's probes from a node (tcp connect, http time to first byte, dns query).",
	[]string{"pool", "member", "node"}, nil)

func (c latencyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- rttDesc }

func (c latencyCollector) Collect(ch chan<- prometheus.Metric) {
	c.n.mu.Lock()
	var states []health.State
	if c.n.hv != nil && c.n.hv.r != nil {
		states = c.n.hv.r.States()
	}
	c.n.mu.Unlock()
	for _, s := range states {
		for _, o := range s.Latency {
			ch <- prometheus.MustNewConstMetric(rttDesc, prometheus.GaugeValue, o.Value, s.Pool, s.Member, string(o.Node))
		}
	}
}
