package dnsserver

import (
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/dnssec"
	"github.com/ternlb/tern/selector"
	"github.com/ternlb/tern/zones"
)

// maxChain bounds the CNAME chain one answer follows inside the served
// zones (BIND stops at 16; a longer chain is a mistake, not a design).
const maxChain = 8

// Extended rcode BADVERS (RFC 6891 9).
const rcodeBadVers = 16

// worker answers queries one at a time with buffers it owns: one per UDP
// socket loop and one per TCP connection. Not safe for concurrent use.
type worker struct {
	in      []byte // request buffer, maxMsg bytes
	q       query
	resp    response
	pk      *packer
	scratch *selector.Scratch
	client  selector.Client
	visited [maxChain]string
	udpSize int // advertised EDNS UDP payload size
	// serials are the SOA serials served in place of the zone files'
	// (see Snapshot.Serials); nil when none differ.
	serials map[*dns.SOA]uint32
	log     *slog.Logger

	// Set by the server; nil in unit tests of the handler alone.
	pol   *atomic.Pointer[policy]
	stats *stats
	// untimed counts down the queries to the next one the response-time
	// histogram times (see timeEvery).
	untimed int
	// The counters the last query counted through, and what they were
	// looked up by (a served state and a zone, a pool's key): one or two
	// map lookups a query saved while the state and the name stay.
	zcCur  *served
	zcZone *zones.Zone
	zc     *zoneCounters
	pcCur  *served
	pcKey  *selector.Member
	pc     []*atomic.Uint64

	// qlogCh is the server's query log queue (nil in unit tests of the
	// handler alone); rng is this worker's sampling state.
	qlogCh chan<- queryEntry
	rng    uint64

	// From the policy, per query (unit tests set them directly):
	rrl *limiter
	// qlog samples queries for the query log; nil: off.
	qlog *queryLog
	// xfrOn: transfers are configured, so AXFR and IXFR over TCP are
	// handed to the transfer code (xfr.go) instead of refused.
	xfrOn bool
	// keys verify TSIG-signed requests (nil: every key is unknown);
	// cookieKey makes and checks server cookies.
	keys      map[string]*tsigKey
	cookieKey cookieKey

	// ts is the request's TSIG state (meaningful when q.tsigOff > 0).
	ts tsigState
	// sg signs the response (sign.go).
	sg signing

	// Per query:
	cur  *served
	zone *zones.Zone // the zone the question fell in; nil for none
	tcp  bool
	// xfr says the query is a zone transfer over TCP: handle returned
	// nil and the caller serves it with serveTransfer.
	xfr bool
}

func newWorker(udpSize int, log *slog.Logger) *worker {
	// The question's buffers hold the longest name from the start: its
	// text (each octet at most four characters, \DDD) and its wire form,
	// side by side, so parsing never grows them.
	names := make([]byte, 0, maxNameWire+maxNameText)
	return &worker{
		q: query{
			qwire:      names[:0:maxNameWire],
			qname:      names[maxNameWire:maxNameWire],
			labelOffs:  make([]int, 0, maxLabels),
			labelTexts: make([]int, 0, maxLabels),
		},
		in:      make([]byte, maxMsg),
		pk:      newPacker(),
		scratch: selector.NewScratch(64),
		udpSize: udpSize,
		log:     log,
		rng:     seed(),
	}
}

// clockBase is the origin of the handler's clock. time.Since of a time
// with a monotonic reading reads the monotonic clock alone: one vDSO
// call where time.Now reads the wall clock too (two), so timing a query
// costs two clock reads instead of three.
var clockBase = time.Now()

// sinceBase is the monotonic time since clockBase; never 0 once the
// process has run a nanosecond.
func sinceBase() time.Duration { return time.Since(clockBase) }

