package dnsserver

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/selector"
	"github.com/ternlb/tern/zones"
)

// zoneXfr is one zone's transfer state in a stored snapshot.
type zoneXfr struct {
	zone       *zones.Zone
	serial     uint32   // served and transferred
	fileSerial uint32   // the zone file's
	soa        *dns.SOA // the zone's SOA with the served serial
	hash       [32]byte // of the transferred content, serial left out
	poolsFP    uint64   // fingerprint of the pools' members the hash saw
}

// deriveSerials computes each zone's served serial for snap, given the
// previous snapshot's state (nil at the first Store):
//
//   - snap.Serials[origin], when the node gives one;
//   - else the file's serial at the first Store;
//   - else the previous served serial while the transferred content is
//     unchanged;
//   - else the file's serial if it is newer (RFC 1982) than the
//     previous served one;
//   - else the previous served serial + 1: content changed (a POOL's
//     members, say) without the file's serial moving.
//
// It returns the state by origin and the SOA records whose served serial
// differs from their own.
func deriveSerials(snap *Snapshot, prev map[string]*zoneXfr) (map[string]*zoneXfr, map[*dns.SOA]uint32) {
	out := map[string]*zoneXfr{}
	var over map[*dns.SOA]uint32
	if snap == nil || snap.Zones == nil {
		return out, nil
	}
	pools := poolsByName(snap)
	fp := poolsFingerprint(snap.Pools)
	for _, z := range snap.Zones.Zones() {
		if z.SOA == nil {
			continue
		}
		zx := &zoneXfr{zone: z, fileSerial: z.SOA.Serial, poolsFP: fp}
		p := prev[z.Origin]
		if p != nil && p.zone == z && p.poolsFP == fp {
			zx.hash = p.hash // same zone, same members: same content
		} else {
			zx.hash = contentHash(transferRecords(z, pools))
		}
		given, ok := snap.Serials[z.Origin]
		switch {
		case ok:
			zx.serial = given
		case p == nil:
			zx.serial = zx.fileSerial
		case zx.hash == p.hash && zx.fileSerial == p.fileSerial:
			zx.serial = p.serial
		case serialLess(p.serial, zx.fileSerial):
			zx.serial = zx.fileSerial
		case zx.hash == p.hash:
			zx.serial = p.serial
		default:
			zx.serial = p.serial + 1
		}
		soa := *z.SOA
		soa.Serial = zx.serial
		zx.soa = &soa
		if zx.serial != z.SOA.Serial {
			if over == nil {
				over = map[*dns.SOA]uint32{}
			}
			over[z.SOA] = zx.serial
		}
		out[z.Origin] = zx
	}
	return out, over
}

// serialLess reports a < b in RFC 1982 serial number arithmetic.
func serialLess(a, b uint32) bool { return a != b && int32(b-a) > 0 }

func poolsByName(snap *Snapshot) map[string]*selector.Pool {
	m := make(map[string]*selector.Pool, len(snap.Pools))
	for _, p := range snap.Pools {
		if p != nil {
			m[p.Name] = p
		}
	}
	return m
}

// poolsFingerprint hashes every pool's name and members: what the
// transferred view of POOL names depends on (health does not).
func poolsFingerprint(pools []*selector.Pool) uint64 {
	h := sha256.New()
	var b [8]byte
	for _, p := range pools {
		if p == nil {
			continue
		}
		h.Write([]byte(p.Name))
		h.Write([]byte{0})
		for _, m := range p.Members {
			h.Write([]byte(m.Name()))
			h.Write([]byte{0})
		}
		binary.BigEndian.PutUint64(b[:], uint64(len(p.Members)))
		h.Write(b[:])
	}
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// contentHash hashes records in order, leaving out the SOA's serial.
func contentHash(rrs []dns.RR) [32]byte {
	h := sha256.New()
	for _, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok {
			c := *soa
			c.Serial = 0
			rr = &c
		}
		h.Write([]byte(rr.String()))
		h.Write([]byte{'\n'})
	}
	return [32]byte(h.Sum(nil))
}

