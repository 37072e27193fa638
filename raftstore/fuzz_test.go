package raftstore

import (
	"reflect"
	"testing"
)

// FuzzDecodeCommand: decoding never panics; what does not decode is
// rejected by Apply without touching the state; what decodes encodes back
// to the same command, and Apply either applies it or rejects it whole.
func FuzzDecodeCommand(f *testing.F) {
	for _, data := range randomLog(f, 3, 40) {
		f.Add(data)
	}
	f.Add([]byte(`{"v":1,"type":"admin.set","body":{"states":[{"pool":"web","member":"a","state":"drain"}]}}`))
	f.Add([]byte(`{"v":1,"type":"config.rollback","body":{"version":1,"at":"2026-11-22T04:00:00Z"}}`))
	f.Add([]byte(`{"v":2,"type":"config.apply","body":{"bundle":{"main":"a","files":{"a":"eQ=="}},"base":1,"at":"2026-11-22T04:00:00Z"}}`))
	f.Add([]byte(`{"v":2,"type":"health.verdicts","body":{"node":"n1","verdicts":[{"pool":"web","member":"a","health":"down","at":"2026-11-22T04:00:00Z"}]}}`))
	f.Add([]byte(`{"v":2,"type":"load.report","body":{"node":"n1","loads":[{"pool":"web","member":"a","load":3,"capacity":9,"at":"2026-11-22T04:00:00Z"}]}}`))
	f.Add(enc(f, PutBlobs{Chunks: []Chunk{{sha([]byte("ab")), []byte("ab")}}, Files: []FileSpec{{sha([]byte("ab")), 2, []Hash{sha([]byte("ab"))}}}}))
	f.Add(enc(f, ApplyConfig{Manifest: Manifest{Main: "a", Files: map[string]Hash{"a": sha([]byte("x")), "b": sha([]byte("ab"))}}, Change: Change{Base: 1, At: t0}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsm := NewFSM()
		mustApply(t, fsm, 1, inlineApply(bundle("a", "a", "x"), Change{At: t0}))
		mustApply(t, fsm, 2, verdict("n1", "a", true, t0))
		before := fsm.State()
		hash := before.Hash()

		b, err := DecodeCommand(data)
		r := applyLog(fsm, 3, data)
		if err != nil {
			if b != nil {
				t.Fatalf("error %v with a body %#v", err, b)
			}
			if _, ok := r.(error); !ok {
				t.Fatalf("DecodeCommand rejected (%v) but Apply returned %#v", err, r)
			}
			if fsm.State() != before || before.Hash() != hash {
				t.Fatal("a malformed command changed the state")
			}
			return
		}
		again, err := EncodeCommand(b)
		if err != nil {
			t.Fatalf("decoded command does not encode: %v", err)
		}
		b2, err := DecodeCommand(again)
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v\n%s", err, again)
		}
		if !reflect.DeepEqual(normBody(b2), normBody(b)) {
			t.Fatalf("round trip changed the command:\n%#v\n%#v", b, b2)
		}
		switch r := r.(type) {
		case error:
			if fsm.State() != before || before.Hash() != hash {
				t.Fatal("a refused command changed the state")
			}
		case Result:
			if !r.Changed && fsm.State() != before {
				t.Fatal("an unchanged result published a new state")
			}
		default:
			t.Fatalf("Apply returned %T", r)
		}
	})
}
