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
	return []prometheus.Collector{m.duration, m.results, m.transitions, m.lateness, m.skipped}
}
