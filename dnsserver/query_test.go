package dnsserver

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"unsafe"

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

// TestQueryReset fills every field of a query with a value that is not
// its zero, resets it, and checks each is zero again but the four
// buffers, which keep their memory with length 0. A field added to
// query and not cleared by reset fails here.
func TestQueryReset(t *testing.T) {
	q := newWorker(1232, nil).q
	buffers := map[string]bool{"qwire": true, "qname": true, "labelOffs": true, "labelTexts": true}
	v := reflect.ValueOf(&q).Elem()
	field := func(i int) reflect.Value {
		f := v.Field(i)
		return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem() // settable though unexported
	}
	caps := map[string]int{}
	for i := range v.NumField() {
		name, f := v.Type().Field(i).Name, field(i)
		if buffers[name] {
			f.SetLen(1)
			caps[name] = f.Cap()
			continue
		}
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int:
			f.SetInt(7)
		case reflect.Uint8, reflect.Uint16:
			f.SetUint(7)
		case reflect.String:
			f.SetString("x.")
		case reflect.Slice:
			f.Set(reflect.ValueOf([]byte{1}))
		case reflect.Array:
			f.Index(0).SetUint(7)
		case reflect.Struct: // netip.Addr
			f.Set(reflect.ValueOf(netip.MustParseAddr("192.0.2.1")))
		default:
			t.Fatalf("field %s of kind %s: teach this test to set it", name, f.Kind())
		}
		if f.IsZero() {
			t.Fatalf("field %s still zero after setting", name)
		}
	}
	q.reset()
	for i := range v.NumField() {
		name, f := v.Type().Field(i).Name, field(i)
		switch {
		case buffers[name]:
			if f.Len() != 0 || f.Cap() != caps[name] {
				t.Errorf("buffer %s after reset: len %d cap %d, want 0 and %d", name, f.Len(), f.Cap(), caps[name])
			}
		case !f.IsZero():
			t.Errorf("field %s not cleared by reset: %v", name, f)
		}
	}
}
