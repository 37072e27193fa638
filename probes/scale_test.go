package probes

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestScale probes TERN_SCALE_MEMBERS members (default 2000) every second
// for TERN_SCALE_SECONDS (default 10) with a tcp or http check
// (TERN_SCALE_CHECK), served by a child process listening on 32 loopback
// addresses, and reports how late probes start and how much CPU this
// process (the prober alone) used. Slow, so behind TERN_SCALE=1:
//
//	TERN_SCALE=1 go test -run '^TestScale$' -v -count=1 ./probes/
func TestScale(t *testing.T) {
	if os.Getenv("TERN_SCALE") == "" {
		t.Skip("set TERN_SCALE=1 to run the 2,000-member scale test")
	}
	n := envInt(t, "TERN_SCALE_MEMBERS", 2000)
	secs := envInt(t, "TERN_SCALE_SECONDS", 10)
	kind := os.Getenv("TERN_SCALE_CHECK")
	if kind == "" {
		kind = "tcp"
	}
	addrs, stopServer := scaleServer(t, kind)

	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "      - {address: 10.%d.%d.%d, probe: %q}\n", i>>16&255, i>>8&255, i&255, addrs[i%len(addrs)])
	}
	check := "{type: tcp, port: 1, interval: 1s, timeout: 500ms, rise: 2, fall: 2}"
	if kind == "http" {
		check = "{type: http, path: /healthz, expect_body: ok, interval: 1s, timeout: 500ms, rise: 2, fall: 2}"
	}
	c := testConfig(t, "  c: "+check+"\n", "  p:\n    check: c\n    members:\n"+b.String())
	p, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	late := make([]time.Duration, 0, n*(secs+2))
	var first []time.Duration // the first 1.5s, from a burst by design
	var firstDue time.Time    // every first-round probe has this due time
	p.onStart = func(_ *target, due, start time.Time) {
		mu.Lock()
		if firstDue.IsZero() {
			firstDue = due
		}
		if due.Sub(firstDue) < 1500*time.Millisecond {
			// The first round and the slots right after it, which
			// queue behind that burst.
			first = append(first, start.Sub(due))
		} else {
			late = append(late, start.Sub(due))
		}
		mu.Unlock()
	}

	// A canary sleeping 10ms at a time measures how late this process
	// gets the CPU at all: on a shared machine that, not the prober, can
	// be what makes probes late.
	var stalls []time.Duration
	canaryDone := make(chan struct{})
	canaryCtx, stopCanary := context.WithCancel(context.Background())
	go func() {
		defer close(canaryDone)
		for canaryCtx.Err() == nil {
			t0 := time.Now()
			time.Sleep(10 * time.Millisecond)
			stalls = append(stalls, time.Since(t0)-10*time.Millisecond)
		}
	}()

	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	if err := p.FirstRound(context.Background(), 5*time.Second); err != nil {
		t.Errorf("first round: %v", err)
	}
	firstRound := time.Since(begin)
	// Slots that follow the first round closely are skipped when that
	// burst is still being probed; count skips from 1.5 intervals on.
	var skippedEarly float64
	time.AfterFunc(time.Until(begin.Add(1500*time.Millisecond)), func() {
		mu.Lock()
		skippedEarly = testCounter(p.metrics.skipped)
		mu.Unlock()
	})
	<-done
	cancel()
	wall := time.Since(begin)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := tv(ru1.Utime) - tv(ru0.Utime) + tv(ru1.Stime) - tv(ru0.Stime)

	stopCanary()
	<-canaryDone
	slices.Sort(stalls)
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(late)
	q := func(f float64) time.Duration { return late[int(f*float64(len(late)-1))] }
	down := 0
	errs := map[string]int{}
	var rtts []time.Duration
	for _, v := range p.Verdicts() {
		rtts = append(rtts, v.RTT)
		if !v.Up {
			down++
		}
		switch e := v.Err; {
		case e == "":
		case strings.Contains(e, "timeout") || strings.Contains(e, "timed out"):
			errs["timeout"]++
		default:
			// Ports and addresses differ; the kind of error is what counts.
			errs[strings.TrimSpace(e[strings.LastIndexByte(e, ':')+1:])]++
		}
	}
	serverCPU := stopServer()
	skipped := testCounter(p.metrics.skipped) - skippedEarly
	t.Logf("%d %s members, interval 1s, %v (first round %v): %d probes from 1.5s on (%.0f/s), %d slots skipped after the first round's (%d then), %d down at the end",
		n, kind, wall.Round(time.Millisecond), firstRound.Round(time.Millisecond), len(late), float64(len(late))/(wall.Seconds()-1.5), int(skipped), int(skippedEarly), down)
	t.Logf("lateness from 1.5s on: p50 %v p99 %v max %v (%d probes)", q(0.5), q(0.99), q(1), len(late))
	slices.Sort(first)
	t.Logf("lateness in the first 1.5s (first round: %d probes at once): p50 %v max %v (%d probes)", n, first[len(first)/2], first[len(first)-1], len(first))
	t.Logf("CPU %v user+sys over %v wall: %.1f%% of one core (workers %d, GOMAXPROCS %d)",
		cpu.Round(time.Millisecond), wall.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds(), p.workers, runtimeProcs())
	slices.Sort(rtts)
	t.Logf("latest probe durations: p50 %v p99 %v max %v", rtts[len(rtts)/2], rtts[len(rtts)*99/100], rtts[len(rtts)-1])
	t.Logf("canary 10ms sleeps overshoot: p50 %v p99 %v max %v", stalls[len(stalls)/2], stalls[len(stalls)*99/100], stalls[len(stalls)-1])
	t.Logf("server process CPU %v; latest errors by kind: %v", serverCPU.Round(time.Millisecond), errs)
	// Not falling behind: every member probed about once a second (the
	// first round adds one), nobody down, and no slot skipped and p99
	// lateness under 100ms, unless the machine stalled this whole process
	// (the canary's worst sleep): a stall of S delays every probe due in
	// it by up to S, which says nothing of the prober.
	stall := stalls[len(stalls)-1]
	if min := n * (secs - 3); len(late) < min {
		t.Errorf("%d probes in %ds, want at least %d", len(late), secs, min)
	}
	if down > 0 {
		t.Errorf("%d members down", down)
	}
	if skipped > 0 && stall < 250*time.Millisecond {
		t.Errorf("%v slots skipped with no stall over %v", skipped, stall)
	}
	if bound := max(100*time.Millisecond, stall+50*time.Millisecond); q(0.99) > bound {
		t.Errorf("p99 lateness %v, over %v: the prober falls behind", q(0.99), bound)
	}
}

