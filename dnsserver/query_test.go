package dnsserver

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestParseQuestionText: the question's presentation form is miekg/dns's
// (the form zone files and the zone set use), lowercased, for every octet
// a label can hold, both in a worker's buffers and in a query without
// any (parseQuestion makes them), where the octet takes the table's plain
// path or the escaping one.
func TestParseQuestionText(t *testing.T) {
	warm := &newWorker(1232, nil).q
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
		}{{"no buffers", new(query)}, {"worker's", warm}} {
			if res := tc.q.parse(msg); res != parseOK {
				t.Fatalf("octet %d (%s): parse = %d", b, tc.name, res)
			}
			if tc.q.name != want {
				t.Errorf("octet %d (%s): name %q, want %q", b, tc.name, tc.q.name, want)
			}
			if got := string(tc.q.qwire); got != string(msg[headerLen:len(msg)-4]) {
				t.Errorf("octet %d (%s): wire %q", b, tc.name, got)
			}
			// Where each label starts: in the wire form, and in the
			// text (after the first label's text and its dot).
			first := strings.Index(want, ".")
			for first > 0 && want[first-1] == '\\' { // an escaped dot is the label's
				first += 1 + strings.Index(want[first+1:], ".")
			}
			if got := tc.q.labelOffs; len(got) != 2 || got[0] != 0 || got[1] != 4 {
				t.Errorf("octet %d (%s): label offsets %v, want [0 4]", b, tc.name, got)
			}
			if got := tc.q.labelTexts; len(got) != 2 || got[0] != 0 || got[1] != first+1 {
				t.Errorf("octet %d (%s): label text offsets %v, want [0 %d] (name %q)", b, tc.name, got, first+1, want)
			}
		}
	}
}
