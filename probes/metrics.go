package probes

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the prober's Prometheus collectors, registered by whoever
// serves /metrics (see Prober.Collectors). Probers that inherit from one
// another share them (see Inherit); the gauges read current, the newest.
type metrics struct {
	current atomic.Pointer[Prober]

	duration    *prometheus.HistogramVec // check, type
	results     *prometheus.CounterVec   // type, result
	transitions *prometheus.CounterVec   // pool, to
	lateness    prometheus.Histogram
	skipped     prometheus.Counter
	notAllowed  *prometheus.Desc // pool, check: members not probed here (Verdict.Unprobed)
}

func newMetrics() *metrics {
	return &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tern_probe_duration_seconds",
			Help:    "How long probes took, by check name and type.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"check", "type"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tern_probe_results_total",
			Help: "Probe results by check type: up, down (answered, but not as expected) or error (no answer, timeout).",
		}, []string{"type", "result"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tern_probe_transitions_total",
			Help: "Changes of a member's probe verdict after rise/fall, by pool and new state.",
		}, []string{"pool", "to"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tern_probe_lateness_seconds",
			Help:    "How long after its scheduled time a probe started.",
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		notAllowed: prometheus.NewDesc("tern_probe_not_allowed",
			"Members this node does not probe although their pool has a check, by pool and check: exec checks without node.allow_exec_checks.",
			[]string{"pool", "check"}, nil),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tern_probe_skipped_total",
			Help: "Probes not started because the member's previous probe was still running or the prober fell a whole interval behind.",
		}),
	}
}

// Collectors returns the prober's metrics for a registry:
//
//	reg.MustRegister(p.Collectors()...)
func (p *Prober) Collectors() []prometheus.Collector {
	m := p.metrics
	return []prometheus.Collector{m.duration, m.results, m.transitions, m.lateness, m.skipped, unprobedCollector{m}}
}

// unprobedCollector counts the members not probed here from the newest
// prober's table when scraped. (Members by state are the node's
// tern_probe_members: only health resolution knows the agreed state and
// the replicated admin states.)
type unprobedCollector struct{ m *metrics }

func (c unprobedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.m.notAllowed
}

func (c unprobedCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.m.current.Load()
	type unprobed struct{ pool, check string }
	skipped := map[unprobed]int{}
	var skippedOrder []unprobed
	for _, t := range p.targets {
		if t.st.unprobed != "" { // fixed at New: no lock needed
			k := unprobed{t.key.Pool, t.check.name}
			if skipped[k] == 0 {
				skippedOrder = append(skippedOrder, k)
			}
			skipped[k]++
		}
	}
	for _, k := range skippedOrder {
		ch <- prometheus.MustNewConstMetric(c.m.notAllowed, prometheus.GaugeValue, float64(skipped[k]), k.pool, k.check)
	}
}
