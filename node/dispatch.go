package node

import (
	"github.com/ternlb/tern/dispatcher"
	"github.com/ternlb/tern/health"
	"github.com/ternlb/tern/probes"
)

// dispatcherHealth is the node's side of dispatcher.Health: a cluster
// node's dispatcher hands it its own verdicts of its servers, which the
// node reports like any member's (every node that runs the dispatcher
// probes them: health.Member.Reporters) and resolves with the others', and
// the dispatcher forwards by the agreed states.
type dispatcherHealth struct{ n *Node }

var _ dispatcher.Health = dispatcherHealth{}

func (d dispatcherHealth) Observe(own []probes.Verdict) {
	n := d.n
	keys := make([]health.Key, len(own))
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, v := range own {
		keys[i] = health.Key{Pool: v.Key.Pool, Member: v.Key.Member}
		n.hv.src.disp[keys[i]] = ownOf(v)
	}
	n.resolveLocked(keys)
	n.reportLocked(keys)
}

func (d dispatcherHealth) Agreed() (map[probes.Key]bool, <-chan struct{}) {
	n := d.n
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[probes.Key]bool{}
	for name := range n.hv.disp {
		for _, s := range n.hv.r.Pool(name) {
			out[probes.Key{Pool: s.Pool, Member: s.Member}] = s.Up && !s.Drain
		}
	}
	return out, n.hv.dispChanged
}
