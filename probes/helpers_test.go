package probes

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/internal/testnet"
)

// testConfig parses a configuration with the given checks: and pools:
// sections (indented by two spaces already).
func testConfig(t testing.TB, checks, pools string) *config.Config {
	t.Helper()
	y := "node: {name: t}\nchecks:\n" + checks + "pools:\n" + pools + "zones: [{file: z.zone}]\n"
	c, ps := config.Parse("test.yaml", []byte(y))
	if len(ps) > 0 {
		t.Fatalf("test configuration:\n%v\n%s", ps, y)
	}
	return c
}

// checkOf compiles a check written as a YAML flow map.
func checkOf(t testing.TB, check string) *checker {
	t.Helper()
	c := testConfig(t, "  c: "+check+"\n", "  p: {check: c, members: [{address: 127.0.0.1}]}\n")
	ch, err := newChecker("c", c.Checks["c"])
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// runOnce runs check ch against hostport once, with the check's timeout.
func runOnce(t testing.TB, ch *checker, hostport string) result {
	t.Helper()
	host, port := splitHostPort(t, hostport)
	tg := &target{key: Key{Pool: "p", Member: host}, check: ch, host: host, port: port}
	ctx, cancel := context.WithTimeout(context.Background(), ch.timeout)
	defer cancel()
	return ch.run(ctx, tg)
}

func splitHostPort(t testing.TB, hp string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}

// closedPort returns a loopback address:port nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

// tcpServer accepts and closes connections until the test ends.
func tcpServer(t testing.TB) string {
	t.Helper()
	return testnet.Listen(t, "127.0.0.1:0", nil).Addr().String()
}

// start runs p until the test ends.
func start(t testing.TB, p *Prober) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// recorder is an Observer that keeps every verdict it is given.
type recorder struct {
	mu   sync.Mutex
	seen []Verdict
	at   []time.Time
}

func (r *recorder) Observe(vs []Verdict) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for _, v := range vs {
		r.seen = append(r.seen, v)
		r.at = append(r.at, now)
	}
}

// waitFor polls until the latest verdict observed for key satisfies ok,
// and returns when it was observed.
func (r *recorder) waitFor(t testing.TB, key Key, within time.Duration, what string, ok func(Verdict) bool) time.Time {
	t.Helper()
	var at time.Time
	eventually.NoError(t, within, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		for i := len(r.seen) - 1; i >= 0; i-- {
			if r.seen[i].Key == key {
				if ok(r.seen[i]) {
					at = r.at[i]
					return nil
				}
				return fmt.Errorf("last verdict for %v: %+v", key, r.seen[i])
			}
		}
		return fmt.Errorf("no verdict for %v", key)
	}, what)
	return at
}
