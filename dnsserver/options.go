package dnsserver

import (
	"fmt"
	"net/netip"

	"github.com/ternlb/tern/config"
)

// TransferACL admits zone transfers from From (every address when not
// valid) signed with the TSIG key named Key (unsigned ones too when
// empty).
type TransferACL struct {
	From netip.Prefix
	Key  string
}

// NotifyTarget is a secondary told of new serials, with NOTIFY signed by
// the TSIG key named Key when set.
type NotifyTarget struct {
	Addr netip.AddrPort
	Key  string
}

// OptionsFrom returns the Options a node's configuration asks for:
// listeners from node, and rrl, tsig and transfer. It reads TSIG secret
// files; a problem with one is an error naming its line.
func OptionsFrom(cfg *config.Config) (Options, error) {
	o := Options{
		Addrs:      cfg.Node.DNS,
		UDPSockets: cfg.Node.UDPSockets,
		TCPIdle:    cfg.Node.TCPIdle.D(),
		UDPSize:    cfg.Node.UDPSize,
	}
	if q := cfg.Node.QueryLog; q != nil {
		o.QueryLogSample = q.Sample
	}
	if r := cfg.RRL; r != nil {
		rrl := &RRL{
			ResponsesPerSecond: r.ResponsesPerSecond,
			Slip:               r.SlipValue(),
			Window:             r.Window.D(),
			IPv4Prefix:         r.IPv4Prefix,
			IPv6Prefix:         r.IPv6Prefix,
			TableSize:          r.TableSize,
		}
		for _, e := range r.Exempt {
			p, err := config.ParsePrefix(e)
			if err != nil {
				return Options{}, fmt.Errorf("rrl exempt %q: %w", e, err)
			}
			rrl.Exempt = append(rrl.Exempt, p)
		}
		o.RRL = rrl
	}
	keys, ps := cfg.TSIGSecrets()
	if len(ps) > 0 {
		return Options{}, ps
	}
	for _, k := range keys {
		o.TSIGKeys = append(o.TSIGKeys, TSIGKey{Name: k.Name, Algorithm: k.Algorithm, Secret: k.Secret})
	}
	for _, a := range cfg.Transfer.Allow {
		acl := TransferACL{Key: a.Key}
		if a.From != "" {
			p, err := config.ParsePrefix(a.From)
			if err != nil {
				return Options{}, fmt.Errorf("transfer allow from %q: %w", a.From, err)
			}
			acl.From = p
		}
		o.TransferAllow = append(o.TransferAllow, acl)
	}
	for _, n := range cfg.Transfer.Notify {
		ap, err := config.NotifyAddr(n.To)
		if err != nil {
			return Options{}, fmt.Errorf("transfer notify: %w", err)
		}
		o.Notify = append(o.Notify, NotifyTarget{Addr: ap, Key: n.Key})
	}
	return o, nil
}