// handle answers one request from cur. src is the query's source
// address; tcp says which transport it came over. It returns the
// response, which lives in the worker's buffer until the next call, or nil
// for no response (then w.xfr says whether it is a zone transfer for the
// caller to serve). Over UDP the response passes response rate limiting
// when it is on. A panic is recovered, logged and answered SERVFAIL.
func (w *worker) handle(cur *served, msg []byte, src netip.Addr, tcp bool) (out []byte) {
	w.cur, w.zone, w.tcp, w.xfr = cur, nil, tcp, false
	if w.pol != nil {
		p := w.pol.Load()
		w.rrl, w.xfrOn, w.keys, w.cookieKey, w.qlog = p.rrl, len(p.allow) > 0, p.byWire, p.cookie, p.qlog
	}
	// A query the query log will take is timed (it logs the duration);
	// of the others one in timeEvery, for the histogram.
	logged := w.qlog != nil && w.sampled(w.qlog)
	timed := logged || (w.stats != nil && w.timeThis())
	var start time.Duration // on the monotonic clock
	if timed {
		start = sinceBase()
	}
	var snap *Snapshot
	w.serials = nil
	if cur != nil {
		snap, w.serials = cur.snap, cur.serials
	}
	out = w.respond(snap, msg, src, tcp)
	if out == nil {
		return nil
	}
	if w.rrl != nil && !tcp {
		out = w.limit(out, src)
	}
	var took time.Duration
	if timed {
		took = sinceBase() - start
	}
	if w.stats != nil {
		w.count(cur, took, timed)
	}
	if logged {
		w.logQuery(out, src, tcp, took)
	}
	return out
}

// timeEvery is how often the response-time histogram times a query:
// one in this many per worker. Reading the clock twice costs about 50 ns
// a query here (a vDSO call each, and its data lines are cold at low
// rates): a tenth of what the handler itself takes. A variable for
// tests.
var timeEvery = 16

// timeThis says whether this query is one the histogram times: the
// worker's first, then one in timeEvery.
func (w *worker) timeThis() bool {
	if w.untimed--; w.untimed >= 0 {
		return false
	}
	w.untimed = timeEvery - 1
	return true
}

// poolCounters returns the answer counters of the pool p, one per
// member, from the query's served state (nil: none).
func (w *worker) poolCounters(p *selector.Pool) []*atomic.Uint64 {
	cur := w.cur
	if cur == nil {
		return nil
	}
	if k := poolKey(p); k != w.pcKey || cur != w.pcCur {
		w.pcCur, w.pcKey, w.pc = cur, k, cur.pstats[k]
	}
	return w.pc
}

// limit applies response rate limiting to out, the packed response to
// w.q: it returns out, nil (dropped) or a truncated empty response.
func (w *worker) limit(out []byte, src netip.Addr) []byte {
	q := &w.q
	resp := &w.resp
	kind := uint8(kindError)
	name := ""
	switch {
	case resp.rcode == dns.RcodeNameError:
		kind = kindNXDomain
		if w.zone != nil {
			name = w.zone.Origin // random names in one zone share an account
		}
	case resp.rcode != dns.RcodeSuccess:
	case len(resp.recs) > 0 && resp.recs[0].sect == secAnswer:
		kind, name = kindAnswer, q.name
	default:
		kind, name = kindNoData, q.name
	}
	switch w.rrl.check(src, kind, name, q.qtype) {
	case rrlDrop:
		return nil
	case rrlSlip:
		// An empty truncated answer: a real resolver retries over TCP,
		// a spoofed victim gets no amplification.
		resp.recs = resp.recs[:0]
		resp.tc = true
		q.nsid = false
		return w.pk.pack(q, resp, 512, w.udpSize)
	}
	return out
}

