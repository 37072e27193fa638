package config

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const goodDispatcher = `
dispatcher:
  interface: eth0
  services:
    - vip: 192.0.2.10
      port: 80
      check: http-ok
      servers:
        - {address: 10.1.0.11, mac: "02:00:00:00:01:11"}
        - {address: 10.1.0.12, mac: "02:00:00:00:01:12", weight: 0, check: tcp}
    - vip: 192.0.2.20
      port: 53
      proto: udp
      mode: ipip
      servers:
        - {address: 10.2.0.11, mac: "02:00:00:00:02:01", weight: 3}
  ha:
    local: 10.1.0.2:7500
    peers: [10.1.0.3:7500]
    key: "0123456789abcdef0123"
    priority: 200
    preempt: true
    groups:
      - {name: a, vips: [192.0.2.10], priority: 50}
    reach:
      - {address: 10.1.0.1}
      - {address: 10.1.0.1, type: tcp, port: 22, interval: 2s}
`

func decodeDispatcher(t *testing.T, doc string) *Dispatcher {
	t.Helper()
	var top struct {
		Dispatcher *Dispatcher `yaml:"dispatcher"`
	}
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&top); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return top.Dispatcher
}

func problems(d *Dispatcher) []string {
	var out []string
	d.check(func(path, msg string) { out = append(out, path+": "+msg) })
	d.checkRefs(func(name string) bool { return name == "http-ok" || name == "tcp" },
		func(path, msg string) { out = append(out, path+": "+msg) })
	return out
}

func TestDispatcherGoodAndDefaults(t *testing.T) {
	d := decodeDispatcher(t, goodDispatcher)
	if ps := problems(d); len(ps) > 0 {
		t.Fatalf("problems in a good configuration:\n%s", strings.Join(ps, "\n"))
	}
	s0, s1 := d.Services[0], d.Services[1]
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"xdp_mode", d.XDPMode, "generic"},
		{"mode", d.Mode, "mac"},
		{"table_size", d.TableSize, 65537},
		{"proto", s0.Proto, "tcp"},
		{"service mode", s0.Mode, "mac"},
		{"ipip mode kept", s1.Mode, "ipip"},
		{"inherited check", s0.Servers[0].Check, "http-ok"},
		{"own check", s0.Servers[1].Check, "tcp"},
		{"default weight", s0.Servers[0].W(), 1},
		{"drained", s0.Servers[1].W(), 0},
		{"ha id", d.HA.ID, "10.1.0.2:7500"},
		{"interval", d.HA.Interval.D(), 200 * time.Millisecond},
		{"dead_after", d.HA.DeadAfter, 3},
		{"group priority", d.HA.Groups[0].Priority, 50},
		{"group preempt", d.HA.GroupPreempt(d.HA.Groups[0]), true},
		{"reach type", d.HA.Reach[0].Type, "arp"},
		{"reach interval", d.HA.Reach[0].Interval.D(), time.Second},
		{"reach timeout", d.HA.Reach[0].Timeout.D(), 500 * time.Millisecond},
		{"reach fall", d.HA.Reach[0].Fall, 3},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// IPv6 VIPs and servers (mac mode) are accepted: the datapath balances
// IPv6 and takeover announces them by unsolicited neighbour advertisement.
func TestDispatcherIPv6(t *testing.T) {
	doc := strings.Replace(goodDispatcher, "vip: 192.0.2.10", "vip: 2001:db8::10", 1)
	doc = strings.Replace(doc, "vips: [192.0.2.10]", "vips: [2001:db8::10]", 1)
	doc = strings.Replace(doc, "address: 10.1.0.12", "address: 2001:db8:1::12", 1)
	if doc == goodDispatcher {
		t.Fatal("the good configuration changed: this test replaces nothing")
	}
	if ps := problems(decodeDispatcher(t, doc)); len(ps) > 0 {
		t.Fatalf("problems with an IPv6 VIP and server:\n%s", strings.Join(ps, "\n"))
	}
}

