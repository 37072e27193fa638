package dnsserver

import (
	"encoding/hex"
	"errors"
	"fmt"
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

// configure checks the options and builds what they imply: the key table
// and the rate limiter.
func (s *Server) configure() error {
	o := &s.opts
	s.keys = map[string]*TSIGKey{}
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
			return fmt.Errorf("dnsserver: TSIG key %q: %w", k.Name, err)
		}
		s.keys[k.Name] = &k
	}
	for _, a := range o.TransferAllow {
		if a.Key != "" && s.keys[dns.CanonicalName(a.Key)] == nil {
			return fmt.Errorf("dnsserver: transfer allow entry names TSIG key %q, which is not among the keys", a.Key)
		}
	}
	for _, n := range o.Notify {
		if !n.Addr.IsValid() {
			return errors.New("dnsserver: NOTIFY target without an address")
		}
		if n.Key != "" && s.keys[dns.CanonicalName(n.Key)] == nil {
			return fmt.Errorf("dnsserver: NOTIFY target %s names TSIG key %q, which is not among the keys", n.Addr, n.Key)
		}
	}
	if o.RRL != nil {
		s.rrl = newLimiter(*o.RRL)
	}
	s.notify.init()
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
	k := s.keys[dns.CanonicalName(t.Hdr.Name)]
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
