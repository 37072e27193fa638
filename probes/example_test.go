package probes_test

import (
	"context"
	"fmt"
	"net"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/probes"
)

// A node builds the prober from its configuration, runs it, waits for the
// first round, then serves; the Observer hears of every change after.
func Example() {
	l, _ := net.Listen("tcp", "127.0.0.1:0") // a backend
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	cfg, problems := config.Parse("tern.yaml", []byte(`
node: {name: n1}
checks:
  tcp: {type: tcp, port: 443, interval: 1s, timeout: 500ms}
pools:
  web:
    check: tcp
    members:
      - {address: 192.0.2.10, probe: "`+l.Addr().String()+`"}
      - {address: 192.0.2.11, probe: "`+l.Addr().String()+`", admin: drain}
zones: [{file: z.zone}]
`))
	if len(problems) > 0 {
		fmt.Println(problems)
		return
	}
	changes := make(chan []probes.Verdict, 16)
	p, err := probes.New(cfg, probes.Options{
		Observer: probes.ObserverFunc(func(vs []probes.Verdict) { changes <- vs }),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	if err := p.FirstRound(ctx, p.FirstRoundWait()); err != nil {
		fmt.Println(err)
	}
	vs, _ := p.Pool("web")
	for _, v := range vs {
		fmt.Printf("%s: %s\n", v.Key, v.State())
	}
	if err := p.SetAdmin("web", "192.0.2.10", probes.AdminDown); err != nil {
		fmt.Println(err)
	}
	for vs := range changes {
		if v := vs[len(vs)-1]; v.Forced {
			fmt.Printf("%s: %s\n", v.Key, v.State())
			break
		}
	}
	_, err = p.Verdict("web", "192.0.2.99")
	fmt.Println(err)
	// Output:
	// web/192.0.2.10: up
	// web/192.0.2.11: drain (probes: up)
	// web/192.0.2.10: forced down (probes: up)
	// pool "web" member "192.0.2.99": no such member
}
