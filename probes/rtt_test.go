package probes

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/ternlb/tern/config"
)

// The EWMA's weight halves every half-life of time between samples.
func TestRTTHalfLife(t *testing.T) {
	var s state
	t0 := time.Unix(1000, 0)
	s.sample(10*time.Millisecond, t0, 30*time.Second)
	if s.rttEWMA != 0.010 {
		t.Fatalf("first sample: %g, want it taken whole", s.rttEWMA)
	}
	// One half-life later a sample of 30ms moves the average half way.
	s.sample(30*time.Millisecond, t0.Add(30*time.Second), 30*time.Second)
	if math.Abs(s.rttEWMA-0.020) > 1e-12 {
		t.Fatalf("after one half-life: %g, want 0.020", s.rttEWMA)
	}
	// Many samples of 100ms a second apart converge on it.
	at := t0.Add(30 * time.Second)
	n := 0
	for ; s.rttEWMA < 0.099; n++ {
		at = at.Add(time.Second)
		s.sample(100*time.Millisecond, at, 30*time.Second)
	}
	// 80ms of gap to close to within 1ms: log2(80) half-lives of 30s.
	if want := int(math.Ceil(30 * math.Log2(80))); n > want+1 || n < want-1 {
		t.Fatalf("converged in %d samples a second apart, want about %d", n, want)
	}
}

// A smoothed RTT is passed on only when it moved by more than the
// hysteresis fraction and a millisecond.
func TestRTTHysteresis(t *testing.T) {
	for _, tc := range []struct {
		name       string
		sent, now  time.Duration
		frac       float64
		wantPassed bool
	}{
		{"first value", 0, 5 * time.Millisecond, 0.1, true},
		{"within the fraction", 50 * time.Millisecond, 54 * time.Millisecond, 0.1, false},
		{"past the fraction", 50 * time.Millisecond, 56 * time.Millisecond, 0.1, true},
		{"past the fraction, under a millisecond", 2 * time.Millisecond, 2*time.Millisecond + 900*time.Microsecond, 0.1, false},
		{"down past the fraction", 50 * time.Millisecond, 40 * time.Millisecond, 0.1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := state{rttSeen: true, rttEWMA: tc.now.Seconds()}
			if tc.sent > 0 {
				s.sent.Latency, s.sent.HasLatency = tc.sent, true
			}
			v := s.verdict(Key{}, 0, tc.frac)
			if passed := v.Latency != tc.sent; passed != tc.wantPassed {
				t.Fatalf("latency %v (sent %v, smoothed %v): passed on %v, want %v", v.Latency, tc.sent, tc.now, passed, tc.wantPassed)
			}
		})
	}
}

// Each check type measures its own round trip: an HTTP check the time
// to the first byte, so a backend that delays its answer measures slow.
func TestCheckMeasuresRTT(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(80 * time.Millisecond)
		w.Write([]byte("ok"))
	}))
	defer slow.Close()
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer fast.Close()
	rtt := func(t *testing.T, typ, addr string) time.Duration {
		host, port, _ := net.SplitHostPort(addr)
		pn, _ := strconv.Atoi(port)
		c := config.Check{Type: typ, Port: pn, Interval: config.Duration(time.Second), Timeout: config.Duration(time.Second),
			Method: "GET", Path: "/", ExpectStatus: []int{200}}
		if typ == "tcp" {
			c.Method, c.Path, c.ExpectStatus = "", "", nil
		}
		ch, err := newChecker("c", c)
		if err != nil {
			t.Fatal(err)
		}
		r := ch.run(context.Background(), &target{host: host, port: pn, check: ch})
		if r.outcome != outcomeUp {
			t.Fatalf("%s check of %s: %v", typ, addr, r.err)
		}
		return r.rtt
	}
	fastHTTP, slowHTTP := rtt(t, "http", fast.Listener.Addr().String()), rtt(t, "http", slow.Listener.Addr().String())
	if slowHTTP < 80*time.Millisecond || fastHTTP <= 0 || fastHTTP >= slowHTTP {
		t.Fatalf("http time to first byte: fast %v, slow %v (delays its answer 80ms)", fastHTTP, slowHTTP)
	}
	if tcp := rtt(t, "tcp", slow.Listener.Addr().String()); tcp <= 0 || tcp >= 80*time.Millisecond {
		t.Fatalf("tcp connect to the slow server: %v, want the connect alone (it accepts at once)", tcp)
	}
}