// respond is handle without rate limiting and counting.
func (w *worker) respond(snap *Snapshot, msg []byte, src netip.Addr, tcp bool) (out []byte) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("panic while answering a query: answered SERVFAIL",
				"panic", fmt.Sprint(r), "qname", string(w.q.qname), "qtype", dns.Type(w.q.qtype).String(),
				"client", src.String(), "stack", string(debug.Stack()))
			out = w.servfail(msg)
		}
	}()
	q := &w.q
	resp := &w.resp
	resp.reset()
	// No key from an earlier request on this connection may carry over
	// to this one (serveTransfer reads w.ts.key).
	w.ts.key, w.ts.reqMAC, w.ts.err = nil, nil, 0
	res := q.parse(msg)
	switch res {
	case parseDrop:
		return nil
	case parseFormErr:
		// An OPT RR that was itself at fault is not echoed; one that was
		// well formed is (RFC 6891 6.1.1), without options.
		q.edns = q.edns && q.optOK
		q.noOptions()
		resp.rcode = dns.RcodeFormatError
		return w.pk.pack(q, resp, maxMsg, w.udpSize)
	}
	limit := maxMsg
	if !tcp {
		limit = 512
		if q.edns {
			limit = min(max(int(q.udpSize), 512), w.udpSize)
		}
	}
	if q.tsigOff > 0 {
		switch w.verifyTSIG(msg, w.keys) {
		case tsigFormErr:
			q.noOptions()
			resp.rcode = dns.RcodeFormatError
			return w.pk.pack(q, resp, limit, w.udpSize)
		case tsigReject:
			if w.stats != nil && (q.qtype == dns.TypeAXFR || q.qtype == dns.TypeIXFR) {
				w.stats.transfers[xfrRefused].Add(1)
			}
			q.noOptions()
			resp.rcode = dns.RcodeNotAuth
			resp.tsig = &w.ts
			return w.pk.pack(q, resp, limit, w.udpSize)
		}
		resp.tsig = &w.ts // signed from here on
	}
	switch res {
	case parseNotImp:
		q.noOptions()
		resp.rcode = dns.RcodeNotImplemented
		return w.pk.pack(q, resp, limit, w.udpSize)
	case parseBadOption:
		q.noOptions()
		resp.rcode = dns.RcodeFormatError
		return w.pk.pack(q, resp, limit, w.udpSize)
	}
	if q.edns && q.ednsVersion > 0 {
		// RFC 6891 6.1.3: BADVERS, with our version (0), nothing else.
		q.noOptions()
		resp.rcode = rcodeBadVers
		return w.pk.pack(q, resp, limit, w.udpSize)
	}
	if q.cookie {
		w.serverCookie(src)
	}
	if snap == nil {
		resp.rcode = dns.RcodeServerFailure
		return w.pk.pack(q, resp, limit, w.udpSize)
	}
	if q.nsid {
		resp.nsid = snap.NodeName
	}
	w.setClient(src)
	w.startSigning(snap)
	w.answer(snap)
	if w.sg.err {
		// An answer that cannot be signed would not validate: none at
		// all (the TSIG and cookie of the response stay).
		resp.recs = resp.recs[:0]
		resp.aa = false
		resp.rcode = dns.RcodeServerFailure
	}
	return w.pk.pack(q, resp, limit, w.udpSize)
}

// servfail answers SERVFAIL after a panic, from the request alone. If even
// that fails the query goes unanswered.
func (w *worker) servfail(msg []byte) (out []byte) {
	defer func() {
		if recover() != nil {
			out = nil
		}
	}()
	q := &w.q
	if q.parse(msg) != parseOK && !q.hasQuestion {
		return nil
	}
	q.noOptions()
	q.edns = q.edns && q.ednsVersion == 0 && q.optOK
	q.tsigOff = 0
	w.resp.reset()
	w.resp.rcode = dns.RcodeServerFailure
	return w.pk.pack(q, &w.resp, 512, w.udpSize)
}

// setClient fills the selector's view of the client: the ECS address when
// the query carries one (RFC 7871), else the source address.
func (w *worker) setClient(src netip.Addr) {
	q := &w.q
	if q.ecs && q.ecsFamily != 0 && q.ecsSource > 0 {
		w.client = selector.Client{Addr: q.ecsAddr, SourcePrefix: int(q.ecsSource)}
		return
	}
	src = src.Unmap()
	w.client = selector.Client{Addr: src, SourcePrefix: src.BitLen()}
	if q.ecs && q.ecsFamily != 0 {
		// Source prefix 0: the resolver asks us not to tailor the answer
		// to its clients; the answer holds for everyone (scope 0).
		w.client.SourcePrefix = 0
	}
}

// answer fills w.resp for a well-formed QUERY.
func (w *worker) answer(snap *Snapshot) {
	q := &w.q
	resp := &w.resp
	switch q.qclass {
	case dns.ClassINET:
	case dns.ClassCHAOS:
		w.chaos(snap)
		return
	default:
		resp.rcode = dns.RcodeRefused
		return
	}
	switch q.qtype {
	case dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY:
		resp.rcode = dns.RcodeFormatError // meta types are not questions
		return
	case dns.TypeAXFR, dns.TypeIXFR:
		if w.tcp && w.xfrOn {
			w.xfr = true // served by serveTransfer
			return
		}
		resp.rcode = dns.RcodeRefused // over UDP, or no transfers configured
		return
	case dns.TypeMAILA, dns.TypeMAILB:
		resp.rcode = dns.RcodeNotImplemented
		return
	case dnssec.TypeNXNAME:
		resp.rcode = dns.RcodeFormatError // RFC 9824 3.5
		return
	}
	if snap.Zones == nil {
		resp.rcode = dns.RcodeRefused
		return
	}
	w.chase(snap, q.name)
}

