package ha

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef-test-key")

func sample() Heartbeat {
	return Heartbeat{
		ID: "d1", Seq: 42, Time: t0, Interval: iv, Config: 0x0102030405060708,
		Groups: []GroupState{{"a", 200, true}, {"web", 100, false}},
	}
}

func TestWireRoundTrip(t *testing.T) {
	hb := sample()
	pkt, err := Encode(nil, hb, testKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(pkt, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != hb.ID || got.Seq != hb.Seq || got.Config != hb.Config || !got.Time.Equal(hb.Time) || got.Interval != hb.Interval || !slices.Equal(got.Groups, hb.Groups) {
		t.Fatalf("decoded %+v, want %+v", got, hb)
	}
}

func TestWireRejects(t *testing.T) {
	pkt, err := Encode(nil, sample(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		p := slices.Clone(pkt)
		p[i] ^= 1
		return p
	}
	for _, tc := range []struct {
		name string
		pkt  []byte
		key  []byte
		want error
	}{
		{"wrong key", pkt, []byte("another-key-of-16-bytes"), ErrAuth},
		{"tampered priority", flip(len(pkt) - macLen - 3), testKey, ErrAuth},
		{"tampered seq", flip(8), testKey, ErrAuth},
		{"tampered mac", flip(len(pkt) - 1), testKey, ErrAuth},
		{"truncated", pkt[:len(pkt)-1], testKey, ErrAuth},
		{"too short", pkt[:10], testKey, ErrMalformed},
		{"not ours", append([]byte("XXXX"), pkt[4:]...), testKey, ErrMalformed},
		{"empty", nil, testKey, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(tc.pkt, tc.key); !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifierReplay(t *testing.T) {
	var v Verifier
	hb := sample()
	now := t0.Add(100 * time.Millisecond)
	if err := v.Check(now, hb); err != nil {
		t.Fatalf("first heartbeat: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Heartbeat)
		at   time.Time
		want error
	}{
		{"same packet again", func(*Heartbeat) {}, now, ErrReplay},
		{"older sequence", func(h *Heartbeat) { h.Seq = 41 }, now, ErrReplay},
		{"next sequence", func(h *Heartbeat) { h.Seq = 43 }, now, nil},
		{"stale time", func(h *Heartbeat) { h.Seq = 100 }, t0.Add(6 * time.Second), ErrReplay},
		{"from the future", func(h *Heartbeat) { h.Seq = 101; h.Time = t0.Add(time.Minute) }, now, ErrReplay},
		{"another sender has its own floor", func(h *Heartbeat) { h.ID = "d2"; h.Seq = 1 }, now, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := sample()
			tc.mod(&h)
			if err := v.Check(tc.at, h); !errors.Is(err, tc.want) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Heartbeat)
	}{
		{"no id", func(h *Heartbeat) { h.ID = "" }},
		{"zero interval", func(h *Heartbeat) { h.Interval = 0 }},
		{"empty group name", func(h *Heartbeat) { h.Groups[0].Name = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := sample()
			tc.mod(&h)
			if _, err := Encode(nil, h, testKey); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Encode = %v, want ErrMalformed", err)
			}
		})
	}
}

// FuzzDecode: any packet, signed or not, must decode or fail cleanly, and
// what decodes must encode back to the same bytes.
func FuzzDecode(f *testing.F) {
	pkt, _ := Encode(nil, sample(), testKey)
	f.Add(pkt, false)
	f.Add(pkt[:20], true)
	f.Add([]byte("TnHA\x01"), true)
	f.Fuzz(func(t *testing.T, b []byte, sign bool) {
		if sign {
			// Sign arbitrary bodies so the parser behind the HMAC is reached.
			b = signBody(b, testKey)
		}
		hb, err := Decode(b, testKey)
		if err != nil {
			return
		}
		again, err := Encode(nil, hb, testKey)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", hb, err)
		}
		if !slices.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}

func signBody(body, key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(slices.Clone(body))
}

// The wire format is shared by dispatchers of different versions during a
// rolling upgrade: pin it.
func TestWireGolden(t *testing.T) {
	pkt, err := Encode(nil, sample(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	body := "546e4841" + "01" + "00c8" + "000000000000002a" + "18867251edfa0000" + "0102030405060708" +
		"02" + "6431" + "02" + "01" + "61" + "c8" + "01" + "03" + "776562" + "64" + "00"
	if got := hex.EncodeToString(pkt[:len(pkt)-macLen]); got != body {
		t.Fatalf("body\n%s\nwant\n%s", got, body)
	}
	if _, err := Decode(pkt, testKey); err != nil {
		t.Fatal(err)
	}
}
