//go:build linux

package datapath

import (
	"testing"
)

// BenchmarkLB measures the XDP program alone (BPF_PROG_TEST_RUN, repeated
// in the kernel) on one frame per case: the datapath's own cost per packet,
// without the hook and driver around it. (ipip is left out: the kernel
// reruns the program on the same buffer, which would grow by an outer
// header per run.) The mac case is a SYN, which also moves the service's
// TCP flow counters; mac-ack is a data segment, the common case.
func BenchmarkLB(b *testing.B) {
	d := newTestLB(b)
	table := make([]uint32, DefaultTableSize)
	for i := range table {
		table[i] = uint32(i%3) + 1
	}
	if err := d.SetService(webKey, Service{Mode: ModeMAC}, table); err != nil {
		b.Fatal(err)
	}
	if err := d.SetService(web6Key, Service{Mode: ModeMAC}, table); err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name  string
		frame []byte
		want  uint32
	}{
		{"mac", tcpFrame(client, 40000, vip, 80), xdpTX}, // a SYN: counted as a new flow
		{"mac-ack", withTCPFlags(tcpFrame(client, 40000, vip, 80), tcpACK|tcpPSH), xdpTX},
		{"mac6", tcp6Frame(client6, 40000, vip6, 80), xdpTX},
		{"pass", tcpFrame(client, 40000, router, 80), xdpPass},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			ret, dur, err := d.objs.TernLb.Benchmark(tc.frame, b.N, b.ResetTimer)
			if err != nil {
				b.Fatal(err)
			}
			if ret != tc.want {
				b.Fatalf("verdict %d, want %d", ret, tc.want)
			}
			b.ReportMetric(float64(dur.Nanoseconds()), "ns/packet")
		})
	}
}
