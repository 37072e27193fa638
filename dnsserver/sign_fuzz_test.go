package dnsserver

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/selector"
)

// FuzzSignedPoolAnswers sets the pools' members up, down or drained from
// the input, answers pool names with DO (from a client the input picks,
// with or without ECS) and verifies every signature of the response: no
// pool state makes an answer whose signature fails, and a state met
// again is answered from the cache with signatures that still verify.
func FuzzSignedPoolAnswers(f *testing.F) {
	f.Add([]byte{0xFF, 0xFF, 0, 1, 2, 3})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0x55, 0xAA, 7, 200, 1})
	snap, keys := signedSnapshot(f)
	base := snap.Pools
	names := []string{"www.example.test.", "two.example.test.", "sticky.example.test.", "v4only.example.test.", "none.example.test.", "towww.example.test."}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		bit := func(i int) byte {
			if len(in) == 0 {
				return 0
			}
			return in[(i/4)%len(in)] >> (2 * (i % 4)) & 3
		}
		s := *snap
		pools := base.Edit()
		k := 0
		for i, p := range base.All() {
			if p == nil {
				continue
			}
			st := make([]selector.Status, len(p.Members))
			for j := range st {
				v := bit(k)
				k++
				st[j] = selector.Status{Up: v != 0, Drain: v == 3}
			}
			pools.Set(i, p.WithStatus(st))
		}
		s.Pools = pools.Table()
		w := newWorker(1232, log)
		cur := &served{snap: &s}
		for qi, name := range names {
			for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeANY} {
				var src netip.Addr
				m := doQuery(name, qtype, 1232)
				if len(in) > qi && in[qi]&1 == 1 {
					m = doQuery(name, qtype, 1232, ecsOption(1, 24, netip.AddrFrom4([4]byte{198, 51, in[qi], 0}).String()))
				}
				src = netip.AddrFrom4([4]byte{192, 0, 2, byte(qi)})
				msg := packMsg(t, m)
				for range 2 { // a miss, then (for the same answer) a hit
					out := w.handle(cur, msg, src, false)
					r := new(dns.Msg)
					if err := r.Unpack(out); err != nil {
						t.Fatalf("%s %s: unpack: %v", name, dns.Type(qtype), err)
					}
					checkSigned(t, r, keys)
				}
			}
		}
	})
}

// FuzzSignedHandler is FuzzHandler against signed zones: any request,
// DO or not, is answered without a panic, with a response that parses,
// whose signatures all verify.
func FuzzSignedHandler(f *testing.F) {
	snap, keys := signedSnapshot(f)
	for _, m := range []*dns.Msg{
		doQuery("www.example.test.", dns.TypeA, 1232),
		doQuery("nothere.example.test.", dns.TypeAAAA, 512),
		doQuery("a.sub.example.test.", dns.TypeA, 1232),
		doQuery("example.test.", dns.TypeDNSKEY, 4096),
		doQuery("big.example.test.", dns.TypeTXT, 512),
	} {
		f.Add(packMsg(f, m))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		w := newWorker(1232, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if r := fuzzAnswer(t, w, snap, msg, false); r != nil {
			checkSignatures(t, r, keys)
		}
	})
}
