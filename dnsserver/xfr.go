package dnsserver

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"iter"
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
	poolsFP    uint64   // fingerprint of the pools' members the hash sees

	// hash is of the transferred content (contentHash), computed when a
	// later Store first needs it: a zone that is never replaced is never
	// hashed, and a node's first Store does not wait for it. pools is
	// what it is computed with. Store, which alone uses them, is
	// serialized.
	hash   [32]byte
	hashed bool
	pools  map[string]*selector.Pool
}

// contentHash returns the hash of zx's transferred content.
func (zx *zoneXfr) contentHash() [32]byte {
	if !zx.hashed {
		zx.hash, zx.hashed, zx.pools = contentHash(transferRecords(zx.zone, zx.pools)), true, nil
	}
	return zx.hash
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
		zx := &zoneXfr{zone: z, fileSerial: z.SOA.Serial, poolsFP: fp, pools: pools}
		p := prev[z.Origin]
		same := p != nil && p.zone == z && p.poolsFP == fp // same zone, same members: same content
		if same {
			zx.hash, zx.hashed, zx.pools = p.hash, p.hashed, p.pools
		}
		given, ok := snap.Serials[z.Origin]
		switch {
		case ok:
			zx.serial = given
		case p == nil:
			zx.serial = zx.fileSerial
		case (same || zx.contentHash() == p.contentHash()) && zx.fileSerial == p.fileSerial:
			zx.serial = p.serial
		case serialLess(p.serial, zx.fileSerial):
			zx.serial = zx.fileSerial
		case same || zx.contentHash() == p.contentHash():
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
	m := make(map[string]*selector.Pool, snap.Pools.Len())
	for _, p := range snap.Pools.All() {
		if p != nil {
			m[p.Name] = p
		}
	}
	return m
}

// poolsFingerprint hashes every pool's name and members: what the
// transferred view of POOL names depends on (health does not).
func poolsFingerprint(pools selector.Table) uint64 {
	h := sha256.New()
	var b [8]byte
	for _, p := range pools.All() {
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

// contentHash hashes records in order: owner, type, TTL and rdata.
func contentHash(rrs iter.Seq[zones.Record]) [32]byte {
	h := sha256.New()
	buf := make([]byte, 0, 64<<10)
	for r := range rrs {
		if len(buf) > 60<<10 {
			h.Write(buf)
			buf = buf[:0]
		}
		buf = append(buf, r.Owner...)
		buf = append(buf, 0)
		buf = binary.BigEndian.AppendUint16(buf, r.Type)
		buf = binary.BigEndian.AppendUint32(buf, r.TTL)
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(r.Rdata)))
		buf = append(buf, r.Rdata...)
	}
	h.Write(buf)
	return [32]byte(h.Sum(nil))
}

// transferRecords yields what a secondary gets of z, SOA excluded: every
// record in canonical order, with each POOL record replaced by the static
// view of its pool: A and AAAA records for every address member (healthy
// or not: a secondary cannot know), with the POOL record's TTL. A pool of
// host-name members only transfers as a CNAME to its first member, when
// nothing else is at the name (a CNAME cannot share it). The private POOL
// type itself never leaves. It reads the zone's compact form as it goes:
// a yielded record's Rdata is valid until the next one.
func transferRecords(z *zones.Zone, pools map[string]*selector.Pool) iter.Seq[zones.Record] {
	return func(yield func(zones.Record) bool) {
		var scratch []byte
		for set := range z.RRsets() {
			switch set.Type() {
			case dns.TypeSOA:
				continue
			case zones.TypePOOL:
			default:
				for r := range set.All() {
					if !yield(r) {
						return
					}
				}
				continue
			}
			for r := range set.All() {
				name, _ := r.Pool()
				p := pools[name]
				if p == nil {
					continue
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
					if host != "" && set.NameSets() == 1 {
						var ok bool
						if scratch, ok = appendWire(scratch[:0], dns.Fqdn(host)); ok &&
							!yield(zones.Record{Owner: r.Owner, Type: dns.TypeCNAME, TTL: r.TTL, Rdata: scratch}) {
							return
						}
					}
					continue
				}
				for _, addrs := range [][]netip.Addr{v4, v6} {
					slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
					for _, a := range slices.Compact(addrs) {
						typ := dns.TypeAAAA
						if a.Is4() {
							typ = dns.TypeA
						}
						if !yield(zones.Record{Owner: r.Owner, Type: typ, TTL: r.TTL, Rdata: a.AsSlice()}) {
							return
						}
					}
				}
			}
		}
	}
}

// maxXfrChunk bounds the uncompressed size of the records one transfer
// message carries, so that every message stays under 64 KiB.
const maxXfrChunk = 60000

// streamTransfer hands send a transfer's records in messages: the SOA
// first and last (RFC 5936 2.2), the body decoded as it goes, records
// never split. It stops at the first send that fails and reports
// whether all went out.
func streamTransfer(soa *dns.SOA, body iter.Seq[zones.Record], send func([]dns.RR) bool) bool {
	var batch []dns.RR
	size := 0
	add := func(rr dns.RR) bool {
		l := dns.Len(rr)
		if len(batch) > 0 && size+l > maxXfrChunk {
			if !send(batch) {
				return false
			}
			clear(batch)
			batch, size = batch[:0], 0
		}
		batch = append(batch, rr)
		size += l
		return true
	}
	if !add(soa) {
		return false
	}
	for r := range body {
		if !add(r.RR()) {
			return false
		}
	}
	return add(soa) && send(batch)
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
	messages := 0
	send := func(rrs []dns.RR) bool {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		m.Compress = true
		if messages > 0 {
			m.Question = nil // RFC 5936 2.2.1: only the first carries it
		}
		m.Answer = rrs
		mac, err := s.writeMsg(c, m, key, reqMAC, messages > 0)
		if err != nil {
			log.Warn("zone transfer failed", "error", err)
			return false
		}
		reqMAC = mac
		messages++
		return true
	}
	upToDate := false
	if q.Qtype == dns.TypeIXFR {
		var have *dns.SOA
		if len(req.Ns) == 1 {
			have, _ = req.Ns[0].(*dns.SOA)
		}
		if have == nil {
			return refuse(dns.RcodeFormatError, "IXFR without the client's SOA")
		}
		upToDate = !serialLess(have.Serial, zx.serial)
	}
	var ok bool
	if upToDate {
		// Our SOA alone says so (RFC 1995 4).
		ok = send([]dns.RR{zx.soa})
	} else {
		// AXFR, or IXFR answered with the whole zone as RFC 1995 4
		// allows: Tern keeps no history of differences. The records are
		// decoded from the zone's compact form a message at a time.
		body := transferRecords(zx.zone, poolsByName(cur.snap))
		if sz := cur.snap.DNSSEC[zx.zone]; sz != nil {
			signed, err := signedTransfer(sz, zx.soa, body, time.Now())
			if err != nil {
				log.Error("zone transfer failed: signing", "error", err)
				return refuse(dns.RcodeServerFailure, "signing failed")
			}
			body = records(signed)
		}
		ok = streamTransfer(zx.soa, body, send)
	}
	if !ok {
		s.stats.transfers[xfrFailed].Add(1)
		return false
	}
	s.stats.transfers[xfrOK].Add(1)
	log.Info("zone transferred", "serial", zx.serial, "messages", messages, "key", keyName(key))
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
