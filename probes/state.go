package probes

import (
	"fmt"
	"math"
	"time"
)

// Admin is the operator's state of a member.
type Admin uint8

const (
	AdminAuto  Admin = iota // probes decide
	AdminUp                 // forced up, whatever probes say
	AdminDown               // forced down, whatever probes say
	AdminDrain              // keeps its health but gets no new answers
)

var adminNames = [...]string{AdminAuto: "auto", AdminUp: "up", AdminDown: "down", AdminDrain: "drain"}

func (a Admin) String() string {
	if int(a) < len(adminNames) {
		return adminNames[a]
	}
	return fmt.Sprintf("Admin(%d)", uint8(a))
}

// ParseAdmin parses auto, up, down or drain.
func ParseAdmin(s string) (Admin, error) {
	for i, n := range adminNames {
		if s == n {
			return Admin(i), nil
		}
	}
	return 0, fmt.Errorf("admin state %q: %w", s, ErrAdmin)
}

// Key names one probed member: its pool and its address as the
// configuration writes it.
type Key struct {
	Pool   string
	Member string
}

func (k Key) String() string { return k.Pool + "/" + k.Member }

// Verdict is what this node holds of one member: its probe state after
// hysteresis, the operator's admin state, and its smoothed load.
type Verdict struct {
	Key Key
	// Up is the state answers follow: forced by Admin up or down, else the
	// probes' verdict, else (before the first result) the pool's initial
	// state.
	Up bool
	// Drain is set by Admin drain: the member keeps Up as probed but gets
	// no new answers.
	Drain bool
	// Forced is true when Admin up or down decided Up.
	Forced bool
	Admin  Admin
	// ProbeUp is the probes' own verdict (the initial state until
	// Probed), kept while forced so an operator sees both.
	ProbeUp bool
	// Probed is false until the first result; no check means never.
	Probed bool
	// Unprobed, when set, says why this prober does not probe the member
	// although its pool has a check (ErrExecNotAllowed's text); the
	// member keeps its initial state here.
	Unprobed string
	// Load is the smoothed load as last passed on (see Check
	// load_threshold); HasLoad is false until a first report.
	Load     float64
	HasLoad  bool
	Capacity float64 // reported capacity, 0 when the report has none
	// Latency is the smoothed round-trip time of the successful probes
	// (see Check rtt_half_life) as last passed on: it moves only by more
	// than rtt_hysteresis of itself, and by a millisecond at least.
	// HasLatency is false until a first measured success.
	Latency    time.Duration
	HasLatency bool
	// RTT and Err are the latest result's duration and failure ("" when
	// the latest probe succeeded); Checked is when it started.
	RTT     time.Duration
	Err     string
	Checked time.Time
	// Since is when Up, Drain or Forced last changed.
	Since time.Time
}

// State describes v for an operator: "up" or "down", "forced up" or
// "forced down" (with what the probes say), "drain" with the probed state,
// and "initial" before the first result.
func (v Verdict) State() string {
	probe := "down"
	if v.ProbeUp {
		probe = "up"
	}
	if !v.Probed {
		probe += ", initial"
	}
	switch {
	case v.Forced && v.Up:
		return "forced up (probes: " + probe + ")"
	case v.Forced:
		return "forced down (probes: " + probe + ")"
	case v.Drain:
		return "drain (probes: " + probe + ")"
	}
	return probe
}

// state is one member's hysteresis and load smoothing. Guarded by
// Prober.mu.
type state struct {
	initialUp bool
	unprobed  string // see Verdict.Unprobed; fixed at New
	admin     Admin
	probed    bool
	probeUp   bool
	okRun     int // consecutive successes
	failRun   int // consecutive failures

	smoothed float64 // EWMA of load reports
	loadSeen bool
	capacity float64

	rttEWMA float64 // seconds, EWMA of the measured round trips
	rttSeen bool
	rttAt   time.Time // when the last sample was taken

	rtt     time.Duration
	err     string
	checked time.Time
	since   time.Time

	sent Verdict // last verdict passed to the observer
}

