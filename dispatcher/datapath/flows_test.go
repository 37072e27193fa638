//go:build linux

package datapath

import (
	"net/netip"
	"testing"
)

// TCP flags as on the wire.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
)

// withTCPFlags returns frame (IPv4 or IPv6, no options) with its TCP
// flags set to flags.
func withTCPFlags(frame []byte, flags byte) []byte {
	ipLen := 20
	if frame[12] == 0x86 && frame[13] == 0xdd {
		ipLen = 40
	}
	frame[14+ipLen+13] = flags
	return frame
}

// TestTCPFlowCounters sends segments of every kind through the program
// and checks which TCP counter of which service each one moves: only
// segments that reach a server count, a SYN only without ACK, a RST
// apart by its ACK flag.
func TestTCPFlowCounters(t *testing.T) {
	d := newTestLB(t)
	localKey := ServiceKey{VIP: vip, Port: 443, Proto: ProtoTCP}
	ipipKey := ServiceKey{VIP: vip, Port: 8443, Proto: ProtoTCP}
	emptyKey := ServiceKey{VIP: vip, Port: 25, Proto: ProtoTCP}
	if err := d.SetBackend(5, Backend{IP: netip.MustParseAddr("10.0.0.5"), Local: true}); err != nil {
		t.Fatal(err)
	}
	for k, s := range map[ServiceKey]struct {
		svc   Service
		table []uint32
	}{
		webKey:   {Service{Mode: ModeMAC}, table7},
		web6Key:  {Service{Mode: ModeMAC}, table7},
		dnsKey:   {Service{Mode: ModeMAC}, table7},
		localKey: {Service{Mode: ModeMAC}, []uint32{5}},
		ipipKey:  {Service{Mode: ModeIPIP}, table7},
		emptyKey: {Service{Mode: ModeMAC}, nil},
	} {
		if err := d.SetService(k, s.svc, s.table); err != nil {
			t.Fatal(err)
		}
	}
	tcp := func(dport uint16, flags byte) []byte {
		return withTCPFlags(tcpFrame(client, 40000, vip, dport), flags)
	}
	tests := []struct {
		name  string
		frame []byte
		key   ServiceKey // whose counter moves; zero: none
		want  TCPCounter
		ret   uint32
	}{
		{"SYN opens", tcp(80, tcpSYN), webKey, TCPCounter{Opened: 1}, xdpTX},
		{"SYN-ACK does not open", tcp(80, tcpSYN|tcpACK), ServiceKey{}, TCPCounter{}, xdpTX},
		{"ACK", tcp(80, tcpACK), ServiceKey{}, TCPCounter{}, xdpTX},
		{"data", tcp(80, tcpACK|tcpPSH), ServiceKey{}, TCPCounter{}, xdpTX},
		{"FIN-ACK closes", tcp(80, tcpFIN|tcpACK), webKey, TCPCounter{Fin: 1}, xdpTX},
		{"FIN-ACK with data closes", tcp(80, tcpFIN|tcpACK|tcpPSH), webKey, TCPCounter{Fin: 1}, xdpTX},
		{"RST-ACK aborts", tcp(80, tcpRST|tcpACK), webKey, TCPCounter{Reset: 1}, xdpTX},
		{"RST without ACK is stray", tcp(80, tcpRST), webKey, TCPCounter{StrayReset: 1}, xdpTX},
		{"IPv6 SYN opens", withTCPFlags(tcp6Frame(client6, 40000, vip6, 80), tcpSYN), web6Key, TCPCounter{Opened: 1}, xdpTX},
		{"IPv6 FIN closes", withTCPFlags(tcp6Frame(client6, 40000, vip6, 80), tcpFIN|tcpACK), web6Key, TCPCounter{Fin: 1}, xdpTX},
		{"SYN to a local backend opens", tcp(443, tcpSYN), localKey, TCPCounter{Opened: 1}, xdpPass},
		{"SYN in ipip mode opens", tcp(8443, tcpSYN), ipipKey, TCPCounter{Opened: 1}, xdpTX},
		{"SYN dropped (no backend) does not open", tcp(25, tcpSYN), ServiceKey{}, TCPCounter{}, xdpDrop},
		{"SYN to an unknown port", tcp(81, tcpSYN), ServiceKey{}, TCPCounter{}, xdpPass},
		{"UDP", udpFrame(client, 40000, vip, 53), ServiceKey{}, TCPCounter{}, xdpTX},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, err := d.Counters()
			if err != nil {
				t.Fatal(err)
			}
			if ret, _ := run(t, d.objs.TernLb, tc.frame); ret != tc.ret {
				t.Fatalf("verdict %d, want %d", ret, tc.ret)
			}
			after, err := d.Counters()
			if err != nil {
				t.Fatal(err)
			}
			for k, a := range after.TCP {
				b := before.TCP[k]
				got := TCPCounter{a.Opened - b.Opened, a.Fin - b.Fin, a.Reset - b.Reset, a.StrayReset - b.StrayReset}
				want := TCPCounter{}
				if k == tc.key {
					want = tc.want
				}
				if got != want {
					t.Errorf("service %s: counters moved by %+v, want %+v", k, got, want)
				}
			}
		})
	}
	c, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.TCP[dnsKey]; ok {
		t.Errorf("UDP service %s has TCP counters", dnsKey)
	}
	if len(c.TCP) != 5 {
		t.Errorf("TCP counters of %d services, want the 5 TCP ones: %v", len(c.TCP), c.TCP)
	}

	// A service re-added starts from zero.
	if err := d.DeleteService(webKey); err != nil {
		t.Fatal(err)
	}
	if err := d.SetService(webKey, Service{Mode: ModeMAC}, table7); err != nil {
		t.Fatal(err)
	}
	if c, err = d.Counters(); err != nil {
		t.Fatal(err)
	}
	if got := c.TCP[webKey]; got != (TCPCounter{}) {
		t.Errorf("re-added service starts at %+v, want zero", got)
	}
}
