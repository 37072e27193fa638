package health

import (
	"cmp"
	"math"
	"time"
)

// Supersedes reports whether o replaces held (ok: one is held) for the
// same node, kind and member: when none is held, when o is newer, and at
// the same time when its value is greater. An older or identical
// observation changes nothing, so reports arriving out of order never move
// a member back, and the tie at equal times is broken the same way
// whatever order the two arrive in (raftstore kept the later one, which
// made the result depend on arrival order).
func Supersedes(held Observation, ok bool, o Observation) bool {
	if !ok {
		return true
	}
	switch {
	case o.At.After(held.At):
		return true
	case o.At.Before(held.At):
		return false
	}
	return cmp.Compare(o.Value, held.Value) > 0
}

// ObsKey names one held observation: of a kind, of a member, by a node.
type ObsKey struct {
	Kind Kind
	Key  Key
	Node NodeID
}

// Report is one of this node's observations of a member, to propose.
type Report struct {
	Key   Key
	Kind  Kind
	Value float64
	At    time.Time
}

// Merge takes node's reports into held, which it changes in place, by
// Supersedes. It returns the members whose held observations changed,
// each once, in the order of their first change: the keys a Resolver
// re-resolves.
func Merge(held map[ObsKey]Observation, node NodeID, rs []Report) []Key {
	var changed []Key
	for _, r := range rs {
		k := ObsKey{Kind: r.Kind, Key: r.Key, Node: node}
		o := Observation{Node: node, Kind: r.Kind, Value: r.Value, At: r.At}
		old, ok := held[k]
		if !Supersedes(old, ok, o) {
			continue
		}
		held[k] = o
		if !containsKey(changed, r.Key) {
			changed = append(changed, r.Key)
		}
	}
	return changed
}

func containsKey(ks []Key, k Key) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// OwnReports appends to dst what this node reports of member m from its
// own observation: its health once probed, for a load check its load
// once reported, and its smoothed RTT once measured, both at the time of the probe that made them (now before
// any), in UTC. The caller reports only on members assigned to it (see
// Assigned).
func OwnReports(dst []Report, m Member, own Own, now time.Time) []Report {
	at := own.At
	if at.IsZero() {
		at = now
	}
	at = at.UTC()
	if own.Probed {
		dst = append(dst, Report{Key: m.Key, Kind: KindHealth, Value: HealthValue(own.Up), At: at})
	}
	if own.HasLoad && m.loadCheck() {
		dst = append(dst, Report{Key: m.Key, Kind: KindLoad, Value: own.Load, At: at})
	}
	if own.HasLatency && own.Probed {
		dst = append(dst, Report{Key: m.Key, Kind: KindLatency, Value: own.Latency, At: at})
	}
	return dst
}

// PendingOptions tune Pending.
type PendingOptions struct {
	Now time.Time
	// Refresh is how old a held observation may grow before an unchanged
	// report is proposed again (so that a dead prober's word ages out
	// while a live one's does not).
	Refresh time.Duration
	// Hysteresis is, per numeric kind, the fraction of the held value by
	// which a report must differ to be a change: a smaller move is
	// proposed only as a refresh. Absent or 0: any difference is a change.
	Hysteresis map[Kind]float64
}

// Pending returns the reports of mine that this node must propose: those
// of which held (the replicated state's observation of this node, kind
// and member) has none, those that differ from it, and those whose held
// one is at least Refresh old when the report is newer. After the
// returned reports are merged, Pending returns nothing until something
// changes or Refresh passes.
func Pending(mine []Report, held func(k Key, kind Kind) (Observation, bool), o PendingOptions) []Report {
	var out []Report
	for _, r := range mine {
		h, ok := held(r.Key, r.Kind)
		switch {
		case !ok, !same(r.Value, h.Value, o.Hysteresis[r.Kind]):
		case o.Now.Sub(h.At) >= o.Refresh && r.At.After(h.At):
		default:
			continue
		}
		out = append(out, r)
	}
	return out
}

// same reports whether v is no change from held: equal, or within frac of
// it.
func same(v, held, frac float64) bool {
	if v == held {
		return true
	}
	return frac > 0 && math.Abs(v-held) <= frac*math.Abs(held)
}
