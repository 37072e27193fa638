package raftstore

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ternlb/tern/health"
)

func TestCommandRoundTrip(t *testing.T) {
	bodies := []Body{
		inlineApply(bundle("tern.yaml", "tern.yaml", "pools: {}\n", "zones/x.zone", ""), Change{Keep: 3, At: t0, Comment: "first", Base: 0, Origin: Origin{Kind: OriginApply, Node: "n2", Client: "192.0.2.7:40000"}, Zones: map[string]ZoneStamp{"x.": {Serial: 7, Content: Hash{1}}}}),
		inlineApply(bundle("tern.yaml", "tern.yaml", ""), Change{Base: 3, Force: true, At: t0, Origin: Origin{Kind: OriginBootstrap, Node: "n1"}}),
		Rollback{Version: 2, Change: Change{Base: 4, At: t0, Origin: Origin{Kind: OriginRollback, Node: "n1"}, Zones: map[string]ZoneStamp{"x.": {Serial: 1}}}},
		SetAdmin{States: []AdminChange{{"web", "10.0.0.1", AdminDrain}, {"web", "10.0.0.2", AdminAuto}}},
		Observations{Node: "n1", Reports: []ObservationReport{{"web", "10.0.0.1", health.KindHealth, 1, t0}, {"web", "10.0.0.2", health.KindHealth, 0, t0.Add(time.Second)},
			{"web", "10.0.0.1", health.KindLoad, 12.5, t0}, {"web", "10.0.0.1", "latency-ms", 3.25, t0}}},
		RegisterNode{ID: "n1", Raft: "127.0.0.1:7054", API: "127.0.0.1:8054"},
		ForgetNode{ID: "n3"},
		ForgetMembers{Members: []MemberKey{{"web", "10.0.0.9"}}},
		PutBlobs{Chunks: []Chunk{{sha([]byte("ab")), []byte("ab")}}, Files: []FileSpec{{sha([]byte("abab")), 4, []Hash{sha([]byte("ab")), sha([]byte("ab"))}}, {sha(nil), 0, nil}}},
	}
	for _, b := range bodies {
		t.Run(b.Type(), func(t *testing.T) {
			got, err := DecodeCommand(enc(t, b))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normBody(got), normBody(b)) {
				t.Errorf("round trip:\n got %#v\nwant %#v", got, b)
			}
		})
	}
}

// normBody makes times comparable with DeepEqual (a decoded time has no
// location pointer of its own).
func normBody(b Body) Body {
	switch c := b.(type) {
	case ApplyConfig:
		c.At = normTime(c.At)
		return c
	case Rollback:
		c.At = normTime(c.At)
		return c
	case Observations:
		rs := append([]ObservationReport(nil), c.Reports...)
		for i := range rs {
			rs[i].At = normTime(rs[i].At)
		}
		c.Reports = rs
		return c
	}
	return b
}

