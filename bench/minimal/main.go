// Command minimal is the comparison point of `make bench`: a plain
// miekg/dns server answering a zone from a map and load-balanced names by
// weighted random choice from a static list. It is what a competent
// engineer writes in an afternoon with miekg/dns's own server loop, and
// nothing more: no health, no policies, no EDNS Client Subnet.
//
//	minimal -listen 127.0.0.1:5360 -zone z.zone [-pools z.pools] [-answers 2]
//
// A pools file has one name per line: `NAME TTL ADDR:WEIGHT ...` (the
// weight after the last colon, so IPv6 addresses work). Without -pools, a
// file beside the zone named like it with the extension .pools is used
// when it exists.
package main

import (
	"flag"
	"log"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

type member struct {
	addr   netip.Addr
	weight int
}

type pool struct {
	ttl     uint32
	members []member
}

type server struct {
	records map[string]map[uint16][]dns.RR // lowercase owner -> type -> RRset
	pools   map[string]*pool
	soa     *dns.SOA
	answers int
}

func main() {
	listen := flag.String("listen", "127.0.0.1:5360", "address to serve on (UDP and TCP)")
	zone := flag.String("zone", "", "zone file")
	pools := flag.String("pools", "", "pools file (default: the zone file's name with .pools, when it exists)")
	answers := flag.Int("answers", 2, "addresses per pool answer")
	flag.Parse()
	s := &server{records: map[string]map[uint16][]dns.RR{}, pools: map[string]*pool{}, answers: *answers}
	f, err := os.Open(*zone)
	if err != nil {
		log.Fatal(err)
	}
	zp := dns.NewZoneParser(f, "", *zone)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		name := strings.ToLower(rr.Header().Name)
		if s.records[name] == nil {
			s.records[name] = map[uint16][]dns.RR{}
		}
		s.records[name][rr.Header().Rrtype] = append(s.records[name][rr.Header().Rrtype], rr)
		if soa, ok := rr.(*dns.SOA); ok {
			s.soa = soa
		}
	}
	if err := zp.Err(); err != nil || s.soa == nil {
		log.Fatalf("zone %s: %v (a SOA is required)", *zone, err)
	}
	if *pools == "" {
		if p := strings.TrimSuffix(*zone, filepath.Ext(*zone)) + ".pools"; fileExists(p) {
			*pools = p
		}
	}
	if *pools != "" {
		if err := s.readPools(*pools); err != nil {
			log.Fatal(err)
		}
	}
	errc := make(chan error, 2)
	for _, netw := range []string{"udp", "tcp"} {
		srv := &dns.Server{Addr: *listen, Net: netw, Handler: s}
		go func() { errc <- srv.ListenAndServe() }()
	}
	log.Fatal(<-errc)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (s *server) readPools(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		ttl, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil || len(f) < 3 {
			return &os.PathError{Op: "line " + strconv.Itoa(i+1), Path: file, Err: strconv.ErrSyntax}
		}
		p := &pool{ttl: uint32(ttl)}
		for _, m := range f[2:] {
			c := strings.LastIndexByte(m, ':')
			a, err1 := netip.ParseAddr(m[:max(c, 0)])
			w, err2 := strconv.Atoi(m[c+1:])
			if c < 0 || err1 != nil || err2 != nil || w < 1 {
				return &os.PathError{Op: "line " + strconv.Itoa(i+1), Path: file, Err: strconv.ErrSyntax}
			}
			p.members = append(p.members, member{a, w})
		}
		s.pools[strings.ToLower(dns.Fqdn(f[0]))] = p
	}
	return nil
}

func (s *server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if o := r.IsEdns0(); o != nil {
		m.SetEdns0(1232, o.Do())
	}
	name := strings.ToLower(q.Name)
	if p := s.pools[name]; p != nil && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA) {
		m.Answer = p.pick(q, s.answers)
	} else if rrs := s.records[name][q.Qtype]; rrs != nil {
		m.Answer = rrs
	} else if _, exists := s.records[name]; !exists && s.pools[name] == nil {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		neg := *s.soa
		neg.Hdr.Ttl = min(s.soa.Hdr.Ttl, s.soa.Minttl)
		m.Ns = []dns.RR{&neg}
	}
	w.WriteMsg(m)
}

// pick chooses up to n distinct members of the query's family, each draw
// weighted among the members not yet chosen.
func (p *pool) pick(q dns.Question, n int) []dns.RR {
	var cand []member
	total := 0
	for _, m := range p.members {
		if m.addr.Is4() == (q.Qtype == dns.TypeA) {
			cand = append(cand, m)
			total += m.weight
		}
	}
	var out []dns.RR
	for len(out) < n && len(cand) > 0 {
		x := rand.IntN(total)
		i := 0
		for ; x >= cand[i].weight; i++ {
			x -= cand[i].weight
		}
		hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: p.ttl}
		if q.Qtype == dns.TypeA {
			out = append(out, &dns.A{Hdr: hdr, A: cand[i].addr.AsSlice()})
		} else {
			out = append(out, &dns.AAAA{Hdr: hdr, AAAA: cand[i].addr.AsSlice()})
		}
		total -= cand[i].weight
		cand = append(cand[:i], cand[i+1:]...)
	}
	return out
}
