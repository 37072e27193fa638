package dnsserver

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzHandler feeds random bytes to the query handler as a UDP or TCP
// query: it must answer with a well-formed response to that query, or
// not at all, and never panic (a recovered panic is logged: the test
// fails on it too). Seeds are in testdata/fuzz/FuzzHandler.
func FuzzHandler(f *testing.F) {
	snap := testSnapshot(f)
	s := &Server{stats: newStats()}
	pol, err := s.buildPolicy(Options{TSIGKeys: []TSIGKey{{Name: "xfr", Secret: testSecret}}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rawQuery(), false)
	signed, _ := signQuery(f, withEDNS(newQuery("static.example.test.", dns.TypeA), 1232), "xfr.", "", testSecret, time.Now())
	f.Add(signed, false)
	f.Add(packMsg(f, cookieQuery([]byte("0123456789abcdef01234567"))), true)
	f.Fuzz(func(t *testing.T, msg []byte, tcp bool) {
		w := newWorker(1232, slog.New(slog.NewTextHandler(io.Discard, nil)))
		w.keys, w.cookieKey = pol.byWire, pol.cookie
		fuzzAnswer(t, w, snap, msg, tcp)
	})
}

// fuzzAnswer has w answer msg from snap and checks what any response
// must be: no panic, a response that parses, with the query's ID, QR set,
// UDP-sized. It returns the response, nil for none.
func fuzzAnswer(t *testing.T, w *worker, snap *Snapshot, msg []byte, tcp bool) *dns.Msg {
	t.Helper()
	panicked := false
	w.log = slog.New(panicSpy{&panicked})
	out := w.handle(&served{snap: snap}, msg, netip.MustParseAddr("192.0.2.99"), tcp)
	if panicked {
		t.Fatalf("handler panicked on %x", msg)
	}
	if out == nil {
		return nil
	}
	var r dns.Msg
	if err := r.Unpack(out); err != nil {
		t.Fatalf("response %x to %x does not parse: %v", out, msg, err)
	}
	if len(msg) < 2 || r.Id != binary.BigEndian.Uint16(msg) || !r.Response {
		t.Fatalf("response id %d QR %v to query %x", r.Id, r.Response, msg)
	}
	if !tcp && len(out) > 1232 {
		t.Fatalf("UDP response of %d bytes", len(out))
	}
	if len(r.Question) > 1 || r.RecursionAvailable {
		t.Fatalf("response %v", &r)
	}
	if r.Rcode == dns.RcodeSuccess && len(r.Question) != 1 {
		t.Fatalf("NOERROR without the question: %v", &r)
	}
	return &r
}

// panicSpy is a slog handler that notes an error record (the handler logs
// only recovered panics at error level).
type panicSpy struct{ hit *bool }

func (p panicSpy) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (p panicSpy) Handle(context.Context, slog.Record) error    { *p.hit = true; return nil }
func (p panicSpy) WithAttrs([]slog.Attr) slog.Handler           { return p }
func (p panicSpy) WithGroup(string) slog.Handler                { return p }
