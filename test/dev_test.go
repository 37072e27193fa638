package test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/internal/eventually"
)

// TestServeDev runs what `make run` runs, `tern serve --dev`, in an empty
// folder and asks the dig line it prints. The embedded configuration
// listens on fixed loopback ports (DNS 5354, API 8054, Raft 7054).
func TestServeDev(t *testing.T) {
	bin := ternBinary(t)
	var out lockedBuffer
	cmd := exec.Command(bin, "serve", "--dev")
	cmd.Dir = t.TempDir()
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	const addr = "127.0.0.1:5354"
	eventually.True(t, 20*time.Second, func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("tern serve --dev exited: %v\n%s", err, out.String())
		default:
		}
		r, err := query(addr, "www.gslb.example.test.", dns.TypeA)
		return err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0
	}, "tern serve --dev to answer")
	// The dig line is printed once the listeners serve, which can be a
	// moment after the first answer.
	eventually.True(t, 5*time.Second, func() bool {
		return strings.Contains(out.String(), "dig @127.0.0.1 -p 5354 www.gslb.example.test A")
	}, "the dig line")
	// The geo map steers a client subnet to its site.
	m := new(dns.Msg)
	m.SetQuestion("www.gslb.example.test.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{127, 0, 9, 0}})
	r, err := dns.Exchange(m, addr)
	// ap-east has one member and web answers 2, but without fill:
	// next_tier the answer is that site's alone: no us-east address.
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.3.30" {
		t.Fatalf("ECS 127.0.9.0/24 should get ap-east's 127.0.3.30 alone: %v %v", r, err)
	}
}