// transferRecords returns what a secondary gets of z, SOA excluded: every
// record in canonical order, with each POOL record replaced by the static
// view of its pool: A and AAAA records for every address member (healthy
// or not: a secondary cannot know), with the POOL record's TTL. A pool of
// host-name members only transfers as a CNAME to its first member, when
// nothing else is at the name (a CNAME cannot share it). The private POOL
// type itself never leaves.
func transferRecords(z *zones.Zone, pools map[string]*selector.Pool) []dns.RR {
	recs := z.Records()
	out := make([]dns.RR, 0, len(recs))
	owners := map[string]int{} // owner -> records other than POOL there
	for _, rr := range recs {
		if rr.Header().Rrtype != zones.TypePOOL {
			owners[rr.Header().Name]++
		}
	}
	for _, rr := range recs {
		h := rr.Header()
		switch h.Rrtype {
		case dns.TypeSOA:
			continue
		case zones.TypePOOL:
		default:
			out = append(out, rr)
			continue
		}
		pr, ok := rr.(*dns.PrivateRR)
		if !ok {
			continue
		}
		pd, ok := pr.Data.(*zones.POOL)
		if !ok {
			continue
		}
		p := pools[pd.Pool]
		if p == nil {
			continue
		}
		hdr := func(t uint16) dns.RR_Header {
			return dns.RR_Header{Name: h.Name, Rrtype: t, Class: dns.ClassINET, Ttl: h.Ttl}
		}
		var v4, v6 []netip.Addr
		host := ""
		for _, m := range p.Members {
			switch {
			case m.Host != "":
				if host == "" {
					host = m.Host
				}
			case m.Addr.Is4():
				v4 = append(v4, m.Addr)
			default:
				v6 = append(v6, m.Addr)
			}
		}
		if len(v4)+len(v6) == 0 {
			if host != "" && owners[h.Name] == 0 {
				out = append(out, &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: dns.Fqdn(host)})
			}
			continue
		}
		for _, addrs := range [][]netip.Addr{v4, v6} {
			slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
			addrs = slices.Compact(addrs)
			for _, a := range addrs {
				if a.Is4() {
					out = append(out, &dns.A{Hdr: hdr(dns.TypeA), A: a.AsSlice()})
				} else {
					out = append(out, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: a.AsSlice()})
				}
			}
		}
	}
	return out
}

// maxXfrChunk bounds the uncompressed size of the records one transfer
// message carries, so that every message stays under 64 KiB.
const maxXfrChunk = 60000

// xfrMessages splits a transfer's answer records into messages: the SOA
// first and last (RFC 5936 2.2), records never split.
func xfrMessages(soa *dns.SOA, body []dns.RR) [][]dns.RR {
	all := make([]dns.RR, 0, len(body)+2)
	all = append(all, soa)
	all = append(all, body...)
	all = append(all, soa)
	var out [][]dns.RR
	start, size := 0, 0
	for i, rr := range all {
		l := dns.Len(rr)
		if i > start && size+l > maxXfrChunk {
			out = append(out, all[start:i])
			start, size = i, 0
		}
		size += l
	}
	return append(out, all[start:])
}