// result feeds one probe outcome through rise/fall hysteresis. The first
// result of a member decides its state directly: that is what the first
// round before serving is for. It reports whether the probe state changed.
func (s *state) result(ok bool, rise, fall int) bool {
	if ok {
		s.okRun, s.failRun = s.okRun+1, 0
	} else {
		s.failRun, s.okRun = s.failRun+1, 0
	}
	if !s.probed {
		s.probed = true
		s.probeUp = ok
		return ok != s.initialUp
	}
	was := s.probeUp
	switch {
	case ok && !s.probeUp && s.okRun >= rise:
		s.probeUp = true
	case !ok && s.probeUp && s.failRun >= fall:
		s.probeUp = false
	}
	return s.probeUp != was
}

// report smooths one load report into the state. alpha is the weight of a
// new report.
func (s *state) report(load, capacity, alpha float64) {
	if !s.loadSeen {
		s.smoothed, s.loadSeen = load, true
	} else {
		s.smoothed = alpha*load + (1-alpha)*s.smoothed
	}
	s.capacity = capacity
}

// sample smooths one measured round trip, taken at at, into the state:
// an exponentially weighted moving average whose weight halves every
// halfLife of time between samples (so the smoothing does not depend on
// the check interval, nor on samples a failed probe skipped).
func (s *state) sample(rtt time.Duration, at time.Time, halfLife time.Duration) {
	v := rtt.Seconds()
	if !s.rttSeen || halfLife <= 0 {
		s.rttEWMA, s.rttSeen, s.rttAt = v, true, at
		return
	}
	dt := at.Sub(s.rttAt)
	if dt < 0 {
		dt = 0
	}
	alpha := 1 - math.Exp2(-dt.Seconds()/halfLife.Seconds())
	s.rttEWMA += alpha * (v - s.rttEWMA)
	s.rttAt = at
}

// minLatencyMove is the least a smoothed RTT must move to be passed on,
// whatever the hysteresis fraction: loopback and LAN RTTs jitter by tens
// of microseconds, which must not rebuild answers.
const minLatencyMove = time.Millisecond

// latencyMoved reports whether the smoothed RTT moved enough from the one
// last sent to be passed on.
func (s *state) latencyMoved(frac float64) bool {
	if !s.rttSeen {
		return false
	}
	if !s.sent.HasLatency {
		return true
	}
	now := time.Duration(s.rttEWMA * float64(time.Second))
	d := now - s.sent.Latency
	if d < 0 {
		d = -d
	}
	return d >= minLatencyMove && float64(d) > frac*float64(s.sent.Latency)
}

// verdict returns the member's verdict with load as last sent, except that
// the smoothed load replaces it when it moved by more than threshold since.
func (s *state) verdict(key Key, threshold, rttFrac float64) Verdict {
	v := Verdict{Key: key, Admin: s.admin, Probed: s.probed, ProbeUp: s.initialUp, Unprobed: s.unprobed,
		RTT: s.rtt, Err: s.err, Checked: s.checked, Since: s.since,
		Load: s.sent.Load, HasLoad: s.sent.HasLoad, Capacity: s.capacity,
		Latency: s.sent.Latency, HasLatency: s.sent.HasLatency}
	if s.latencyMoved(rttFrac) {
		v.Latency, v.HasLatency = time.Duration(s.rttEWMA*float64(time.Second)), true
	}
	if s.probed {
		v.ProbeUp = s.probeUp
	}
	switch s.admin {
	case AdminUp:
		v.Up, v.Forced = true, true
	case AdminDown:
		v.Up, v.Forced = false, true
	case AdminDrain:
		v.Up, v.Drain = v.ProbeUp, true
	default:
		v.Up = v.ProbeUp
	}
	if s.loadSeen && (!s.sent.HasLoad || math.Abs(s.smoothed-s.sent.Load) > threshold) {
		v.Load, v.HasLoad = s.smoothed, true
	}
	return v
}

// current returns the verdict last sent with the latest result's details.
func (s *state) current() Verdict {
	v := s.sent
	v.RTT, v.Err, v.Checked = s.rtt, s.err, s.checked
	return v
}

// differs reports whether v says something an observer must hear of
// compared with the last verdict sent: anything but RTT, Err and times.
func differs(v, sent Verdict) bool {
	return v.Up != sent.Up || v.Drain != sent.Drain || v.Forced != sent.Forced ||
		v.Admin != sent.Admin || v.ProbeUp != sent.ProbeUp || v.Probed != sent.Probed ||
		v.Load != sent.Load || v.HasLoad != sent.HasLoad || v.Capacity != sent.Capacity ||
		v.Latency != sent.Latency || v.HasLatency != sent.HasLatency
}