// chase answers name and follows CNAMEs (from the zone or from a pool's
// host-name member) while they stay inside the served zones, at most
// maxChain deep and never twice through one name. The response code is
// that of the last name (RFC 6604).
func (w *worker) chase(snap *Snapshot, name string) {
	q := &w.q
	resp := &w.resp
	nv := 0
	for depth := 0; ; depth++ {
		var z *zones.Zone
		var r zones.Result // filled in place: a dozen words, never copied
		res := &r
		if depth == 0 {
			// The question's name as parsed: lower case and absolute.
			z = snap.Zones.LookupCanonicalTo(res, name, q.qtype)
		} else {
			z = snap.Zones.LookupTo(res, name, q.qtype)
		}
		if z == nil {
			if depth == 0 {
				resp.rcode = dns.RcodeRefused
			}
			return // the chain leaves the served zones: stop with the CNAME
		}
		if depth == 0 {
			resp.aa = true
			w.zone = z
		}
		w.signZone(snap, z)
		w.visited[nv] = name
		nv++
		var target string
		switch res.Kind {
		case zones.Success:
			w.success(z, name, res.Answer)
			for i := range res.Additional.Len() {
				set := res.Additional.At(i)
				if w.sg.on {
					w.signZone(snap, set.Zone())
				}
				n := len(resp.recs)
				w.addSet(secAdditional, set, "", true)
				w.signSet(n, set)
			}
			return
		case zones.NoData:
			w.negative(z)
			w.denial(z, name, res.Owner, false, q.qtype)
			return
		case zones.NXDomain:
			// Compact denial (RFC 9824 3.2): a signed answer says the
			// name exists with no data but NXNAME, rcode NOERROR, unless
			// the resolver sets CO and wants NXDOMAIN back (section 4).
			if w.sg.zone == nil || q.ednsCO {
				resp.rcode = dns.RcodeNameError
			}
			w.negative(z)
			w.denial(z, name, "", true, 0)
			return
		case zones.Delegation:
			if depth == 0 {
				resp.aa = false
			}
			w.addSet(secAuthority, res.NS, "", false)
			w.delegationDS(z, res.NS)
			// In-domain glue must fit (RFC 9471); sibling glue may be
			// left out.
			for i, n := 0, 0; i < res.Glue.Len(); i++ {
				g := res.Glue.At(i)
				w.addSet(secAdditional, g, "", n >= res.InDomainGlue)
				n += g.Len()
			}
			return
		case zones.CNAME:
			n := len(resp.recs)
			w.addSet(secAnswer, res.Answer, name, false)
			w.signSet(n, res.Answer)
			target = res.Target
			if q.qtype == dns.TypeCNAME || q.qtype == dns.TypeANY || target == "" {
				return
			}
		case zones.PoolName:
			if target = w.pool(snap, z, name, res); target == "" {
				return
			}
		default:
			resp.rcode = dns.RcodeServerFailure
			return
		}
		target = strings.ToLower(target)
		if nv == maxChain || w.seen(target, nv) {
			return
		}
		name = target
	}
}

func (w *worker) seen(name string, n int) bool {
	for _, v := range w.visited[:n] {
		if v == name {
			return true
		}
	}
	return false
}

// success adds the records of a positive answer at name (the query
// name, or a CNAME's target: a wildcard's records are owned by it). Minimal
// ANY (RFC 8482 4.1) is one RRset already.
func (w *worker) success(z *zones.Zone, name string, set zones.RRset) {
	n := len(w.resp.recs)
	w.addSet(secAnswer, set, name, false)
	if set.Type() == dns.TypeSOA {
		if v, ok := w.serials[z.SOA]; ok {
			for i := n; i < len(w.resp.recs); i++ {
				w.resp.recs[i].serial, w.resp.recs[i].soaSer = true, v
			}
		}
	}
	w.signSet(n, set)
}

// addSet adds the records of set to section sect, owned by owner (""
// for the set's own owner).
func (w *worker) addSet(sect uint8, set zones.RRset, owner string, optional bool) {
	if owner == "" {
		owner = set.Owner()
	}
	typ := set.Type()
	for r := range set.All() {
		x := w.resp.next()
		x.sect, x.kind, x.optional, x.typ, x.class, x.ttl, x.owner, x.rdata = sect, recZone, optional, typ, dns.ClassINET, r.TTL, owner, r.Rdata
	}
}