func TestDecodeCommandRejects(t *testing.T) {
	const at = `"2026-11-22T04:00:00Z"`
	tests := []struct {
		name string
		in   string
		want error
		msg  string
	}{
		{"empty", ``, ErrMalformed, "envelope"},
		{"not json", `hello`, ErrMalformed, "envelope"},
		{"null", `null`, ErrUnsupportedVersion, ""},
		{"version 0", `{"type":"node.forget","body":{"id":"n1"}}`, ErrUnsupportedVersion, ""},
		{"version 4", `{"v":4,"type":"node.forget","body":{"id":"n1"}}`, ErrUnsupportedVersion, ""},
		{"version 1 apply with a base", `{"v":1,"type":"config.apply","body":{"bundle":{"main":"a","files":{"a":""}},"base":1,"at":` + at + `}}`, ErrMalformed, "unknown field"},
		{"version 2 apply with if_version", `{"v":2,"type":"config.apply","body":{"bundle":{"main":"a","files":{"a":""}},"if_version":1,"at":` + at + `}}`, ErrMalformed, "unknown field"},
		{"origin kind", `{"v":2,"type":"config.apply","body":{"bundle":{"main":"a","files":{"a":""}},"base":0,"origin":{"kind":"sighup"},"at":` + at + `}}`, ErrMalformed, "sighup"},
		{"zone name empty", `{"v":2,"type":"config.rollback","body":{"version":1,"base":1,"zones":{"":{"serial":1,"content":"` + strings.Repeat("00", 32) + `"}},"at":` + at + `}}`, ErrMalformed, "zone: missing"},
		{"unknown type", `{"v":1,"type":"node.explode","body":{"id":"n1"}}`, ErrUnknownCommand, "node.explode"},
		{"unknown envelope field", `{"v":1,"type":"node.forget","body":{"id":"n1"},"x":1}`, ErrMalformed, "unknown field"},
		{"unknown body field", `{"v":1,"type":"node.forget","body":{"id":"n1","force":true}}`, ErrMalformed, "unknown field"},
		{"trailing data", `{"v":1,"type":"node.forget","body":{"id":"n1"}} {}`, ErrMalformed, "trailing"},
		{"missing body", `{"v":1,"type":"node.forget"}`, ErrMalformed, "missing body"},
		{"null body", `{"v":1,"type":"node.forget","body":null}`, ErrMalformed, "missing body"},
		{"body wrong type", `{"v":1,"type":"node.forget","body":[1]}`, ErrMalformed, ""},
		{"field wrong type", `{"v":1,"type":"node.forget","body":{"id":7}}`, ErrMalformed, ""},
		{"empty id", `{"v":1,"type":"node.forget","body":{"id":""}}`, ErrMalformed, "id: missing"},
		{"control char", `{"v":1,"type":"node.forget","body":{"id":"n\u0001"}}`, ErrMalformed, "control"},
		{"invalid utf8", "{\"v\":1,\"type\":\"node.forget\",\"body\":{\"id\":\"\xff\"}}", ErrMalformed, "UTF-8"},
		{"verdict health missing", `{"v":1,"type":"health.verdicts","body":{"node":"n1","verdicts":[{"pool":"web","member":"a","at":` + at + `}]}}`, ErrMalformed, "health"},
		{"verdict time missing", `{"v":1,"type":"health.verdicts","body":{"node":"n1","verdicts":[{"pool":"web","member":"a","health":"up"}]}}`, ErrMalformed, "at: missing"},
		{"verdict year 1", `{"v":1,"type":"health.verdicts","body":{"node":"n1","verdicts":[{"pool":"web","member":"a","health":"up","at":"0001-01-02T00:00:00Z"}]}}`, ErrMalformed, "year"},
		{"second verdict bad", `{"v":1,"type":"health.verdicts","body":{"node":"n1","verdicts":[{"pool":"web","member":"a","health":"up","at":` + at + `},{"pool":"","member":"b","health":"up","at":` + at + `}]}}`, ErrMalformed, "reports[1]: pool"},
		{"no verdicts", `{"v":1,"type":"health.verdicts","body":{"node":"n1","verdicts":[]}}`, ErrMalformed, "empty"},
		{"negative load", `{"v":1,"type":"load.report","body":{"node":"n1","loads":[{"pool":"web","member":"a","load":-1,"capacity":1,"at":` + at + `}]}}`, ErrMalformed, "negative"},
		{"negative capacity", `{"v":1,"type":"load.report","body":{"node":"n1","loads":[{"pool":"web","member":"a","load":1,"capacity":-1,"at":` + at + `}]}}`, ErrMalformed, "capacity"},
		{"no reports", `{"v":2,"type":"observations","body":{"node":"n1","reports":[]}}`, ErrMalformed, "reports: empty"},
		{"report kind missing", `{"v":2,"type":"observations","body":{"node":"n1","reports":[{"pool":"web","member":"a","value":1,"at":` + at + `}]}}`, ErrMalformed, "kind"},
		{"report kind upper case", `{"v":2,"type":"observations","body":{"node":"n1","reports":[{"pool":"web","member":"a","kind":"Health","value":1,"at":` + at + `}]}}`, ErrMalformed, "lower-case"},
		{"report kind too long", `{"v":2,"type":"observations","body":{"node":"n1","reports":[{"pool":"web","member":"a","kind":"` + strings.Repeat("k", 33) + `","value":1,"at":` + at + `}]}}`, ErrMalformed, "kind"},
		{"health value 2", `{"v":2,"type":"observations","body":{"node":"n1","reports":[{"pool":"web","member":"a","kind":"health","value":2,"at":` + at + `}]}}`, ErrMalformed, "health value"},
		{"load value negative", `{"v":2,"type":"observations","body":{"node":"n1","reports":[{"pool":"web","member":"a","kind":"load","value":-3,"at":` + at + `}]}}`, ErrMalformed, "negative"},
		{"second report bad", `{"v":2,"type":"observations","body":{"node":"n1","reports":[{"pool":"web","member":"a","kind":"load","value":3,"at":` + at + `},{"pool":"web","member":"","kind":"load","value":3,"at":` + at + `}]}}`, ErrMalformed, "reports[1]: member"},
		{"report time missing", `{"v":2,"type":"observations","body":{"node":"n1","reports":[{"pool":"web","member":"a","kind":"load","value":3}]}}`, ErrMalformed, "at: missing"},
		{"admin state", `{"v":1,"type":"admin.set","body":{"states":[{"pool":"web","member":"a","state":"maintenance"}]}}`, ErrMalformed, "maintenance"},
		{"bundle without main", `{"v":1,"type":"config.apply","body":{"bundle":{"main":"","files":{}},"at":` + at + `}}`, ErrMalformed, "main"},
		{"bundle main not in files", `{"v":1,"type":"config.apply","body":{"bundle":{"main":"a.yaml","files":{"b.yaml":""}},"at":` + at + `}}`, ErrMalformed, "not among"},
		{"bundle bad path", `{"v":1,"type":"config.apply","body":{"bundle":{"main":"a.yaml","files":{"a.yaml":"","../x":""}},"at":` + at + `}}`, ErrMalformed, "../x"},
		{"bundle bad base64", `{"v":1,"type":"config.apply","body":{"bundle":{"main":"a.yaml","files":{"a.yaml":"!!"}},"at":` + at + `}}`, ErrMalformed, ""},
		{"keep too big", `{"v":1,"type":"config.apply","body":{"bundle":{"main":"a","files":{"a":""}},"keep":5000,"at":` + at + `}}`, ErrMalformed, "keep"},
		{"rollback version 0", `{"v":1,"type":"config.rollback","body":{"version":0,"at":` + at + `}}`, ErrMalformed, "version"},
		{"too big", `{"v":1,"type":"node.forget","body":{"id":"` + strings.Repeat("a", MaxCommandSize) + `"}}`, ErrMalformed, "bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := DecodeCommand([]byte(tc.in))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, %v; want %v", b, err, tc.want)
			}
			if b != nil {
				t.Errorf("a body came back with the error: %#v", b)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

// Version 1 envelopes (written before changes carried their base) decode
// to the current types with the meaning they had: a non-zero if_version is
// the base, zero applied whatever the current version (Force). A version 1
// or 2 config.apply's files become content carried inside the version,
// one chunk a file, each content once. The commands that became
// Observations decode to it.
func TestDecodeCommandVersion1(t *testing.T) {
	const at = `"2026-11-22T04:00:00Z"`
	for _, tc := range []struct {
		name string
		in   string
		want Body
	}{
		{"apply unconditional", `{"v":1,"type":"config.apply","body":{"bundle":{"main":"a","files":{"a":""}},"at":` + at + `,"comment":"c"}}`,
			inlineConfig(bundle("a", "a", ""), Change{Force: true, At: t0, Comment: "c"})},
		{"apply if_version", `{"v":1,"type":"config.apply","body":{"bundle":{"main":"a","files":{"a":""}},"if_version":3,"keep":4,"at":` + at + `}}`,
			inlineConfig(bundle("a", "a", ""), Change{Base: 3, Keep: 4, At: t0})},
		{"version 2 apply: its files inline", `{"v":2,"type":"config.apply","body":{"bundle":{"main":"a","files":{"a":"eA==","b":"eA=="}},"base":3,"at":` + at + `}}`,
			inlineConfig(bundle("a", "a", "x", "b", "x"), Change{Base: 3, At: t0})},
		{"rollback unconditional", `{"v":1,"type":"config.rollback","body":{"version":2,"at":` + at + `}}`,
			Rollback{Version: 2, Change: Change{Force: true, At: t0}}},
		{"rollback if_version", `{"v":1,"type":"config.rollback","body":{"version":2,"if_version":5,"at":` + at + `}}`,
			Rollback{Version: 2, Change: Change{Base: 5, At: t0}}},
		{"other types unchanged", `{"v":1,"type":"node.forget","body":{"id":"n3"}}`, ForgetNode{ID: "n3"}},
		// Verdicts and load reports, in either envelope version, are
		// observations of kind health and load; capacity is dropped.
		{"verdicts", `{"v":1,"type":"health.verdicts","body":{"node":"n1","verdicts":[{"pool":"web","member":"a","health":"up","at":` + at + `},{"pool":"web","member":"b","health":"down","at":` + at + `}]}}`,
			Observations{Node: "n1", Reports: []ObservationReport{{"web", "a", health.KindHealth, 1, t0}, {"web", "b", health.KindHealth, 0, t0}}}},
		{"load reports", `{"v":2,"type":"load.report","body":{"node":"n2","loads":[{"pool":"web","member":"a","load":12.5,"capacity":100,"at":` + at + `}]}}`,
			Observations{Node: "n2", Reports: []ObservationReport{{"web", "a", health.KindLoad, 12.5, t0}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeCommand([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normBody(got), normBody(tc.want)) {
				t.Errorf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestEncodeCommandValidates(t *testing.T) {
	_, err := EncodeCommand(Observations{Node: "n1"})
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("encode of an empty batch: %v, want ErrMalformed", err)
	}
	if _, err := EncodeCommand(nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("encode nil: %v", err)
	}
}

func TestParseAdminStateShed(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{in: "shed:25", want: "shed:25"},
		{in: "shed:100", want: "drain"},
		{in: "shed:0", err: true},
		{in: "shed:", err: true},
		{in: "shedding", err: true},
	} {
		a, err := ParseAdminState(tc.in)
		if tc.err != (err != nil) || string(a) != tc.want {
			t.Errorf("ParseAdminState(%q) = %q, %v; want %q (error %v)", tc.in, a, err, tc.want, tc.err)
		}
	}
	if err := (SetAdmin{States: []AdminChange{{Pool: "web", Member: "192.0.2.1", State: "shed:100"}}}).validate(); err == nil {
		t.Error("SetAdmin with shed:100 validated: only the canonical spelling (drain) may be replicated")
	}
	if err := (SetAdmin{States: []AdminChange{{Pool: "web", Member: "192.0.2.1", State: "shed:30"}}}).validate(); err != nil {
		t.Errorf("SetAdmin with shed:30: %v", err)
	}
}
