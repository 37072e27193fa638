package selector

import (
	"net/netip"
	"sync/atomic"

	"github.com/ternlb/tern/config"
)

// Family is the address family an answer is for.
type Family uint8

const (
	IPv4 Family = 4 // A queries
	IPv6 Family = 6 // AAAA queries
)

// Client is what a decision may know of who asks.
type Client struct {
	// Addr is the EDNS Client Subnet address when the query carries one,
	// else the query's source address.
	Addr netip.Addr
	// SourcePrefix is the ECS source prefix length, or Addr's bit length
	// when there was no ECS option.
	SourcePrefix int
}

// Member is one backend of a compiled pool. Immutable.
type Member struct {
	// Addr is the member's address; invalid for a host-name member.
	Addr netip.Addr
	// Host is the fully qualified name of a host-name member, answered as a
	// CNAME; empty for an address member.
	Host     string
	Weight   uint32
	Priority int
	Site     string
	Capacity float64
}

// Status is a member's state as the snapshot sees it.
type Status struct {
	Up    bool    // probes (or a forced admin state) say up
	Drain bool    // admin drain: no new answers
	Load  float64 // latest smoothed load report, 0 when none
}

// Answer is one decision's outcome.
type Answer struct {
	// Pool is the pool that answered: differs from the asked pool when an
	// all_down fallback was taken.
	Pool *Pool
	// Members are the chosen members in answer order, as indexes into
	// Pool.Members. The slice lives in the Scratch and is valid until its
	// next use.
	Members []int
	// Scope is the ECS scope prefix length the decision depended on: 0
	// when no stage looked at the client.
	Scope int
	// TTL of the answer in seconds.
	TTL uint32
}

// Scratch holds the buffers one decision works in. One per worker; not safe
// for concurrent use.
type Scratch struct {
	idx []int
}

// NewScratch returns a Scratch for pools of up to n members (it grows when
// a pool is larger).
func NewScratch(n int) *Scratch { return &Scratch{idx: make([]int, 0, n)} }

// Pool is a compiled pool: members, chain and member states. Immutable
// except for its round-robin counter, which survives WithStatus copies.
type Pool struct {
	Name    string
	Members []Member
	Answers int    // 0: all
	TTL     uint32 // 0: the POOL record's TTL
	status  []Status
	rr      *atomic.Uint64
}

// Compile turns the configuration's pools into compiled pools, in
// cfg.PoolNames() order, every member at its configured initial state.
func Compile(cfg *config.Config) ([]*Pool, error) {
	names := cfg.PoolNames()
	out := make([]*Pool, len(names))
	for i, name := range names {
		cp := cfg.Pools[name]
		p := &Pool{Name: name, Answers: cp.Answers, TTL: uint32(cp.TTL), rr: new(atomic.Uint64)}
		for _, m := range cp.Members {
			mm := Member{Weight: uint32(m.Weight), Priority: m.Priority, Site: m.Site, Capacity: m.Capacity}
			if a, err := netip.ParseAddr(m.Address); err == nil {
				mm.Addr = a.Unmap()
			} else {
				mm.Host = dnsFQDN(m.Address)
			}
			p.Members = append(p.Members, mm)
			p.status = append(p.status, Status{Up: cp.Initial != "down" && m.Admin != "down" || m.Admin == "up", Drain: m.Admin == "drain"})
		}
		out[i] = p
	}
	return out, nil
}

// WithStatus returns a copy of p whose members have the given states
// (indexed like Members).
func (p *Pool) WithStatus(st []Status) *Pool {
	q := *p
	q.status = append([]Status(nil), st...)
	return &q
}

// Status returns member i's state.
func (p *Pool) Status(i int) Status { return p.status[i] }

// Select decides which members answer client c for family fam.
// PROVISIONAL: round robin over up members of the family; the chain comes
// with the selection issue.
func (p *Pool) Select(c *Client, fam Family, s *Scratch) Answer {
	s.idx = s.idx[:0]
	for i, m := range p.Members {
		if !p.status[i].Up || p.status[i].Drain {
			continue
		}
		if m.Host == "" && (m.Addr.Is4() != (fam == IPv4)) {
			continue
		}
		s.idx = append(s.idx, i)
	}
	if n := len(s.idx); n > 1 {
		k := int(p.rr.Add(1) % uint64(n))
		rotate(s.idx, k)
	}
	if p.Answers > 0 && len(s.idx) > p.Answers {
		s.idx = s.idx[:p.Answers]
	}
	return Answer{Pool: p, Members: s.idx, TTL: p.TTL}
}

func rotate(a []int, k int) {
	reverse(a[:k])
	reverse(a[k:])
	reverse(a)
}

func reverse(a []int) {
	for i, j := 0, len(a)-1; i < j; i, j = i+1, j-1 {
		a[i], a[j] = a[j], a[i]
	}
}

func dnsFQDN(s string) string {
	if len(s) > 0 && s[len(s)-1] == '.' {
		return s
	}
	return s + "."
}
