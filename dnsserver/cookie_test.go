package dnsserver

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// TestSiphash checks SipHash-2-4 against the reference implementation's
// vectors (key 00..0f, messages 00, 00 01, ... of each length).
func TestSiphash(t *testing.T) {
	var key [16]byte
	for i := range key {
		key[i] = byte(i)
	}
	k := newCookieKey(key)
	msg := make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i)
	}
	for _, tc := range []struct {
		n    int
		want uint64
	}{
		{0, 0x726fdb47dd0e0e31},
		{1, 0x74f839c593dc67fd},
		{7, 0xab0200f58b01d137},
		{8, 0x93f5f5799a932462},
		{15, 0xa129ca6149be45e5},
		{16, 0x3f2acc7f57c29bdb},
		{63, 0x958a324ceb064572},
	} {
		if got := siphash(k, msg[:tc.n]); got != tc.want {
			t.Errorf("%d bytes: %#x, want %#x", tc.n, got, tc.want)
		}
	}
}

// TestRFC9018Vectors makes the server cookie of RFC 9018 appendix A.1:
// a client learning a new server cookie.
func TestRFC9018Vectors(t *testing.T) {
	secret, _ := hex.DecodeString("e5e973e5a6b2a43f48e7dc849e37bfcf")
	client, _ := hex.DecodeString("2464c4abcf10c957")
	got := makeCookie(t, [16]byte(secret), [8]byte(client), 1559731985, netip.MustParseAddr("198.51.100.100"))
	if want := "010000005cf79f111f8130c3eee29480"; hex.EncodeToString(got[:]) != want {
		t.Errorf("server cookie %x, want %s", got, want)
	}
}

// makeCookie is an RFC 9018 server cookie made the way the RFC writes it.
func makeCookie(t testing.TB, secret [16]byte, client [8]byte, ts uint32, ip netip.Addr) [16]byte {
	t.Helper()
	var c [16]byte
	c[0] = 1
	binary.BigEndian.PutUint32(c[4:], ts)
	in := append(append(client[:], c[:8]...), ip.AsSlice()...)
	binary.LittleEndian.PutUint64(c[8:], siphash(newCookieKey(secret), in))
	return c
}

func cookieOf(t testing.TB, r *dns.Msg) []byte {
	t.Helper()
	if o := r.IsEdns0(); o != nil {
		for _, e := range o.Option {
			if c, ok := e.(*dns.EDNS0_COOKIE); ok {
				b, err := hex.DecodeString(c.Cookie)
				if err != nil {
					t.Fatalf("cookie %q: %v", c.Cookie, err)
				}
				return b
			}
		}
	}
	return nil
}

func cookieQuery(cookie []byte) *dns.Msg {
	return withEDNS(newQuery("static.example.test.", dns.TypeA), 1232, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(cookie)})
}
