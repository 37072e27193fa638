package dnsserver

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/ternlb/tern/selector"
	"github.com/ternlb/tern/zones"
)

// Query types counted under their own label; every other is "other", so
// a client cannot grow the label set.
var countedTypes = [...]uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeMX, dns.TypeNS, dns.TypeSOA,
	dns.TypeTXT, dns.TypeSRV, dns.TypePTR, dns.TypeCAA, dns.TypeHTTPS, dns.TypeSVCB,
	dns.TypeDS, dns.TypeDNSKEY, dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR,
}

const (
	nTypes  = len(countedTypes) + 1 // + other
	nRcodes = 24                    // 0-23: every rcode Tern sends (BADVERS is 16)
)

func typeIndex(t uint16) int {
	for i, c := range countedTypes {
		if c == t {
			return i
		}
	}
	return len(countedTypes)
}

func typeLabel(i int) string {
	if i == len(countedTypes) {
		return "other"
	}
	return dns.TypeToString[countedTypes[i]]
}

func rcodeLabel(r int) string {
	if r == rcodeBadVers {
		return "BADVERS"
	}
	if s, ok := dns.RcodeToString[r]; ok {
		return s
	}
	return strconv.Itoa(r)
}

// zoneCounters counts one zone's queries by rcode and qtype.
type zoneCounters struct {
	n [nRcodes][nTypes]atomic.Uint64
}

// latencyBuckets are the response time histogram's upper bounds.
var latencyBuckets = [...]time.Duration{
	time.Microsecond, 2 * time.Microsecond, 5 * time.Microsecond, 10 * time.Microsecond,
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond,
	time.Millisecond, 5 * time.Millisecond, 25 * time.Millisecond,
}

// Outcomes of transfers and NOTIFYs.
const (
	xfrOK = iota
	xfrRefused
	xfrFailed
	notifyAcked  = 0
	notifyFailed = 1
)

// stats is what the query path counts, in atomics only: the collector
// reads them at scrape time.
type stats struct {
	mu      sync.Mutex // guards zones, members: Store and Collect only
	zones   map[string]*zoneCounters
	members map[[2]string]*atomic.Uint64 // pool, member
	none    zoneCounters                 // queries for no served zone

	buckets [len(latencyBuckets) + 1]atomic.Uint64
	sumNs   atomic.Uint64

	transfers [3]atomic.Uint64
	notifies  [2]atomic.Uint64
	// RRL's counters, here so that they outlive a limiter Reconfigure
	// replaces.
	rrlDropped, rrlSlipped atomic.Uint64
	// queryLogDropped counts sampled queries the query log had no room
	// for.
	queryLogDropped atomic.Uint64
}

func newStats() *stats {
	return &stats{zones: map[string]*zoneCounters{}, members: map[[2]string]*atomic.Uint64{}}
}

// index builds, for a new snapshot, the maps the query path counts
// through: zone -> its counters, pool -> one counter per member. Counters
// of names in the snapshot are kept across snapshots; those of zones,
// pools and members it no longer has are dropped.
func (st *stats) index(snap *Snapshot, cur *served) {
	st.mu.Lock()
	defer st.mu.Unlock()
	cur.zstats = map[*zones.Zone]*zoneCounters{}
	keepZones := map[string]*zoneCounters{}
	if snap.Zones != nil {
		for _, z := range snap.Zones.Zones() {
			c := st.zones[z.Origin]
			if c == nil {
				c = new(zoneCounters)
			}
			keepZones[z.Origin] = c
			cur.zstats[z] = c
		}
	}
	st.zones = keepZones
	cur.pstats = map[*selector.Member][]*atomic.Uint64{}
	keep := map[[2]string]*atomic.Uint64{}
	for _, p := range snap.Pools.All() {
		if p == nil {
			continue
		}
		cs := make([]*atomic.Uint64, len(p.Members))
		for i, m := range p.Members {
			k := [2]string{p.Name, m.Name()}
			c := st.members[k]
			if c == nil {
				c = new(atomic.Uint64)
			}
			keep[k] = c
			cs[i] = c
		}
		if k := poolKey(p); k != nil {
			cur.pstats[k] = cs
		}
	}
	st.members = keep
}

// count records one answered query; took is how long the handler took
// when timed (see timeEvery).
func (w *worker) count(cur *served, took time.Duration, timed bool) {
	st := w.stats
	zc := &st.none
	if z := w.zone; z != nil {
		if z != w.zcZone || cur != w.zcCur {
			w.zcCur, w.zcZone, w.zc = cur, z, cur.zstats[z]
		}
		if w.zc != nil {
			zc = w.zc
		}
	}
	r := w.resp.rcode
	if r < 0 || r >= nRcodes {
		r = nRcodes - 1
	}
	zc.n[r][typeIndex(w.q.qtype)].Add(1)
	if !timed {
		return
	}
	b := len(latencyBuckets)
	for i, ub := range latencyBuckets {
		if took <= ub {
			b = i
			break
		}
	}
	st.buckets[b].Add(1)
	st.sumNs.Add(uint64(took))
}

