package raftstore

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"
)

// bigState is 5 nodes' verdicts and loads on 20 pools of 100 members.
func bigState(b *testing.B) *FSM {
	f := NewFSM()
	idx := uint64(0)
	for n := 1; n <= 5; n++ {
		for p := range 20 {
			vs := make([]VerdictReport, 100)
			ls := make([]LoadReport, 100)
			for m := range vs {
				vs[m] = VerdictReport{fmt.Sprintf("pool%d", p), fmt.Sprintf("10.%d.0.%d", p, m), HealthUp, t0}
				ls[m] = LoadReport{fmt.Sprintf("pool%d", p), fmt.Sprintf("10.%d.0.%d", p, m), 10, 100, t0}
			}
			idx++
			mustApply(b, f, idx, Verdicts{Node: NodeID(fmt.Sprintf("n%d", n)), Verdicts: vs})
			idx++
			mustApply(b, f, idx, Loads{Node: NodeID(fmt.Sprintf("n%d", n)), Loads: ls})
		}
	}
	return f
}

// BenchmarkApplyVerdictBatch: one node's batch of 10 changed verdicts
// against 10,000 held verdicts (decode, copy-on-write, publish).
func BenchmarkApplyVerdictBatch(b *testing.B) {
	f := bigState(b)
	cmds := make([][]byte, 64)
	for i := range cmds {
		vs := make([]VerdictReport, 10)
		for j := range vs {
			vs[j] = VerdictReport{fmt.Sprintf("pool%d", (i+j)%20), fmt.Sprintf("10.%d.0.%d", (i+j)%20, j*7), HealthDown, t0.Add(time.Duration(i+1) * time.Second)}
		}
		cmds[i] = enc(b, Verdicts{Node: "n2", Verdicts: vs})
	}
	b.ReportAllocs()
	b.ResetTimer()
	idx := uint64(1000)
	for i := 0; i < b.N; i++ {
		idx++
		if _, err := f.applyData(idx, cmds[i%len(cmds)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshotPersist: streaming that state (20,000 records).
func BenchmarkSnapshotPersist(b *testing.B) {
	f := bigState(b)
	var buf bytes.Buffer
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		if err := writeSnapshot(&buf, f.State(), 1); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
}

// BenchmarkSnapshotRestore: decoding and checking it.
func BenchmarkSnapshotRestore(b *testing.B) {
	f := bigState(b)
	var buf bytes.Buffer
	if err := writeSnapshot(&buf, f.State(), 1); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := NewFSM().Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
			b.Fatal(err)
		}
	}
}
