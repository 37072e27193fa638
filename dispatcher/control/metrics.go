package control

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descVIPPackets  = prometheus.NewDesc("tern_dispatcher_packets_total", "Packets the XDP program forwarded to a VIP's servers, since its services were set.", []string{"vip"}, nil)
	descVIPBytes    = prometheus.NewDesc("tern_dispatcher_bytes_total", "Bytes the XDP program forwarded to a VIP's servers, since its services were set.", []string{"vip"}, nil)
	descVIPNewFlows = prometheus.NewDesc("tern_dispatcher_new_flows_total", "TCP flows opened through a VIP (the client's SYNs).", []string{"vip"}, nil)
	descVIPActive   = prometheus.NewDesc("tern_dispatcher_active_flows", "Estimated TCP flows open through a VIP (see the package documentation, Active flows).", []string{"vip"}, nil)
	descVIPServers  = prometheus.NewDesc("tern_dispatcher_servers", "Servers a VIP's services list, by whether they take new flows.", []string{"vip", "state"}, nil)
	descVIPForward  = prometheus.NewDesc("tern_dispatcher_forwarding", "1 when this dispatcher forwards the VIP now (it holds it), else 0.", []string{"vip"}, nil)
)

// loadCollector exposes per-VIP load to Prometheus, read at scrape time
// from the same figures as Control.Load.
type loadCollector struct{ load func() []VIPLoad }

// Collector returns the per-VIP metrics of what load returns (a
// Control's Load, or nil before there is one) for a registry.
func Collector(load func() []VIPLoad) prometheus.Collector { return loadCollector{load} }

func (c loadCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descVIPPackets, descVIPBytes, descVIPNewFlows, descVIPActive, descVIPServers, descVIPForward} {
		ch <- d
	}
}

func (c loadCollector) Collect(ch chan<- prometheus.Metric) {
	for _, v := range c.load() {
		vip := v.VIP.String()
		ch <- prometheus.MustNewConstMetric(descVIPPackets, prometheus.CounterValue, float64(v.Packets), vip)
		ch <- prometheus.MustNewConstMetric(descVIPBytes, prometheus.CounterValue, float64(v.Bytes), vip)
		ch <- prometheus.MustNewConstMetric(descVIPNewFlows, prometheus.CounterValue, float64(v.NewFlows), vip)
		ch <- prometheus.MustNewConstMetric(descVIPActive, prometheus.GaugeValue, float64(v.ActiveFlows), vip)
		ch <- prometheus.MustNewConstMetric(descVIPServers, prometheus.GaugeValue, float64(v.Serving), vip, "serving")
		ch <- prometheus.MustNewConstMetric(descVIPServers, prometheus.GaugeValue, float64(v.Servers-v.Serving), vip, "not_serving")
		fwd := 0.0
		if v.Forwarding {
			fwd = 1
		}
		ch <- prometheus.MustNewConstMetric(descVIPForward, prometheus.GaugeValue, fwd, vip)
	}
}
