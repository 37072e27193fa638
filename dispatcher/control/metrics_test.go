package control

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ternlb/tern/dispatcher/control/controltest"
	"github.com/ternlb/tern/dispatcher/datapath"
)

// TestCollector: the per-VIP figures Load gives reach a registry
// under their metric names.
func TestCollector(t *testing.T) {
	f := controltest.NewMaps(t)
	c, err := New(f, ctlSpec(), Options{OwnAll: true, FlowLifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctlReconcile(t, c)
	t0 := time.Unix(1000, 0)
	f.Reading = datapath.Counters{Services: map[datapath.ServiceKey]datapath.Counter{ctlWeb: {}, ctlDNS: {}}, TCP: map[datapath.ServiceKey]datapath.TCPCounter{ctlWeb: {}}}
	c.sampleLoad(f, t0)
	f.Reading = datapath.Counters{Services: map[datapath.ServiceKey]datapath.Counter{ctlWeb: {Packets: 50, Bytes: 7000}, ctlDNS: {}}, TCP: map[datapath.ServiceKey]datapath.TCPCounter{ctlWeb: {Opened: 5, Fin: 2}}}
	c.sampleLoad(f, t0.Add(time.Second))

	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector(c.Load))
	vip := ctlWeb.VIP.String()
	// Compare only the web VIP's lines: other VIPs of the spec appear too.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "vip" && l.GetValue() == vip {
					v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
					key := mf.GetName()
					for _, l2 := range m.Label {
						if l2.GetName() == "state" {
							key += "/" + l2.GetValue()
						}
					}
					got[key] = v
				}
			}
		}
	}
	for name, v := range map[string]float64{
		"tern_dispatcher_packets_total":       50,
		"tern_dispatcher_bytes_total":         7000,
		"tern_dispatcher_new_flows_total":     5,
		"tern_dispatcher_active_flows":        3,
		"tern_dispatcher_forwarding":          1,
		"tern_dispatcher_servers/serving":     float64(loadOf(c, vip).Serving),
		"tern_dispatcher_servers/not_serving": float64(loadOf(c, vip).Servers - loadOf(c, vip).Serving),
	} {
		if got[name] != v {
			t.Errorf("%s{vip=%s} = %v, want %v (all: %v)", name, vip, got[name], v, got)
		}
	}
}

func loadOf(c *Control, vip string) VIPLoad {
	for _, l := range c.Load() {
		if l.VIP.String() == vip {
			return l
		}
	}
	return VIPLoad{}
}
