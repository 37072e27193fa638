package ha

import (
	"encoding/hex"
	"net"
	"net/netip"
	"testing"
)

func TestARPFrame(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	vip := netip.MustParseAddr("192.0.2.10")
	for _, tc := range []struct {
		name string
		op   uint16
		want string
	}{
		// dst ff..ff, src mac, 0806 | 0001 0800 06 04 op | sha spa | tha tpa
		{"request", arpRequest, "ffffffffffff020000000001" + "0806" + "0001080006040001" + "020000000001c000020a" + "000000000000c000020a"},
		{"reply", arpReply, "ffffffffffff020000000001" + "0806" + "0001080006040002" + "020000000001c000020a" + "020000000001c000020a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hex.EncodeToString(arpFrame(tc.op, mac, vip, broadcast, vip)); got != tc.want {
				t.Fatalf("frame\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
