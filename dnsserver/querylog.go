package dnsserver

import (
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// The query log: a sample of the queries answered, one log line each, as
// CoreDNS's log plugin writes them. The query path only decides whether a
// query is sampled (a nil check when the log is off; a step of the
// worker's own random generator when it is on) and copies a fixed-size
// entry into a bounded channel without blocking; Run's logger goroutine
// formats and writes it. When the channel is full the entry is dropped
// and counted (tern_dns_query_log_dropped_total), so a slow log sink never
// slows answers.

// queryLogQueue is how many sampled queries wait for the logger.
const queryLogQueue = 256

// queryLog is the sampling decision of one policy.
type queryLog struct {
	// threshold: a query is sampled when the worker's next random
	// number is below it; all: every query is (sample 1).
	threshold uint64
	all       bool
}

// newQueryLog returns the query log of sample (0 < sample <= 1), nil for
// none.
func newQueryLog(sample float64) *queryLog {
	switch {
	case !(sample > 0):
		return nil
	case sample >= 1:
		return &queryLog{all: true}
	}
	return &queryLog{threshold: uint64(sample * math.MaxUint64)}
}

// queryEntry is one sampled query, copied out of the worker's buffers.
type queryEntry struct {
	at       time.Time
	took     time.Duration
	client   netip.Addr
	tcp      bool
	qtype    uint16
	qclass   uint16
	rcode    uint16
	answers  uint16
	size     uint16
	do, tc   bool
	nameLen  uint8
	name     [maxNameWire]byte // presentation form, lower case
	nameMore bool              // the name was longer than name holds (escapes)
	// ecs is the query's EDNS Client Subnet (RFC 7871) and scope the
	// scope prefix the answer echoed with it; ecs is invalid when the
	// query carried none (or a malformed one, answered FORMERR).
	ecs   netip.Prefix
	scope uint8
}

// sampled reports whether the query just answered is logged; the
// worker's random state advances only when the log is on.
func (w *worker) sampled(ql *queryLog) bool {
	if ql.all {
		return true
	}
	// xorshift64*: a few instructions, no lock, per worker.
	x := w.rng
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	w.rng = x
	return x*2685821657736338717 < ql.threshold
}

// logQuery queues the query just answered with out for the logger. It
// never blocks and never allocates. took is how long the handler took
// (on the monotonic clock); the entry's wall-clock time, when the query
// came, is read here, so only sampled queries pay for the wall clock.
func (w *worker) logQuery(out []byte, src netip.Addr, tcp bool, took time.Duration) {
	if w.qlogCh == nil {
		return
	}
	e := queryEntry{client: src, tcp: tcp, qtype: w.q.qtype, qclass: w.q.qclass, rcode: uint16(w.resp.rcode),
		size: uint16(min(len(out), math.MaxUint16)), do: w.q.ednsDO}
	if len(out) >= headerLen { // what went out: TC and ANCOUNT after truncation
		e.tc = binary.BigEndian.Uint16(out[2:])&flagTC != 0
		e.answers = binary.BigEndian.Uint16(out[6:])
	}
	e.at, e.took = time.Now().Add(-took), took
	e.nameLen = uint8(copy(e.name[:], w.q.qname))
	e.nameMore = len(w.q.qname) > len(e.name)
	if w.q.ecs && w.q.ecsFamily != 0 {
		e.ecs = netip.PrefixFrom(w.q.ecsAddr, int(w.q.ecsSource))
		e.scope = w.resp.scope
	}
	select {
	case w.qlogCh <- e:
	default:
		if w.stats != nil {
			w.stats.queryLogDropped.Add(1)
		}
	}
}

// runQueryLog writes queued entries to log until ctx ends.
func runQueryLog(ctx context.Context, ch <-chan queryEntry, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-ch:
			writeQuery(ctx, log, &e)
		}
	}
}

func writeQuery(ctx context.Context, log *slog.Logger, e *queryEntry) {
	proto := "udp"
	if e.tcp {
		proto = "tcp"
	}
	name := string(e.name[:e.nameLen])
	if name == "" {
		name = "."
	}
	if e.nameMore {
		name += "..."
	}
	attrs := [...]slog.Attr{
		slog.Time("at", e.at),
		slog.String("client", e.client.String()),
		slog.String("proto", proto),
		slog.String("qname", name),
		slog.String("qtype", dns.Type(e.qtype).String()),
		slog.String("qclass", dns.Class(e.qclass).String()),
		slog.String("rcode", rcodeLabel(int(e.rcode))),
		slog.Int("answers", int(e.answers)),
		slog.Int("size", int(e.size)),
		slog.Bool("do", e.do),
		slog.Bool("tc", e.tc),
		slog.Duration("duration", e.took),
		{}, {}, // ecs and scope, when the query had a client subnet
	}
	n := len(attrs) - 2
	if e.ecs.IsValid() {
		attrs[n] = slog.String("ecs", e.ecs.String())
		attrs[n+1] = slog.Int("scope", int(e.scope))
		n += 2
	}
	log.LogAttrs(ctx, slog.LevelInfo, "query", attrs[:n]...)
}

// seed is a worker's random state: never zero.
func seed() uint64 { return rand.Uint64() | 1 }
