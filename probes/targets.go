package probes

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/ternlb/tern/config"
)

// Target is one address probed outside any pool of a configuration: the
// dispatcher's servers, say. Its verdicts are keyed by Key.
type Target struct {
	// Key names the target's verdicts; Key.Member is its address in
	// canonical form. Keys are unique within one Prober.
	Key Key
	// Addr is where the probe connects.
	Addr netip.Addr
	// Check names the check (in the checks given to NewTargets) that
	// decides the target's health.
	Check string
}

// NewTargets builds a Prober of targets, each probed by its check in
// checks. Its verdicts, Verdict and Pool read Key.Pool as the pool; a
// target is up until its check says otherwise. Nothing runs until Run.
func NewTargets(checks map[string]config.Check, targets []Target, opts Options) (*Prober, error) {
	p, checkers, err := newProber(checks, opts)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, tg := range targets {
		ch := checkers[tg.Check]
		switch {
		case ch == nil:
			return nil, fmt.Errorf("target %s: check %q is not defined under checks", tg.Key, tg.Check)
		case !tg.Addr.IsValid():
			return nil, fmt.Errorf("target %s: no address", tg.Key)
		case tg.Key.Member != tg.Addr.Unmap().String():
			return nil, fmt.Errorf("target %s: member %q: want the address %s in canonical form", tg.Key, tg.Key.Member, tg.Addr.Unmap())
		}
		members := p.pools[tg.Key.Pool]
		if members == nil {
			members = map[string]*target{}
			p.pools[tg.Key.Pool] = members
		}
		if members[tg.Key.Member] != nil {
			return nil, fmt.Errorf("target %s twice", tg.Key)
		}
		t, err := newTarget(tg.Key.Pool, "", config.Member{Address: tg.Key.Member}, ch)
		if err != nil {
			return nil, err
		}
		p.add(t, now)
		members[tg.Key.Member] = t
	}
	p.finish()
	return p, nil
}