func TestDispatcherProblems(t *testing.T) {
	for _, tc := range []struct {
		name      string
		old, new  string // replaced in goodDispatcher
		wantPath  string
		wantInMsg string
	}{
		{"no interface", "interface: eth0", "interface: \"\"", "dispatcher.interface", "required"},
		{"xdp mode", "interface: eth0", "interface: eth0\n  xdp_mode: turbo", "dispatcher.xdp_mode", "generic or native"},
		{"table not prime", "interface: eth0", "interface: eth0\n  table_size: 65536", "dispatcher.table_size", "prime"},
		{"bad vip", "vip: 192.0.2.20", "vip: 192.0.2.300", "dispatcher.services.1.vip", "IPv4"},
		{"mapped vip", "vip: 192.0.2.20", "vip: \"::ffff:192.0.2.20\"", "dispatcher.services.1.vip", "write 192.0.2.20"},
		{"multicast vip", "vip: 192.0.2.20", "vip: ff02::1", "dispatcher.services.1.vip", "not a unicast address"},
		{"ipv6 server in ipip mode", "address: 10.2.0.11", "address: 2001:db8::21", "dispatcher.services.1.servers.0.address", "ipip mode tunnels in IPv4"},
		{"bad port", "port: 53", "port: 70000", "dispatcher.services.1.port", "65535"},
		{"bad proto", "proto: udp", "proto: sctp", "dispatcher.services.1.proto", "tcp or udp"},
		{"bad mode", "mode: ipip", "mode: gre", "dispatcher.services.1.mode", "mac or ipip"},
		{"bad mac", `mac: "02:00:00:00:01:12"`, `mac: "02:00:00:00:01"`, "dispatcher.services.0.servers.1.mac", "MAC"},
		{"missing mac in mac mode", `, mac: "02:00:00:00:01:12"`, ``, "dispatcher.services.0.servers.1.mac", "required in mac mode"},
		{"missing mac in ipip mode", `, mac: "02:00:00:00:02:01"`, ``, "dispatcher.services.1.servers.0.mac", "next_hop_mac"},
		{"duplicate server", "address: 10.1.0.12", "address: 10.1.0.11", "dispatcher.services.0.servers.1.address", "twice"},
		{"bad weight", "weight: 3", "weight: -1", "dispatcher.services.1.servers.0.weight", "weight -1"},
		{"duplicate service", "vip: 192.0.2.20\n      port: 53\n      proto: udp", "vip: 192.0.2.10\n      port: 80\n      proto: tcp", "dispatcher.services.1", "already service 0"},
		{"unknown check", "check: tcp", "check: tcpp", "dispatcher.services.0.servers.1.check", `"tcpp" is not defined`},
		{"unknown service check", "check: http-ok", "check: http", "dispatcher.services.0.check", `"http" is not defined`},
		{"ha local", "local: 10.1.0.2:7500", "local: 10.1.0.2", "dispatcher.ha.local", "ip:port"},
		{"ha peer self", "peers: [10.1.0.3:7500]", "peers: [10.1.0.2:7500]", "dispatcher.ha.peers.0", "own"},
		{"ha no key", `key: "0123456789abcdef0123"`, ``, "dispatcher.ha", "key or key_file"},
		{"ha short key", `key: "0123456789abcdef0123"`, `key: "short"`, "dispatcher.ha.key", "at least 16"},
		{"ha both keys", `key: "0123456789abcdef0123"`, "key: \"0123456789abcdef0123\"\n    key_file: k", "dispatcher.ha.key", "not both"},
		{"ha priority", "priority: 200", "priority: 256", "dispatcher.ha.priority", "1 to 255"},
		{"ha interval", "preempt: true", "preempt: true\n    interval: 1ms", "dispatcher.ha.interval", "10ms"},
		{"group vip not a service", "vips: [192.0.2.10]", "vips: [192.0.2.99]", "dispatcher.ha.groups.0.vips.0", "vip of no service"},
		{"group vip twice", "groups:\n", "groups:\n      - {name: b, vips: [192.0.2.10]}\n", "dispatcher.ha.groups.1.vips.0", "already in group"},
		{"group name taken", "name: a", "name: default", "dispatcher.ha.groups.0.name", "taken"},
		{"reach type", "{address: 10.1.0.1}", "{address: 10.1.0.1, type: http}", "dispatcher.ha.reach.0.type", "arp, icmp or tcp"},
		{"reach tcp port", "type: tcp, port: 22", "type: tcp", "dispatcher.ha.reach.1.port", "port"},
		{"reach timeout", "interval: 2s}", "interval: 2s, timeout: 3s}", "dispatcher.ha.reach.1.timeout", "longer than interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(goodDispatcher, tc.old) {
				t.Fatalf("fixture lacks %q", tc.old)
			}
			d := decodeDispatcher(t, strings.Replace(goodDispatcher, tc.old, tc.new, 1))
			ps := problems(d)
			if !slices.ContainsFunc(ps, func(p string) bool {
				path, msg, _ := strings.Cut(p, ": ")
				return path == tc.wantPath && strings.Contains(msg, tc.wantInMsg)
			}) {
				t.Fatalf("want a problem at %s containing %q, got:\n%s", tc.wantPath, tc.wantInMsg, strings.Join(ps, "\n"))
			}
		})
	}
}

