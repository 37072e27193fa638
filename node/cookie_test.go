package node

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

// serverCookie sends a query for name with client cookie cc (and server
// cookie sc, if any) and returns the server cookie of the answer.
func serverCookie(t *testing.T, addr string, cc, sc []byte) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("ns1.example.test.", dns.TypeA)
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(1232)
	o.Option = append(o.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(append(append([]byte{}, cc...), sc...))})
	m.Extra = append(m.Extra, o)
	r, err := dns.Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("%s: rcode %s", addr, dns.RcodeToString[r.Rcode])
	}
	for _, e := range r.IsEdns0().Option {
		if c, ok := e.(*dns.EDNS0_COOKIE); ok {
			b, err := hex.DecodeString(c.Cookie)
			if err != nil || len(b) < 16 || !bytes.Equal(b[:8], cc) {
				t.Fatalf("%s: cookie %q does not start with the client cookie", addr, c.Cookie)
			}
			return b[8:]
		}
	}
	t.Fatalf("%s: no cookie in the answer", addr)
	return nil
}

// TestCookieSecretFollowsToken: nodes with the same API token (a
// cluster's) accept each other's server cookies; a node with another
// token hands out a new one.
func TestCookieSecretFollowsToken(t *testing.T) {
	conf := func(token string) string {
		return fmt.Sprintf(`node:
  name: n
  dns: ["127.0.0.1:0"]
  api_token: %s
pools:
  web:
    members: [{address: 192.0.2.1}]
zones:
  - file: z.zone
`, token)
	}
	_, a := startNode(t, conf("cluster-token-a"), testZone)
	_, b := startNode(t, conf("cluster-token-a"), testZone)
	_, c := startNode(t, conf("another-token"), testZone)
	cc := []byte("tern-cc1")
	sc := serverCookie(t, a, cc, nil)
	if got := serverCookie(t, b, cc, sc); !bytes.Equal(got, sc) {
		t.Errorf("a node with the same token did not accept the cookie: sent %x, got %x back", sc, got)
	}
	if got := serverCookie(t, c, cc, sc); bytes.Equal(got, sc) {
		t.Errorf("a node with another token accepted the cookie %x", sc)
	}
	if cookieSecret("") != [16]byte{} {
		t.Errorf("no token must leave the secret to the DNS server (zero)")
	}
}
