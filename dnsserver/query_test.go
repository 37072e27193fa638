package dnsserver

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestParseQuestionText: the question's presentation form is miekg/dns's
// (the form zone files and the zone set use), lowercased, for every octet
// a label can hold, both where the name buffer has room (the table's fast
// path) and where it must grow (the escaping path).
func TestParseQuestionText(t *testing.T) {
	var warm query
	warm.qname = make([]byte, 0, 1024)
	for b := 0; b < 256; b++ {
		m := new(dns.Msg)
		m.SetQuestion("x.test.", dns.TypeA)
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		// Replace the first label "x" by "x", b, "Y".
		msg := append([]byte{}, wire[:headerLen]...)
		msg = append(msg, 3, 'x', byte(b), 'Y')
		msg = append(msg, wire[headerLen+2:]...)
		var ref dns.Msg
		if err := ref.Unpack(msg); err != nil {
			t.Fatalf("octet %d: miekg/dns: %v", b, err)
		}
		want := strings.ToLower(ref.Question[0].Name)
		for _, tc := range []struct {
			name string
			q    *query
		}{{"growing", new(query)}, {"room", &warm}} {
			if res := tc.q.parse(msg); res != parseOK {
				t.Fatalf("octet %d (%s): parse = %d", b, tc.name, res)
			}
			if tc.q.name != want {
				t.Errorf("octet %d (%s): name %q, want %q", b, tc.name, tc.q.name, want)
			}
			if got := string(tc.q.qwire); got != string(msg[headerLen:len(msg)-4]) {
				t.Errorf("octet %d (%s): wire %q", b, tc.name, got)
			}
		}
	}
}
