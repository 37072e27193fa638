package control

import (
	"time"

	"github.com/ternlb/tern/dispatcher/datapath"
)

// DefaultFlowLifetime is how long a TCP flow is assumed to live at most
// when its close was never seen (see flowEstimate): 15 minutes, the idle
// timeout of an established connection in Linux IPVS and the stale timeout
// of IBM's Network Dispatcher.
const DefaultFlowLifetime = 15 * time.Minute

// flowEstimate estimates a TCP service's active flows from the datapath's
// counters of the client's SYN, FIN and RST segments. With direct server
// return the dispatcher sees only the client's direction and keeps no
// per-flow state, so the count is an estimate:
//
//	active += new SYNs − (FINs + RSTs with ACK)   at each sample,
//	active  = clamp(active, 0, bound)
//	bound   = SYNs seen in the last lifetime
//
// Integrating deltas with a clamp, rather than taking opened − closed over
// all time, keeps an error from living forever: surplus closes (a
// retransmitted FIN, a FIN then an abort) are forgotten once the estimate
// reaches 0, and flows whose close the dispatcher never sees (the server
// reset them, the client vanished, the flow moved to another dispatcher)
// age out of the bound after lifetime. RSTs without ACK are left out: a
// client's stack sends one in answer to a segment of a flow it no longer
// has (data the server sent after the client's FIN or abort), so they
// mostly repeat a close already counted.
type flowEstimate struct {
	active uint64
	opened uint64 // SYNs since the first sample, summed over resets
	// carry is what the first sample found active (opened − closed of
	// counters that predate this process: a restart over pinned maps);
	// treated as flows opened at since.
	carry uint64
	since time.Time
	marks []flowMark // opened at each sample, oldest first
	last  datapath.TCPCounter
}

// markSteps is how many marks span a lifetime.
const markSteps = 64

type flowMark struct {
	at     time.Time
	opened uint64
}

// closes is the count of closing segments the estimate subtracts.
func closes(c datapath.TCPCounter) uint64 { return c.Fin + c.Reset }

// update folds a reading of the counters taken at now into the estimate
// and returns the SYNs since the previous reading.
func (e *flowEstimate) update(now time.Time, c datapath.TCPCounter, lifetime time.Duration) (newFlows uint64) {
	if e.since.IsZero() {
		e.since, e.last = now, c
		if cl := closes(c); c.Opened > cl {
			e.carry = c.Opened - cl
		}
		e.active = e.carry
		e.marks = append(e.marks[:0], flowMark{now, 0})
		return 0
	}
	d := c
	if c.Opened >= e.last.Opened && c.Fin >= e.last.Fin && c.Reset >= e.last.Reset && c.StrayReset >= e.last.StrayReset {
		d = datapath.TCPCounter{Opened: c.Opened - e.last.Opened, Fin: c.Fin - e.last.Fin, Reset: c.Reset - e.last.Reset, StrayReset: c.StrayReset - e.last.StrayReset}
	} // else the counters restarted from 0 (service re-created): all of c is new
	e.last = c
	e.opened += d.Opened

	// Keep the newest mark at or before now − lifetime as the base, so the
	// bound covers the whole lifetime (and up to one mark step more).
	// Marks are at least lifetime/markSteps apart: memory stays bounded
	// whatever the sample interval.
	cutoff := now.Add(-lifetime)
	if last := e.marks[len(e.marks)-1]; now.Sub(last.at) >= lifetime/markSteps {
		e.marks = append(e.marks, flowMark{now, e.opened})
	}
	drop := 0
	for drop+1 < len(e.marks) && !e.marks[drop+1].at.After(cutoff) {
		drop++
	}
	e.marks = e.marks[drop:]
	bound := e.opened - e.marks[0].opened
	if e.since.After(cutoff) {
		bound += e.carry
	}

	active := int64(e.active) + int64(d.Opened) - int64(closes(d))
	active = max(active, 0)
	e.active = min(uint64(active), bound)
	return d.Opened
}