func tv(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return v
}

// scaleServer starts this test binary again as TestScaleServer, which
// serves kind on 32 loopback addresses, and returns them and a function
// that stops it and returns the CPU it used, which is not this process's.
func scaleServer(t *testing.T, kind string) ([]string, func() time.Duration) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestScaleServer$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TERN_SCALE_SERVER="+kind)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() time.Duration {
		once.Do(func() {
			stdin.Close() // the server exits when its stdin closes
			cmd.Wait()
		})
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			return tv(ru.Utime) + tv(ru.Stime)
		}
		return 0
	}
	t.Cleanup(func() { stop() })
	var addrs []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if line == "READY" {
			go io.Copy(io.Discard, stdout)
			return addrs, stop
		}
		if a, ok := strings.CutPrefix(line, "LISTEN "); ok {
			addrs = append(addrs, a)
		}
	}
	t.Fatalf("scale server ended before READY: %v", sc.Err())
	return nil, nil
}

// TestScaleServer is the child process of TestScale, not a test.
func TestScaleServer(t *testing.T) {
	kind := os.Getenv("TERN_SCALE_SERVER")
	if kind == "" {
		t.Skip("the server side of TestScale")
	}
	var ls []net.Listener
	for i := 1; i <= 32; i++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", i))
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		fmt.Printf("LISTEN %s\n", l.Addr())
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	for _, l := range ls {
		switch kind {
		case "http":
			go http.Serve(l, h)
		default:
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					// The prober resets; closing first would leave
					// this side's socket in TIME_WAIT.
					go func() { io.Copy(io.Discard, c); c.Close() }()
				}
			}()
		}
	}
	fmt.Println("READY")
	io.Copy(io.Discard, os.Stdin)
	for _, l := range ls {
		l.Close()
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// testCounter reads a counter's value.
func testCounter(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}