var (
	descQueries         = prometheus.NewDesc("tern_dns_queries_total", "DNS queries answered (or dropped by RRL), by zone (served zone origin or none), query type (a known set, else other) and response code.", []string{"zone", "qtype", "rcode"}, nil)
	descAnswers         = prometheus.NewDesc("tern_dns_pool_answers_total", "Times a pool member was given in an answer, by pool and member.", []string{"pool", "member"}, nil)
	descLatency         = prometheus.NewDesc("tern_dns_response_seconds", fmt.Sprintf("Time the handler took to answer a query (parse, look up, select, pack), not counting socket I/O. A sample: one query in %d of each socket or connection is timed, and every query the query log takes.", timeEvery), nil, nil)
	descRRL             = prometheus.NewDesc("tern_dns_rrl_responses_total", "Responses response rate limiting held back: dropped (sent nothing) or slipped (sent truncated, TC=1). Slipped ones are counted in dropped too.", []string{"action"}, nil)
	descTransfers       = prometheus.NewDesc("tern_dns_transfers_total", "Zone transfer requests (AXFR, IXFR) by result: ok, refused (not allowed, bad TSIG) or failed (the connection broke).", []string{"result"}, nil)
	descQueryLogDropped = prometheus.NewDesc("tern_dns_query_log_dropped_total", "Sampled queries the query log (node.query_log) dropped because its queue was full: the log sink is slower than the sample rate.", nil, nil)
	descNotifies        = prometheus.NewDesc("tern_dns_notifies_total", "NOTIFY messages to secondaries by result: acked, or failed after every retry.", []string{"result"}, nil)
	descSerial          = prometheus.NewDesc("tern_dns_zone_serial", "The SOA serial each zone is served and transferred with.", []string{"zone"}, nil)
)

// collector exposes a Server's counters to Prometheus.
type collector struct{ s *Server }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueries, descAnswers, descLatency, descRRL, descTransfers, descNotifies, descQueryLogDropped, descSerial} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.stats
	st.mu.Lock()
	zs := make(map[string]*zoneCounters, len(st.zones)+1)
	for k, v := range st.zones {
		zs[k] = v
	}
	ms := make(map[[2]string]*atomic.Uint64, len(st.members))
	for k, v := range st.members {
		ms[k] = v
	}
	st.mu.Unlock()
	zs["none"] = &st.none
	for zone, zc := range zs {
		for r := range zc.n {
			for t := range zc.n[r] {
				if v := zc.n[r][t].Load(); v > 0 {
					ch <- prometheus.MustNewConstMetric(descQueries, prometheus.CounterValue, float64(v), zone, typeLabel(t), rcodeLabel(r))
				}
			}
		}
	}
	for k, v := range ms {
		ch <- prometheus.MustNewConstMetric(descAnswers, prometheus.CounterValue, float64(v.Load()), k[0], k[1])
	}
	var count uint64
	bounds := map[float64]uint64{}
	for i := range st.buckets {
		count += st.buckets[i].Load()
		if i < len(latencyBuckets) {
			bounds[latencyBuckets[i].Seconds()] = count
		}
	}
	ch <- prometheus.MustNewConstHistogram(descLatency, count, float64(st.sumNs.Load())/1e9, bounds)
	var dropped, slipped uint64
	dropped, slipped = st.rrlDropped.Load(), st.rrlSlipped.Load()
	ch <- prometheus.MustNewConstMetric(descRRL, prometheus.CounterValue, float64(dropped), "dropped")
	ch <- prometheus.MustNewConstMetric(descRRL, prometheus.CounterValue, float64(slipped), "slipped")
	for i, r := range []string{"ok", "refused", "failed"} {
		ch <- prometheus.MustNewConstMetric(descTransfers, prometheus.CounterValue, float64(st.transfers[i].Load()), r)
	}
	ch <- prometheus.MustNewConstMetric(descQueryLogDropped, prometheus.CounterValue, float64(st.queryLogDropped.Load()))
	for i, r := range []string{"acked", "failed"} {
		ch <- prometheus.MustNewConstMetric(descNotifies, prometheus.CounterValue, float64(st.notifies[i].Load()), r)
	}
	if cur := c.s.cur.Load(); cur != nil {
		for origin, zx := range cur.xfr {
			ch <- prometheus.MustNewConstMetric(descSerial, prometheus.GaugeValue, float64(zx.serial), origin)
		}
	}
}

// Collectors returns the server's metrics for a prometheus.Registry.
func (s *Server) Collectors() []prometheus.Collector { return []prometheus.Collector{collector{s}} }

// QueryCounts returns the queries counted since the server started, in all
// and by response code name: the same counters tern_dns_queries_total
// exports, summed over zones and types.
func (s *Server) QueryCounts() (total uint64, byRcode map[string]uint64) {
	st := s.stats
	st.mu.Lock()
	zs := make([]*zoneCounters, 0, len(st.zones)+1)
	for _, z := range st.zones {
		zs = append(zs, z)
	}
	st.mu.Unlock()
	zs = append(zs, &st.none)
	byRcode = map[string]uint64{}
	for _, z := range zs {
		for r := range z.n {
			for t := range z.n[r] {
				if v := z.n[r][t].Load(); v > 0 {
					total += v
					byRcode[rcodeLabel(r)] += v
				}
			}
		}
	}
	return total, byRcode
}

// PoolAnswers returns how many times each pool member was given in an
// answer since the server started, by pool and member name: the counters
// tern_dns_pool_answers_total exports.
func (s *Server) PoolAnswers() map[[2]string]uint64 {
	st := s.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make(map[[2]string]uint64, len(st.members))
	for k, c := range st.members {
		out[k] = c.Load()
	}
	return out
}