func TestDispatcherUnknownKey(t *testing.T) {
	var top struct {
		Dispatcher *Dispatcher `yaml:"dispatcher"`
	}
	doc := strings.Replace(goodDispatcher, "preempt: true", "preemt: true", 1)
	dec := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.KnownFields(true)
	if err := dec.Decode(&top); err == nil || !strings.Contains(err.Error(), "preemt") {
		t.Fatalf("decode with a misspelt key = %v, want an error naming it", err)
	}
}

// TestDispatcherOnlyConfiguration: tern dispatch's configuration needs no
// zones, and a service naming an unknown check is reported at its line
// by Parse (what tern check runs), not only when the dispatcher starts.
func TestDispatcherOnlyConfiguration(t *testing.T) {
	checks := "checks:\n  http-ok: {type: http, port: 80}\n  tcp: {type: tcp, port: 22}\n"
	if _, ps := Parse("d.yaml", []byte("node: {name: d1}\n"+checks+goodDispatcher)); len(ps) > 0 {
		t.Fatalf("dispatcher-only configuration rejected:\n%v", ps)
	}
	_, ps := Parse("d.yaml", []byte("node: {name: d1}\n"+goodDispatcher))
	if len(ps) != 2 || !strings.Contains(ps[0].String(), `d.yaml:8: service 0: check "http-ok" is not defined`) ||
		!strings.Contains(ps[1].String(), `d.yaml:11: service 0 server 1: check "tcp" is not defined`) {
		t.Fatalf("unknown checks: got\n%v", ps)
	}
}

// Load reads dispatcher.ha.key_file on the host, as tern dispatch will:
// a missing file or a short key is a problem at its line.
func TestDispatcherKeyFileOnHost(t *testing.T) {
	for _, tc := range []struct {
		name, key, want string
	}{
		{"good", "0123456789abcdef0123\n", ""},
		{"short", "short\n", "ha.key: the key is 5 bytes, at least 16 are needed"},
		{"missing", "", "ha.key: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			doc := "dispatcher:\n  interface: eth0\n  ha:\n    local: 10.1.0.2:7500\n    peers: [10.1.0.3:7500]\n    key_file: ha.key\n" +
				"  services:\n    - {vip: 192.0.2.10, port: 80, servers: [{address: 10.1.0.11, mac: \"02:00:00:00:01:11\", check: none}]}\n"
			os.WriteFile(filepath.Join(dir, "x.yaml"), []byte(doc), 0o644)
			if tc.key != "" {
				os.WriteFile(filepath.Join(dir, "ha.key"), []byte(tc.key), 0o600)
			}
			_, err := Load(filepath.Join(dir, "x.yaml"))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tc.want == "" && got != "" || tc.want != "" && (!strings.Contains(got, "x.yaml:6: dispatcher.ha.key_file ") || !strings.Contains(got, tc.want)) {
				t.Errorf("Load: %q, want %q", got, tc.want)
			}
		})
	}
}
