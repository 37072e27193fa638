package node

import (
	"fmt"
	"io"

	"github.com/miekg/dns"

	"github.com/ternlb/tern/dnsserver"
	"github.com/ternlb/tern/selector"
	"github.com/ternlb/tern/zones"
)

// Explain writes how snap answers name for client (an address or a
// subnet, as an ECS option would carry it): for a POOL name, stage by
// stage for A and then AAAA; for any other name, what the zone holds.
func Explain(w io.Writer, snap *dnsserver.Snapshot, name, client string) error {
	c, err := selector.ParseClient(client)
	if err != nil {
		return err
	}
	name = dns.Fqdn(name)
	if _, ok := dns.IsDomainName(name); !ok {
		return fmt.Errorf("%q is not a domain name", name)
	}
	z, res := snap.Zones.Lookup(name, dns.TypeA)
	switch res.Kind {
	case zones.NotInZone:
		return fmt.Errorf("%s is in no zone this configuration serves (the server answers REFUSED)", name)
	case zones.PoolName:
	default:
		fmt.Fprintf(w, "%s is not a POOL name in zone %s: a static lookup gives %s\n", name, z.Origin, res.Kind)
		for _, rr := range res.Answer.RRs() {
			fmt.Fprintln(w, "  "+rr.String())
		}
		return nil
	}
	p := snap.Pools.At(res.Pool)
	fmt.Fprintf(w, "%s is POOL %s (record TTL %d) in zone %s\n\n", name, p.Name, res.PoolTTL, z.Origin)
	if err := selector.WriteExplain(w, p, c, selector.IPv4, res.PoolTTL); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return selector.WriteExplain(w, p, c, selector.IPv6, res.PoolTTL)
}
