package dispatcher

import (
	"context"

	"github.com/ternlb/tern/dispatcher/control"
	"github.com/ternlb/tern/probes"
)

// Health decides a dispatcher's servers' health from outside its own
// probes: inside a cluster node, the health the cluster agreed on, so that
// both dispatchers of a pair, reading the same replicated state, build the
// same Maglev tables even when one's own probe of a server disagrees (its
// link to it is down, say). The dispatcher still probes its servers and
// hands its verdicts to Observe: they are its word in that agreement.
// Keys are the prober's (see Instance.HealthPools): pool CheckPoolPrefix
// and the check's name, member the server's address.
type Health interface {
	// Observe takes the dispatcher's own verdicts: every server's when
	// its prober is made, then each change. It must not block for long.
	Observe(own []probes.Verdict)
	// Agreed returns the servers' health as decided (true: up; a server
	// missing is left as it is, up until told otherwise) and a channel
	// closed when it next changes.
	Agreed() (map[probes.Key]bool, <-chan struct{})
}

// FollowHealth sets the servers' health in c from h's decisions, as they
// change, until ctx ends.
func FollowHealth(ctx context.Context, c *control.Control, h Health) error {
	for {
		agreed, changed := h.Agreed()
		for k, up := range agreed {
			if a, check, ok := serverOf(k); ok {
				c.SetHealth(a, check, up)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}
