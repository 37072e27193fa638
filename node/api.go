package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/probes"
)

// The node serves these parts of the API; cluster and configuration
// versions come with the Raft store.
var (
	_ api.StatusSource = (*Node)(nil)
	_ api.Pools        = apiPools{}
	_ api.Explainer    = (*Node)(nil)
)

// Status reports this node's state.
func (n *Node) Status(context.Context) (api.Status, error) {
	n.mu.Lock()
	g := n.gen
	n.mu.Unlock()
	s := api.Status{Node: g.cfg.Node.Name, ConfigHash: g.base.Version, InQuorum: true}
	select {
	case <-n.dns.Ready():
		s.Serving = true
	default:
	}
	for _, v := range g.prober.Verdicts() {
		s.MembersTotal++
		if v.Up && !v.Drain {
			s.MembersUp++
		}
	}
	return s, nil
}

// Ready is nil once the node serves a snapshot.
func (n *Node) Ready(context.Context) error {
	select {
	case <-n.dns.Ready():
		return nil
	default:
		return errors.New("not serving yet: waiting for the first probe round")
	}
}

// Explain explains a live decision from the snapshot being served.
func (n *Node) Explain(_ context.Context, name, client string) (api.Explanation, error) {
	n.mu.Lock()
	snap := n.snapshotLocked(n.gen)
	n.mu.Unlock()
	var b bytes.Buffer
	if err := Explain(&b, snap, name, client); err != nil {
		return api.Explanation{}, fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	return api.Explanation{Text: b.String()}, nil
}

// apiPools adapts the node to api.Pools (whose SetAdmin takes a context).
type apiPools struct{ n *Node }

func (p apiPools) Pools(context.Context) ([]api.Pool, error) {
	n := p.n
	n.mu.Lock()
	g := n.gen
	n.mu.Unlock()
	var out []api.Pool
	for _, name := range g.cfg.PoolNames() {
		vs, err := g.prober.Pool(name)
		if err != nil {
			return nil, err
		}
		ap := api.Pool{Name: name}
		for _, v := range vs {
			m := api.PoolMember{
				Address: v.Key.Member,
				Up:      v.Up && !v.Drain,
				Admin:   v.Admin.String(),
				Forced:  v.Forced,
				Why:     why(v),
				Load:    v.Load,
			}
			if v.Probed {
				m.Verdicts = []api.Verdict{{Node: g.cfg.Node.Name, Up: v.ProbeUp, At: v.Checked, Reason: v.Err}}
			}
			ap.Members = append(ap.Members, m)
		}
		out = append(out, ap)
	}
	return out, nil
}

func (p apiPools) SetAdmin(_ context.Context, pool, address, state string) error {
	err := p.n.SetAdmin(pool, address, state)
	switch {
	case errors.Is(err, probes.ErrUnknownPool), errors.Is(err, probes.ErrUnknownMember):
		return fmt.Errorf("%w: %v", api.ErrNotFound, err)
	case errors.Is(err, probes.ErrAdmin):
		return fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	return err
}

// why says in a few words why a member is in or out of answers.
func why(v probes.Verdict) string {
	switch {
	case v.Admin == probes.AdminDrain:
		return "drained by an operator"
	case v.Forced && v.Up:
		return "forced up by an operator"
	case v.Forced:
		return "forced down by an operator"
	case !v.Probed && v.Err == "" && v.Checked.IsZero():
		if v.Up {
			return "not probed: up (no check, or initial state)"
		}
		return "not probed yet: initial state down"
	case v.Up:
		return "probes pass"
	default:
		return "probes fail: " + v.Err
	}
}
