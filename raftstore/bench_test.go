package raftstore

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"testing"
	"time"

	"github.com/ternlb/tern/health"
)

// bigState is 5 nodes' verdicts and loads on 20 pools of 100 members.
func bigState(b *testing.B) *FSM {
	f := NewFSM()
	idx := uint64(0)
	for n := 1; n <= 5; n++ {
		for p := range 20 {
			rs := make([]ObservationReport, 0, 200)
			for m := range 100 {
				pool, member := fmt.Sprintf("pool%d", p), fmt.Sprintf("10.%d.0.%d", p, m)
				rs = append(rs, ObservationReport{pool, member, health.KindHealth, 1, t0}, ObservationReport{pool, member, health.KindLoad, 10, t0})
			}
			idx++
			mustApply(b, f, idx, Observations{Node: NodeID(fmt.Sprintf("n%d", n)), Reports: rs})
		}
	}
	return f
}

// BenchmarkApplyVerdictBatch: one node's batch of 10 changed verdicts
// against 20,000 held observations (decode, copy-on-write, publish), then
// the same against 100 times as many members: the cost follows the batch.
func BenchmarkApplyVerdictBatch(b *testing.B) {
	b.Run("2000 members", func(b *testing.B) { benchVerdictBatch(b, bigState(b)) })
	b.Run("200000 members", func(b *testing.B) {
		f := bigState(b)
		idx := uint64(1 << 20)
		for p := 20; p < 2000; p++ {
			rs := make([]ObservationReport, 100)
			for m := range rs {
				rs[m] = ObservationReport{fmt.Sprintf("pool%d", p), fmt.Sprintf("10.%d.%d.%d", p/250, p%250, m), health.KindHealth, 1, t0}
			}
			idx++
			mustApply(b, f, idx, Observations{Node: "n1", Reports: rs})
		}
		benchVerdictBatch(b, f)
	})
}

func benchVerdictBatch(b *testing.B, f *FSM) {
	cmds := make([][]byte, 64)
	for i := range cmds {
		rs := make([]ObservationReport, 10)
		for j := range rs {
			rs[j] = ObservationReport{fmt.Sprintf("pool%d", (i+j)%20), fmt.Sprintf("10.%d.0.%d", (i+j)%20, j*7), health.KindHealth, 0, t0.Add(time.Duration(i+1) * time.Second)}
		}
		cmds[i] = enc(b, Observations{Node: "n2", Reports: rs})
	}
	b.ReportAllocs()
	b.ResetTimer()
	idx := f.Applied() + 1000
	for i := 0; i < b.N; i++ {
		idx++
		// Each round of the 64 commands is newer than the last.
		c := cmds[i%len(cmds)]
		if i >= len(cmds) {
			b.StopTimer()
			rs := make([]ObservationReport, 10)
			for j := range rs {
				rs[j] = ObservationReport{fmt.Sprintf("pool%d", (i+j)%20), fmt.Sprintf("10.%d.0.%d", (i+j)%20, j*7), health.KindHealth, float64(i / len(cmds) % 2), t0.Add(time.Duration(i+1) * time.Second)}
			}
			c = enc(b, Observations{Node: "n2", Reports: rs})
			b.StartTimer()
		}
		if _, err := f.applyData(idx, c); err != nil {
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

// bigConfigFSM holds a 1,000,000-record zone beside ten small ones, in two
// versions one record apart (as after a one-record edit), uploaded as a
// node uploads them. It reports the bytes each version carried.
func bigConfigFSM(b *testing.B) *FSM {
	big := zoneText("big.test.", 1_000_000)
	files := map[string][]byte{"tern.yaml": []byte("zones: []\n"), "zones/big.zone": big}
	for i := range 10 {
		files[fmt.Sprintf("zones/small%d.zone", i)] = zoneText(fmt.Sprintf("small%d.test.", i), 50)
	}
	f := NewFSM()
	idx := uint64(0)
	propose := func(bd Bundle, ch Change) int {
		puts, ac := f.State().Upload(bd, ch)
		n := 0
		cmds := []Body{ac}
		for i := len(puts) - 1; i >= 0; i-- {
			cmds = append([]Body{puts[i]}, cmds...)
		}
		for _, p := range cmds {
			data := enc(b, p)
			n += len(data)
			idx++
			if r, ok := applyLog(f, idx, data).(error); ok {
				b.Fatal(r)
			}
		}
		return n
	}
	first := propose(Bundle{Main: "tern.yaml", Files: files}, Change{At: t0})
	edited := maps.Clone(files)
	edited["zones/big.zone"] = bytes.Replace(big, []byte("\nh500000 300 IN A"), []byte("\nh500000 301 IN A"), 1)
	second := propose(Bundle{Main: "tern.yaml", Files: edited}, Change{At: t0, Base: 1})
	b.Logf("zone of %d bytes: the first version took %d bytes of log, a one-record edit %d; %d chunks held (%d bytes)",
		len(big), first, second, f.State().Blobs().Chunks, f.State().Blobs().Bytes)
	return f
}

// BenchmarkSnapshot1MRecords: persisting and restoring that state (its
// size as snapshot-bytes). It takes minutes and a few GB, so it runs only
// when asked:
//
//	TERN_BENCH_BIG=1 go test -run '^$' -bench Snapshot1MRecords -benchtime 3x ./raftstore/
func BenchmarkSnapshot1MRecords(b *testing.B) {
	if os.Getenv("TERN_BENCH_BIG") == "" {
		b.Skip("set TERN_BENCH_BIG=1 to run it")
	}
	f := bigConfigFSM(b)
	var snap bytes.Buffer
	if err := writeSnapshot(&snap, f.State(), f.Applied()); err != nil {
		b.Fatal(err)
	}
	b.Run("persist", func(b *testing.B) {
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			if err := writeSnapshot(&buf, f.State(), f.Applied()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(buf.Len()), "snapshot-bytes")
	})
	b.Run("restore", func(b *testing.B) {
		for b.Loop() {
			if err := NewFSM().Restore(io.NopCloser(bytes.NewReader(snap.Bytes()))); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(snap.Len()), "snapshot-bytes")
	})
}