// negative adds z's SOA to the authority section with the negative TTL,
// min(SOA TTL, SOA minimum) (RFC 2308 3).
func (w *worker) negative(z *zones.Zone) {
	if z.SOA == nil {
		return
	}
	r := rec{sect: secAuthority, kind: recZone, typ: dns.TypeSOA, class: dns.ClassINET, owner: z.Origin,
		ttl: min(z.SOA.Hdr.Ttl, z.SOA.Minttl), rdata: z.SOARdata()}
	if v, ok := w.serials[z.SOA]; ok {
		r.serial, r.soaSer = true, v
	}
	n := len(w.resp.recs)
	w.resp.add(r)
	if w.sg.zone != nil {
		w.signDynamic(n)
	}
}

// pool answers a POOL name from the selector. It returns the CNAME target
// to follow when the chosen member is a host name, else "".
func (w *worker) pool(snap *Snapshot, z *zones.Zone, name string, res *zones.Result) string {
	q := &w.q
	resp := &w.resp
	var fams [2]selector.Family
	switch q.qtype {
	case dns.TypeA:
		fams = [2]selector.Family{selector.IPv4}
	case dns.TypeAAAA:
		fams = [2]selector.Family{selector.IPv6}
	case dns.TypeANY:
		fams = [2]selector.Family{selector.IPv4, selector.IPv6}
	default:
		w.negative(z)
		w.denial(z, name, res.Owner, false, q.qtype)
		return ""
	}
	if res.Pool < 0 || res.Pool >= snap.Pools.Len() {
		resp.rcode = dns.RcodeServerFailure
		return ""
	}
	p := snap.Pools.At(res.Pool)
	for _, fam := range fams {
		if fam == 0 {
			break
		}
		a := p.Select(&w.client, fam, w.scratch)
		if s := uint8(min(max(a.Scope, 0), int(w.client.SourcePrefix))); s > resp.scope {
			resp.scope = s
		}
		if len(a.Members) == 0 {
			continue
		}
		ttl := a.TTL
		if ttl == 0 {
			ttl = res.PoolTTL
		}
		if host := a.CNAME(); host != "" {
			return w.poolCNAME(&a, name, host, ttl)
		}
		counters := w.poolCounters(a.Pool)
		n := len(resp.recs)
		for _, i := range a.Members {
			m := &a.Pool.Members[i]
			if m.Host != "" || m.Addr.Is4() != (fam == selector.IPv4) {
				continue
			}
			typ := dns.TypeAAAA
			if m.Addr.Is4() {
				typ = dns.TypeA
			}
			x := resp.next()
			x.sect, x.kind, x.typ, x.class, x.owner, x.ttl, x.addr = secAnswer, recA, typ, dns.ClassINET, name, ttl, m.Addr
			if i < len(counters) {
				counters[i].Add(1)
			}
		}
		if w.sg.zone != nil && len(resp.recs) > n {
			w.signDynamic(n)
		}
		return ""
	}
	w.negative(z)
	w.denial(z, name, res.Owner, false, q.qtype)
	return ""
}

// poolCNAME answers with a's host-name member, host: a CNAME to it, to
// follow unless the question is ANY. Apart from pool, so that pool's
// frame does not carry a record built on the stack.
//
//go:noinline
func (w *worker) poolCNAME(a *selector.Answer, name, host string, ttl uint32) string {
	if cs := w.poolCounters(a.Pool); a.Members[0] < len(cs) {
		cs[a.Members[0]].Add(1)
	}
	resp := &w.resp
	n := len(resp.recs)
	x := resp.next()
	x.sect, x.kind, x.typ, x.class, x.owner, x.ttl, x.target = secAnswer, recCNAME, dns.TypeCNAME, dns.ClassINET, name, ttl, host
	if w.sg.zone != nil {
		w.signDynamic(n)
	}
	if w.q.qtype == dns.TypeANY {
		return ""
	}
	return host
}

// chaos answers the CHAOS-class names that identify a server.
func (w *worker) chaos(snap *Snapshot) {
	q := &w.q
	resp := &w.resp
	switch q.name {
	case "id.server.", "hostname.bind.":
	default:
		resp.rcode = dns.RcodeRefused
		return
	}
	resp.aa = true
	if q.qtype == dns.TypeTXT || q.qtype == dns.TypeANY {
		resp.add(rec{sect: secAnswer, kind: recTXT, typ: dns.TypeTXT, class: dns.ClassCHAOS, owner: q.name, target: snap.NodeName})
	}
}