// serveTransfer answers an AXFR or IXFR (w.handle flagged it) on c: the
// allow list, then the zone. The worker has verified the request's TSIG:
// key is the key it was signed with (nil: unsigned), reqMAC its MAC. It
// reports whether the connection may go on.
func (s *Server) serveTransfer(c net.Conn, msg []byte, src netip.Addr, key *tsigKey, mac []byte) bool {
	cur := s.cur.Load()
	req := new(dns.Msg)
	if err := req.Unpack(msg); err != nil || len(req.Question) != 1 {
		s.stats.transfers[xfrRefused].Add(1)
		m := new(dns.Msg)
		m.Id = binary.BigEndian.Uint16(msg)
		m.Response = true
		m.Rcode = dns.RcodeFormatError
		_, err := s.writeMsg(c, m, nil, "", false)
		return err == nil
	}
	q := req.Question[0]
	log := s.log.With("client", src.String(), "zone", q.Name, "qtype", dns.Type(q.Qtype).String())
	reqMAC := hex.EncodeToString(mac)
	refuse := func(rcode int, why string) bool {
		s.stats.transfers[xfrRefused].Add(1)
		log.Info("zone transfer refused: "+why, "key", keyName(key))
		m := new(dns.Msg)
		m.SetRcode(req, rcode)
		_, err := s.writeMsg(c, m, key, reqMAC, false)
		return err == nil
	}
	if !s.transferAllowed(src, key) {
		return refuse(dns.RcodeRefused, "not on transfer.allow")
	}
	var zx *zoneXfr
	if cur != nil {
		zx = cur.xfr[dns.CanonicalName(q.Name)]
	}
	if zx == nil || q.Qclass != dns.ClassINET {
		return refuse(dns.RcodeNotAuth, "not a zone served here")
	}
	var msgs [][]dns.RR
	if q.Qtype == dns.TypeIXFR {
		var have *dns.SOA
		if len(req.Ns) == 1 {
			have, _ = req.Ns[0].(*dns.SOA)
		}
		if have == nil {
			return refuse(dns.RcodeFormatError, "IXFR without the client's SOA")
		}
		if !serialLess(have.Serial, zx.serial) {
			// Up to date (or ahead): our SOA alone says so (RFC 1995 4).
			msgs = [][]dns.RR{{zx.soa}}
		}
	}
	if msgs == nil {
		// AXFR, or IXFR answered with the whole zone as RFC 1995 4
		// allows: Tern keeps no history of differences.
		msgs = xfrMessages(zx.soa, transferRecords(zx.zone, poolsByName(cur.snap)))
	}
	for i, rrs := range msgs {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		m.Compress = true
		if i > 0 {
			m.Question = nil // RFC 5936 2.2.1: only the first carries it
		}
		m.Answer = rrs
		mac, err := s.writeMsg(c, m, key, reqMAC, i > 0)
		if err != nil {
			s.stats.transfers[xfrFailed].Add(1)
			log.Warn("zone transfer failed", "error", err)
			return false
		}
		reqMAC = mac
	}
	s.stats.transfers[xfrOK].Add(1)
	log.Info("zone transferred", "serial", zx.serial, "messages", len(msgs), "key", keyName(key))
	return true
}

// transferAllowed reports whether an entry of the allow list admits a
// transfer from src signed with key (nil: unsigned).
func (s *Server) transferAllowed(src netip.Addr, key *tsigKey) bool {
	src = src.Unmap()
	for _, a := range s.pol.Load().allow {
		if a.From.IsValid() && !a.From.Contains(src) {
			continue
		}
		if a.Key != "" && (key == nil || key.Name != dns.CanonicalName(a.Key)) {
			continue
		}
		return true
	}
	return false
}

func keyName(k *tsigKey) string {
	if k == nil {
		return ""
	}
	return k.Name
}

// writeMsg packs m, signs it with key when one is given (requestMAC is
// the MAC it answers or follows; timersOnly for the messages after the
// first of a transfer, RFC 8945 5.3.1) and writes it with its TCP length
// prefix. It returns the MAC sent.
func (s *Server) writeMsg(c net.Conn, m *dns.Msg, key *tsigKey, requestMAC string, timersOnly bool) (string, error) {
	var buf []byte
	var mac string
	var err error
	if key != nil {
		m.SetTsig(key.Name, key.Algorithm, tsigFudge, time.Now().Unix())
		buf, mac, err = dns.TsigGenerate(m, key.Secret, requestMAC, timersOnly)
	} else {
		buf, err = m.Pack()
	}
	if err != nil {
		return "", err
	}
	if len(buf) > 0xFFFF {
		return "", errors.New("message longer than 64 KiB")
	}
	out := make([]byte, 2+len(buf))
	binary.BigEndian.PutUint16(out, uint16(len(buf)))
	copy(out[2:], buf)
	c.SetWriteDeadline(time.Now().Add(max(s.opts.TCPIdle, 10*time.Second)))
	_, err = c.Write(out)
	return mac, err
}

// VersionSerials returns, for each zone of snap that has an SOA, the zone
// file's serial and the SHA-256 of what a transfer of the zone carries
// (POOL names expanded to their members, health ignored, the serial left
// out): what a node derives the serial it gives in Snapshot.Serials from,
// so that the served serial moves when, and only when, the file's serial
// or the transferred content does. Both depend on the zone and the pools'
// members alone, so every node of a cluster computes the same for the
// same configuration.
func VersionSerials(snap *Snapshot) (serials map[string]uint32, content map[string][32]byte) {
	serials, content = map[string]uint32{}, map[string][32]byte{}
	if snap == nil || snap.Zones == nil {
		return serials, content
	}
	pools := poolsByName(snap)
	for _, z := range snap.Zones.Zones() {
		if z.SOA != nil {
			serials[z.Origin] = z.SOA.Serial
			content[z.Origin] = contentHash(transferRecords(z, pools))
		}
	}
	return serials, content
}
