package node

import (
	"errors"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ternlb/tern/health"
)

// The node's own metrics: each member's agreed state and what each
// vantage node said of it, read from the health Resolver when scraped (so
// /metrics shows what DNS answers, never a second opinion); the build;
// and whether the last configuration taken in was good. Every per-member
// series is bounded by the configured pools and members (and, for the
// vantage view, the registered nodes); nothing a client sends grows them.

var (
	descMemberUp = prometheus.NewDesc("tern_member_up",
		"1 when a pool member is up as answers follow it (agreed by its probers in a cluster, or forced up by an admin state; a drained member keeps its health), else 0.",
		[]string{"pool", "member"}, nil)
	descMemberServing = prometheus.NewDesc("tern_member_serving",
		"1 when a pool member is given in answers now: up and not drained.",
		[]string{"pool", "member"}, nil)
	descMemberAdmin = prometheus.NewDesc("tern_member_admin",
		"A pool member's admin state in force (auto, up, down or drain): one series per member, value 1.",
		[]string{"pool", "member", "admin"}, nil)
	descVantageUp = prometheus.NewDesc("tern_member_vantage_up",
		"What one node's fresh probe verdict says of a member (1 up, 0 down), by the node that probed it; stale and missing verdicts are absent.",
		[]string{"pool", "member", "node"}, nil)
	descProbeMembers = prometheus.NewDesc("tern_probe_members",
		"Members by pool and state as answers follow them: up, down, drain, forced_up or forced_down (each member in one; in a cluster the agreed state and the replicated admin states).",
		[]string{"pool", "state"}, nil)
	descBuildInfo = prometheus.NewDesc("tern_build_info",
		"The running Tern binary: its version and the Go version it was built with (value 1).",
		[]string{"version", "goversion"}, nil)
	descReloadOK = prometheus.NewDesc("tern_config_last_reload_success",
		"1 when the last configuration this node tried to take in (a reloaded local file, a replicated version, the bootstrap proposal) was taken in, 0 when it was rejected and the previous one keeps serving.",
		nil, nil)
	descReloadAt = prometheus.NewDesc("tern_config_last_reload_success_timestamp_seconds",
		"When this node last took a configuration in (its start counts), Unix seconds.",
		nil, nil)
)

// probeStates are tern_probe_members' states, in the order exported.
var probeStates = [...]string{"up", "down", "drain", "forced_up", "forced_down"}

// probeState is the tern_probe_members state of s.
func probeState(s health.State) int {
	switch {
	case s.Forced && s.Up:
		return 3
	case s.Forced:
		return 4
	case s.Drain:
		return 2
	case s.Up:
		return 0
	}
	return 1
}

// nodeCollector exports the node's metrics (see the var block above).
type nodeCollector struct {
	n       *Node
	version string
}

var _ prometheus.Collector = nodeCollector{}

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMemberUp, descMemberServing, descMemberAdmin, descVantageUp, descProbeMembers, descBuildInfo, descReloadOK, descReloadAt} {
		ch <- d
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	// A copy of the states under the lock (States are never modified once
	// returned); the metrics are made outside it.
	n.mu.Lock()
	h := n.hv
	var states []health.State
	if h.g != nil {
		states = make([]health.State, 0, len(h.members))
		for _, p := range h.g.base.Pools.All() {
			states = append(states, h.r.Pool(p.Name)...)
		}
	}
	ok, at := n.reloadOK, n.reloadAt
	n.mu.Unlock()

	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	var counts [len(probeStates)]int
	for i, s := range states {
		if s.Key == (health.Key{}) {
			continue // not resolved yet
		}
		gauge(descMemberUp, health.HealthValue(s.Up), s.Pool, s.Member)
		gauge(descMemberServing, float64(served(s)), s.Pool, s.Member)
		gauge(descMemberAdmin, 1, s.Pool, s.Member, s.Admin.String())
		for _, v := range s.Vantages {
			if v.Kind == health.KindHealth && v.Observed && !v.Stale {
				gauge(descVantageUp, health.HealthValue(v.Up()), s.Pool, s.Member, string(v.Node))
			}
		}
		counts[probeState(s)]++
		if i+1 == len(states) || states[i+1].Pool != s.Pool {
			for j, name := range probeStates {
				if counts[j] > 0 {
					gauge(descProbeMembers, float64(counts[j]), s.Pool, name)
				}
			}
			counts = [len(probeStates)]int{}
		}
	}
	gauge(descBuildInfo, 1, c.version, runtime.Version())
	gauge(descReloadOK, health.HealthValue(ok))
	gauge(descReloadAt, float64(at.UnixNano())/1e9)
}

// buildVersion is the version tern_build_info names: the one the binary
// was linked with (Options.Version), else the main module's.
func buildVersion(v string) string {
	if v != "" {
		return v
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

// registerMetrics registers the node's collectors: the prober's, the DNS
// server's, the Raft store's and the dispatcher's, the node's own, and
// the Go runtime and process collectors (unless the registry has them
// already: a caller's registry shared with other parts).
func (n *Node) registerMetrics(cs []prometheus.Collector, version string) error {
	cs = append(cs, nodeCollector{n: n, version: buildVersion(version)})
	for _, c := range cs {
		if err := n.reg.Register(c); err != nil {
			return err
		}
	}
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := n.reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return err
		}
	}
	return nil
}

// noteConfigLocked records the outcome of taking a configuration in: msg
// empty for one taken in, else why it was rejected (Status.LastConfigError
// and tern_config_last_reload_success).
func (n *Node) noteConfigLocked(msg string) {
	n.configErr = msg
	n.reloadOK = msg == ""
	if n.reloadOK {
		n.reloadAt = time.Now()
	}
}
