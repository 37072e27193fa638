package dnsserver

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/internal/eventually"
)

// fakeSecondary records the NOTIFYs it gets; it ignores the first
// `ignore` of them, so the sender has to retry.
type fakeSecondary struct {
	mu     sync.Mutex
	got    []uint32 // serials, in order acknowledged
	tsigOK []bool
	ignore int
}

func (f *fakeSecondary) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Opcode != dns.OpcodeNotify || len(r.Answer) != 1 {
		return
	}
	if f.ignore > 0 {
		f.ignore--
		return
	}
	f.got = append(f.got, r.Answer[0].(*dns.SOA).Serial)
	f.tsigOK = append(f.tsigOK, r.IsTsig() != nil && w.TsigStatus() == nil)
	m := new(dns.Msg)
	m.SetReply(r)
	if t := r.IsTsig(); t != nil {
		m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	}
	w.WriteMsg(m)
}

func (f *fakeSecondary) serials() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint32(nil), f.got...)
}

func startSecondary(t *testing.T, f *fakeSecondary) netip.AddrPort {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: f, TsigSecret: map[string]string{"xfr.": testSecret}}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.ShutdownContext(context.Background()) })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestNotify: the first Store and every change of a zone's serial send a
// TSIG-signed NOTIFY to each secondary, retried until acknowledged; a
// Store that changes nothing sends none.
func TestNotify(t *testing.T) {
	f := &fakeSecondary{ignore: 1}
	sec := startSecondary(t, f)
	o := xfrOptions()
	o.Notify = []NotifyTarget{{Addr: sec, Key: "xfr"}}
	s, err := New(Options{Addrs: []string{"127.0.0.1:0"}, UDPSockets: 1, TSIGKeys: o.TSIGKeys, TransferAllow: o.TransferAllow, Notify: o.Notify})
	if err != nil {
		t.Fatal(err)
	}
	s.notify.backoff = 50 * time.Millisecond
	s.notify.timeout = 200 * time.Millisecond
	snap := testSnapshot(t)
	file := snap.Zones.Zone("example.test.").SOA.Serial
	s.Store(snap)
	runServer(t, s)
	eventually.True(t, 10*time.Second, func() bool { return len(f.serials()) >= 2 }, "the first NOTIFY, after one retry")
	// Two zones: example.test. and inner.example.test.; one was ignored
	// once and retried.
	s.Store(testSnapshot(t)) // same content: no NOTIFY
	changed := testSnapshot(t)
	changed.Pools.At(poolIndex(t, changed, "web")).Members[0].Addr = netip.MustParseAddr("192.0.2.99")
	s.Store(changed)
	eventually.True(t, 10*time.Second, func() bool {
		for _, v := range f.serials() {
			if v == file+1 {
				return true
			}
		}
		return false
	}, "the NOTIFY of the new serial")
	got := f.serials()
	if len(got) != 3 {
		t.Errorf("NOTIFYs acknowledged for serials %v, want 3 (two zones, then one change)", got)
	}
	f.mu.Lock()
	for i, ok := range f.tsigOK {
		if !ok {
			t.Errorf("NOTIFY %d was not signed with a valid TSIG", i)
		}
	}
	f.mu.Unlock()
	// The secondary records a NOTIFY before its answer reaches the
	// server, which counts the ack only then.
	eventually.True(t, 5*time.Second, func() bool { return s.stats.notifies[notifyAcked].Load() == 3 }, "acked counter at 3")
}
