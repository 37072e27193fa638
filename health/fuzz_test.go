package health

import (
	"cmp"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// bytesIn reads fuzz input a byte at a time, 0 once exhausted.
type bytesIn struct{ b []byte }

func (in *bytesIn) next() byte {
	if len(in.b) == 0 {
		return 0
	}
	c := in.b[0]
	in.b = in.b[1:]
	return c
}

func (in *bytesIn) pick(n int) int { return int(in.next()) % n }

var fuzzNodes = []NodeID{"n1", "n2", "n3", "n4", "n5"}

// at is a time within two max ages of now, either way.
func (in *bytesIn) at() time.Time {
	return now.Add(time.Duration(int(in.next())-128) * maxAge / 64)
}

func (in *bytesIn) own() Own {
	c := in.next()
	o := Own{Probed: c&1 != 0, Up: c&2 != 0, HasLoad: c&4 != 0, NotAllowed: c&8 != 0, Load: float64(in.next() % 8)}
	if c&16 != 0 {
		o.Err = "refused"
	}
	if c&32 != 0 {
		o.At = in.at()
	}
	return o
}

func (in *bytesIn) observations(kind Kind) []Observation {
	var out []Observation
	for range in.pick(8) {
		v := float64(in.pick(2))
		if kind == KindLoad {
			v = float64(in.pick(16))
		}
		out = append(out, obs(fuzzNodes[in.pick(len(fuzzNodes))], kind, v, in.at()))
	}
	return out
}

func (in *bytesIn) inputs() (Inputs, Params) {
	types := []string{"", "http", "load"}
	m := Member{Key: web.Key, CheckType: types[in.pick(3)], Admin: Admin(in.pick(4)), InitialUp: in.pick(2) == 1}
	x := Inputs{Member: m, Own: in.own(), Carry: in.own(), Admin: Admin(in.pick(4)), AdminSet: in.pick(2) == 1,
		Health: in.observations(KindHealth), Load: in.observations(KindLoad)}
	for _, n := range fuzzNodes {
		if in.pick(2) == 1 {
			x.Probers = append(x.Probers, n)
		}
	}
	p := Params{Self: "n1", Cluster: in.pick(4) != 0, Clock: now, MaxAge: maxAge, Quorum: in.pick(4)}
	if in.pick(4) == 0 {
		p.MaxAge = 0
	}
	return x, p
}

// FuzzDecide checks Decide's invariants over arbitrary inputs: a forced
// member's state is its admin state's; a drain is in force exactly when
// one is set and not outranked; and the result does not depend on the
// order of the observations and probers, nor on a prober listed twice.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte("\x01\x00\x03\x01\x02\x07\x05\x01\x80\x01\x81\x00\x7f\x01\x01\x01\x01\x01\x03"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &bytesIn{data}
		x, p := in.inputs()
		s := Decide(x, p)

		admin := x.Member.Admin
		if x.AdminSet {
			admin = x.Admin
		}
		if s.Admin != admin {
			t.Fatalf("admin in force %v, want %v", s.Admin, admin)
		}
		if s.Forced != admin.forced() || s.Forced && s.Up != (admin == AdminUp) {
			t.Fatalf("admin %v: %+v", admin, s)
		}
		if s.Drain != (admin == AdminDrain) {
			t.Fatalf("admin %v: %+v", admin, s)
		}
		if s.Why == "" {
			t.Fatal("no reason given")
		}

		rng := rand.New(rand.NewPCG(uint64(len(data)), 1))
		y := x
		y.Health, y.Load, y.Probers = slices.Clone(x.Health), slices.Clone(x.Load), slices.Clone(x.Probers)
		if len(y.Probers) > 0 {
			y.Probers = append(y.Probers, y.Probers[0])
		}
		rng.Shuffle(len(y.Health), func(i, j int) { y.Health[i], y.Health[j] = y.Health[j], y.Health[i] })
		rng.Shuffle(len(y.Load), func(i, j int) { y.Load[i], y.Load[j] = y.Load[j], y.Load[i] })
		rng.Shuffle(len(y.Probers), func(i, j int) { y.Probers[i], y.Probers[j] = y.Probers[j], y.Probers[i] })
		if again := Decide(y, p); !reflect.DeepEqual(again, s) {
			t.Fatalf("order-dependent:\n %+v\n %+v", s, again)
		}
	})
}

// FuzzResolver runs arbitrary sequences of input changes and clock moves
// through a Resolver told only which member changed, and checks after each
// that every state equals a fresh resolve of everything, and that the
// changes it reported are exactly the members whose served state moved.
func FuzzResolver(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add([]byte{0, 0, 1, 0, 0, 2, 0, 0, 3, 4, 200, 4, 250, 4, 255, 1, 1, 9, 4, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &bytesIn{data}
		ms := []Member{
			{Key: ka, CheckType: "http", InitialUp: true},
			{Key: kb, CheckType: "load", Admin: AdminDrain},
			{Key: kc, CheckType: ""},
		}
		opts := Options{Self: "n1", Cluster: true, MaxAge: maxAge, Probers: 3}
		src := newSource()
		nodes := fuzzNodes[:3]
		r := NewResolver(opts)
		if err := r.SetMembers(ms); err != nil {
			t.Fatal(err)
		}
		r.SetNodes(nodes)
		clock := now
		r.Resolve(src, nil, clock)
		for step := 0; len(in.b) > 0 && step < 64; step++ {
			before := r.States()
			var changed []Key
			k := ms[in.pick(len(ms))].Key
			switch in.pick(6) {
			case 0, 1:
				kind := KindHealth
				if in.pick(2) == 1 {
					kind = KindLoad
				}
				src.set(k, obs(fuzzNodes[in.pick(len(fuzzNodes))], kind, float64(in.pick(4)), clock.Add(time.Duration(int(in.next())-200)*time.Second/2)))
				changed = []Key{k}
			case 2:
				src.own[k] = in.own()
				changed = []Key{k}
			case 3:
				src.admin[k] = Admin(in.pick(4))
				changed = []Key{k}
			case 4:
				clock = clock.Add(time.Duration(in.next()) * time.Second / 4)
			case 5:
				nodes = fuzzNodes[:1+in.pick(len(fuzzNodes))]
				r.SetNodes(nodes)
			}
			ch := r.Resolve(src, changed, clock)

			full := NewResolver(opts)
			if err := full.SetMembers(ms); err != nil {
				t.Fatal(err)
			}
			full.SetNodes(nodes)
			full.Resolve(src, nil, clock)
			got, want := r.States(), full.States()
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("step %d: incremental\n %+v\nfull\n %+v", step, got, want)
			}
			var moved []Key
			for i := range got {
				if got[i].served(before[i]) {
					moved = append(moved, got[i].Key)
				}
			}
			var reported []Key
			for _, c := range ch.Served {
				reported = append(reported, c.Now.Key)
			}
			byKey := func(a, b Key) int { return cmp.Compare(a.String(), b.String()) }
			slices.SortFunc(reported, byKey)
			slices.SortFunc(moved, byKey)
			if !slices.Equal(reported, moved) {
				t.Fatalf("step %d: reported %v, moved %v", step, reported, moved)
			}
		}
	})
}
