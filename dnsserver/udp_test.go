package dnsserver

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestUDPStopPrompt stops a server whose readers are all blocked in a
// read: each is woken at once, well before the sockets' 1 s receive
// timeout would let it notice, and the Ps lent for them are taken back.
func TestUDPStopPrompt(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	s, err := New(Options{Addrs: []string{"127.0.0.1:0"}, UDPSockets: 4})
	if err != nil {
		t.Fatal(err)
	}
	s.Store(testSnapshot(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	exchange(t, "udp", s.Addrs()[0].String(), newQuery("static.example.test.", dns.TypeA))
	want := before
	if udpHoldsP {
		want += 4
	}
	if got := runtime.GOMAXPROCS(0); got != want {
		t.Errorf("GOMAXPROCS %d while serving, want %d", got, want)
	}
	time.Sleep(50 * time.Millisecond) // every reader back in its read
	// Stopping the world stops readers blocked in a read, at once.
	for range 3 {
		start := time.Now()
		runtime.GC()
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("a garbage collection took %v with the readers idle", d)
		}
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("Run took %v to return", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Errorf("GOMAXPROCS %d after Run, want %d", got, before)
	}
}

// TestUDPLoopAllocs: a query's whole trip through the UDP loop (read,
// answer, send) allocates nothing, client included.
func TestUDPLoopAllocs(t *testing.T) {
	if raceOn {
		t.Skip("-race allocates")
	}
	_, addr := startServer(t, testSnapshot(t), Options{UDPSockets: 1})
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	msgs := [][]byte{
		packMsg(t, newQuery("www.example.test.", dns.TypeA)),    // a pool
		packMsg(t, newQuery("static.example.test.", dns.TypeA)), // static
		packMsg(t, newQuery("nothere.example.test.", dns.TypeA)),
	}
	buf := make([]byte, 1500)
	i := 0
	trip := func() {
		if _, err := c.Write(msgs[i%len(msgs)]); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		i++
	}
	for range 100 {
		trip()
	}
	// Not testing.AllocsPerRun: it sets GOMAXPROCS to 1, below what the
	// Linux loop's readers are lent (see lendProcs).
	const n = 2000
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range n {
		trip()
	}
	runtime.ReadMemStats(&m1)
	// A stray allocation elsewhere in the process is not the loop's; one
	// per query would be 2000.
	if got := float64(m1.Mallocs-m0.Mallocs) / n; got >= 0.05 {
		t.Errorf("%.3f allocations per query", got)
	}
}
