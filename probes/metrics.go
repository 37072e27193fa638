package probes

import "github.com/prometheus/client_golang/prometheus"

// metrics are the prober's Prometheus collectors, registered by whoever
// serves /metrics (see Prober.Collectors).
type metrics struct {
	duration    *prometheus.HistogramVec // check, type
	results     *prometheus.CounterVec   // type, result
	transitions *prometheus.CounterVec   // pool, to
	lateness    prometheus.Histogram
	skipped     prometheus.Counter
	members     *prometheus.Desc // pool, state: counted from the table when scraped
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
		members: prometheus.NewDesc("tern_probe_members",
			"Members by pool and state: up, down, drain, forced_up or forced_down (each member in one).",
			[]string{"pool", "state"}, nil),
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
	return []prometheus.Collector{m.duration, m.results, m.transitions, m.lateness, m.skipped, membersCollector{p}}
}

// membersCollector counts members by state from the verdict table when
// scraped.
type membersCollector struct{ p *Prober }

func (c membersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.p.metrics.members }

func (c membersCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct{ pool, state string }
	counts := map[key]int{}
	var order []key
	for _, v := range c.p.Verdicts() {
		st := "down"
		switch {
		case v.Forced && v.Up:
			st = "forced_up"
		case v.Forced:
			st = "forced_down"
		case v.Drain:
			st = "drain"
		case v.Up:
			st = "up"
		}
		k := key{v.Key.Pool, st}
		if _, ok := counts[k]; !ok {
			order = append(order, k)
		}
		counts[k]++
	}
	for _, k := range order {
		ch <- prometheus.MustNewConstMetric(c.p.metrics.members, prometheus.GaugeValue, float64(counts[k]), k.pool, k.state)
	}
}
