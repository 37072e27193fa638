// Package controltest is a fake datapath for tests of the control plane
// and of what drives it: no privileges, no BPF. It imports only
// dispatcher/datapath (for its types).
package controltest

import (
	"errors"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/ternlb/tern/dispatcher/datapath"
)

// ErrInjected is what a write that the test set to fail returns.
var ErrInjected = errors.New("injected failure")

// Maps is an in-memory datapath (control.Maps, with Services and
// Counters) that fails the test when the control plane writes in an order
// the real datapath could forward wrongly in: a table naming an unset
// backend, or a backend deleted while a table still names it. Its methods
// are safe for concurrent use; set the exported fields before the control
// plane runs, or under Lock.
type Maps struct {
	t testing.TB

	sync.Mutex
	Backends map[uint32]datapath.Backend
	Tables   map[datapath.ServiceKey][]uint32
	Modes    map[datapath.ServiceKey]datapath.Service
	Calls    int // writes made
	// FailSet makes SetService of these services fail; FailIP makes
	// SetBackend of this address fail.
	FailSet map[datapath.ServiceKey]bool
	FailIP  netip.Addr
	// Reading is what Counters returns.
	Reading datapath.Counters
}

// NewMaps returns empty Maps that report misordered writes to t.
func NewMaps(t testing.TB) *Maps {
	return &Maps{
		t:        t,
		Backends: map[uint32]datapath.Backend{},
		Tables:   map[datapath.ServiceKey][]uint32{},
		Modes:    map[datapath.ServiceKey]datapath.Service{},
		FailSet:  map[datapath.ServiceKey]bool{},
	}
}

func (f *Maps) SetBackend(id uint32, b datapath.Backend) error {
	f.Lock()
	defer f.Unlock()
	f.Calls++
	if b.IP == f.FailIP {
		return ErrInjected
	}
	f.Backends[id] = b
	return nil
}

func (f *Maps) DeleteBackend(id uint32) error {
	f.Lock()
	defer f.Unlock()
	f.Calls++
	for k, tbl := range f.Tables {
		if slices.Contains(tbl, id) {
			f.t.Errorf("backend %d deleted while service %s names it", id, k)
		}
	}
	delete(f.Backends, id)
	return nil
}

func (f *Maps) SetService(k datapath.ServiceKey, svc datapath.Service, table []uint32) error {
	f.Lock()
	defer f.Unlock()
	f.Calls++
	if f.FailSet[k] {
		return ErrInjected
	}
	for i, id := range table {
		if _, ok := f.Backends[id]; !ok {
			f.t.Errorf("service %s slot %d names unset backend %d", k, i, id)
			break
		}
	}
	f.Tables[k] = slices.Clone(table)
	f.Modes[k] = svc
	return nil
}

func (f *Maps) DeleteService(k datapath.ServiceKey) error {
	f.Lock()
	defer f.Unlock()
	f.Calls++
	delete(f.Tables, k)
	delete(f.Modes, k)
	return nil
}

// Services lists the services set, sorted.
func (f *Maps) Services() ([]datapath.ServiceKey, error) {
	f.Lock()
	defer f.Unlock()
	return slices.SortedFunc(maps.Keys(f.Tables), datapath.ServiceKey.Compare), nil
}

func (f *Maps) Counters() (datapath.Counters, error) {
	f.Lock()
	defer f.Unlock()
	return f.Reading, nil
}

// Owners maps a service's table to server addresses, slot by slot.
func (f *Maps) Owners(k datapath.ServiceKey) []string {
	f.Lock()
	defer f.Unlock()
	out := make([]string, len(f.Tables[k]))
	for i, id := range f.Tables[k] {
		out[i] = f.Backends[id].IP.String()
	}
	return out
}

// Shares counts a service's slots per server address.
func (f *Maps) Shares(k datapath.ServiceKey) map[string]int {
	n := map[string]int{}
	for _, o := range f.Owners(k) {
		n[o]++
	}
	return n
}
