package dispatcher

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dispatcher/control"
	"github.com/ternlb/tern/probes"
)

// CheckPoolPrefix begins the pool of every key the dispatcher's prober
// gives its verdicts: the pool is CheckPoolPrefix and the check's name, the
// member the server's address. Inside a cluster these keys are the
// dispatcher's servers' in the replicated observations, apart from every
// DNS pool's (whose names cannot hold a colon).
const CheckPoolPrefix = "dispatcher:"

// serverTargets returns what the prober probes: every server of spec that
// has a check, once per check, in the order of the configuration.
func serverTargets(cfg *config.Config, spec control.Spec) ([]probes.Target, error) {
	var out []probes.Target
	seen := map[probes.Key]bool{}
	for _, s := range spec.Services {
		for _, srv := range s.Servers {
			if srv.Check == "" || srv.Check == "none" {
				continue
			}
			if _, ok := cfg.Checks[srv.Check]; !ok {
				return nil, fmt.Errorf("service %s server %s: check %q is not defined under checks", s.Key, srv.Addr, srv.Check)
			}
			k := probes.Key{Pool: CheckPoolPrefix + srv.Check, Member: srv.Addr.Unmap().String()}
			if !seen[k] {
				seen[k] = true
				out = append(out, probes.Target{Key: k, Addr: srv.Addr, Check: srv.Check})
			}
		}
	}
	return out, nil
}

// HealthPools are the dispatcher's servers as pools of the prober's keys
// (CheckPoolPrefix and a check's name): one per check, its members the
// servers the check decides, for a node that resolves their health with
// its DNS pools'. Its verdicts and a Health's agreed states are keyed by
// them.
func (in *Instance) HealthPools() map[string]config.Pool {
	if len(in.targets) == 0 {
		return nil
	}
	pools := map[string]config.Pool{}
	for _, t := range in.targets {
		p := pools[t.Key.Pool]
		p.Check = t.Check
		p.Members = append(p.Members, config.Member{Address: t.Key.Member})
		pools[t.Key.Pool] = p
	}
	return pools
}

// serverProber runs the servers' health checks with package probes and
// passes verdicts to a Control, or to a Health that decides instead.
type serverProber struct {
	p    *probes.Prober
	feed Health // nil: the verdicts decide

	mu   sync.Mutex
	ctrl *control.Control
}

// newServerProber returns the prober of targets (nil for none) whose
// verdicts go to feed, or when it is nil to the Control SetObserver names.
func newServerProber(checks map[string]config.Check, targets []probes.Target, feed Health, log *slog.Logger) (*serverProber, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	sp := &serverProber{feed: feed}
	p, err := probes.NewTargets(checks, targets, probes.Options{
		Observer: probes.ObserverFunc(sp.observe),
		Logger:   log,
	})
	if err != nil {
		return nil, err
	}
	sp.p = p
	if feed != nil {
		feed.Observe(p.Verdicts())
	}
	return sp, nil
}

// SetObserver starts passing verdicts to ctrl, beginning with the current
// ones (unless a Health decides).
func (sp *serverProber) SetObserver(ctrl *control.Control) {
	sp.mu.Lock()
	sp.ctrl = ctrl
	sp.mu.Unlock()
	sp.observe(sp.p.Verdicts())
}

func (sp *serverProber) observe(vs []probes.Verdict) {
	if sp.feed != nil {
		sp.feed.Observe(vs)
		return
	}
	sp.mu.Lock()
	ctrl := sp.ctrl
	sp.mu.Unlock()
	if ctrl == nil {
		return
	}
	for _, v := range vs {
		if a, check, ok := serverOf(v.Key); ok {
			ctrl.SetHealth(a, check, v.Up && !v.Drain)
		}
	}
}

// serverOf reads a key of the prober's: the server and its check.
func serverOf(k probes.Key) (netip.Addr, string, bool) {
	check, ok := strings.CutPrefix(k.Pool, CheckPoolPrefix)
	if !ok {
		return netip.Addr{}, "", false
	}
	a, err := netip.ParseAddr(k.Member)
	if err != nil {
		return netip.Addr{}, "", false
	}
	return a, check, true
}
