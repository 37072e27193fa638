package dnsserver

import (
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// TSIGKey is a shared secret (RFC 8945).
type TSIGKey struct {
	// Name is the key's name as on the wire: "xfr.".
	Name string
	// Algorithm is miekg/dns's name for it: dns.HmacSHA256.
	Algorithm string
	// Secret is the base64 secret.
	Secret string
}

// policy is what Reconfigure can change while the server runs. It is
// immutable; the server swaps it whole.
type policy struct {
	rrl    *limiter            // nil: off
	keys   map[string]*TSIGKey // by wire name
	allow  []TransferACL
	notify []NotifyTarget
}

// buildPolicy checks o's RRL, TSIG, transfer and NOTIFY settings and
// builds the policy they make. The rate limiter of prev is kept when its
// settings are unchanged (so are its accounts).
func (s *Server) buildPolicy(o Options, prev *policy) (*policy, error) {
	p := &policy{keys: map[string]*TSIGKey{}, allow: slices.Clone(o.TransferAllow), notify: slices.Clone(o.Notify)}
	for i := range o.TSIGKeys {
		k := o.TSIGKeys[i]
		k.Name = dns.CanonicalName(k.Name)
		if k.Algorithm == "" {
			k.Algorithm = dns.HmacSHA256
		}
		k.Algorithm = dns.CanonicalName(k.Algorithm)
		// Sign something to learn whether the secret and algorithm work.
		m := new(dns.Msg)
		m.SetQuestion("check.", dns.TypeSOA)
		m.SetTsig(k.Name, k.Algorithm, 300, 0)
		if _, _, err := dns.TsigGenerate(m, k.Secret, "", false); err != nil {
			return nil, fmt.Errorf("dnsserver: TSIG key %q: %w", k.Name, err)
		}
		p.keys[k.Name] = &k
	}
	for _, a := range o.TransferAllow {
		if a.Key != "" && p.keys[dns.CanonicalName(a.Key)] == nil {
			return nil, fmt.Errorf("dnsserver: transfer allow entry names TSIG key %q, which is not among the keys", a.Key)
		}
	}
	for _, n := range o.Notify {
		if !n.Addr.IsValid() {
			return nil, errors.New("dnsserver: NOTIFY target without an address")
		}
		if n.Key != "" && p.keys[dns.CanonicalName(n.Key)] == nil {
			return nil, fmt.Errorf("dnsserver: NOTIFY target %s names TSIG key %q, which is not among the keys", n.Addr, n.Key)
		}
	}
	if o.RRL != nil && o.RRL.ResponsesPerSecond > 0 {
		if prev != nil && prev.rrl != nil && reflect.DeepEqual(prev.rrl.opts, *o.RRL) {
			p.rrl = prev.rrl
		} else {
			p.rrl = newLimiter(*o.RRL)
			p.rrl.dropped, p.rrl.slipped = &s.stats.rrlDropped, &s.stats.rrlSlipped
		}
	}
	return p, nil
}

// Reconfigure applies o's RRL, TSIG keys, transfer allow list and NOTIFY
// targets to the running server (its listener settings are ignored: those
// need a new server). Queries and transfers that start afterwards see the
// new settings; NOTIFYs already under way keep their targets. On error
// nothing changes.
func (s *Server) Reconfigure(o Options) error {
	s.storeMu.Lock()
	defer s.storeMu.Unlock()
	p, err := s.buildPolicy(o, s.pol.Load())
	if err != nil {
		return err
	}
	s.pol.Store(p)
	return nil
}

// verifyTSIG checks the TSIG record of req (msg is its wire form). It
// returns the key it was signed with (nil when unsigned), its MAC, and
// the TSIG error to answer with: BADKEY for a key or algorithm we do not
// have, BADSIG for a wrong MAC, BADTIME outside the fudge; 0 when good.
func (s *Server) verifyTSIG(req *dns.Msg, msg []byte) (*TSIGKey, string, int) {
	t := req.IsTsig()
	if t == nil {
		return nil, "", 0
	}
	k := s.pol.Load().keys[dns.CanonicalName(t.Hdr.Name)]
	if k == nil || k.Algorithm != dns.CanonicalName(t.Algorithm) {
		return nil, "", dns.RcodeBadKey
	}
	if err := dns.TsigVerify(msg, k.Secret, "", false); err != nil {
		if errors.Is(err, dns.ErrTime) {
			return k, t.MAC, dns.RcodeBadTime
		}
		return nil, "", dns.RcodeBadSig
	}
	return k, t.MAC, 0
}

// tsigErrorReply is the NOTAUTH answer to a request whose TSIG failed
// (RFC 8945 5.2): a TSIG record carrying the error, unsigned for BADKEY
// and BADSIG; for BADTIME signed (by writeMsg) with our time in Other
// Data.
func tsigErrorReply(req *dns.Msg, code int) *dns.Msg {
	t := req.IsTsig()
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeNotAuth)
	now := uint64(time.Now().Unix())
	r := &dns.TSIG{
		Hdr:        dns.RR_Header{Name: t.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm:  t.Algorithm,
		Fudge:      300,
		TimeSigned: now,
		OrigId:     m.Id,
		Error:      uint16(code),
	}
	if code == dns.RcodeBadTime {
		r.TimeSigned = t.TimeSigned
		var b [6]byte
		for i := range b {
			b[i] = byte(now >> (8 * (5 - i)))
		}
		r.OtherLen = 6
		r.OtherData = hex.EncodeToString(b[:])
	}
	m.Extra = append(m.Extra, r)
	return m
}
