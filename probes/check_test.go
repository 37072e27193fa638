package probes

import (
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ternlb/tern/internal/testnet"
)

func errText(r result) string {
	if r.err == nil {
		return ""
	}
	return r.err.Error()
}

func TestTCP(t *testing.T) {
	ch := checkOf(t, "{type: tcp, port: 1, interval: 1s, timeout: 500ms}")
	tests := []struct {
		name string
		addr string
		want outcome
	}{
		{"listening", tcpServer(t), outcomeUp},
		{"refused", closedPort(t), outcomeError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := runOnce(t, ch, tc.addr); r.outcome != tc.want {
				t.Fatalf("outcome %v (%v), want %v", r.outcome, r.err, tc.want)
			}
		})
	}
}

// httpBackend serves the paths the HTTP tests ask for.
func httpBackend() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "status: all good\n") })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "sick", http.StatusServiceUnavailable) })
	mux.HandleFunc("/host", func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "www.example.test" {
			http.Error(w, "wrong host "+r.Host, http.StatusMisdirectedRequest)
		}
	})
	mux.HandleFunc("/method", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			http.Error(w, "want HEAD", http.StatusMethodNotAllowed)
		}
	})
	mux.HandleFunc("/late-body", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", maxBody)))
		w.Write([]byte("MARKER"))
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("/sni", func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || r.TLS.ServerName != "www.example.test" {
			http.Error(w, "wrong server name", http.StatusMisdirectedRequest)
		}
	})
	return mux
}

func TestHTTP(t *testing.T) {
	srv := httptest.NewServer(httpBackend())
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	tests := []struct {
		name    string
		check   string
		addr    string
		want    outcome
		wantErr string
	}{
		{"status ok", "{type: http, path: /ok}", addr, outcomeUp, ""},
		{"status mismatch", "{type: http, path: /fail}", addr, outcomeDown, "status 503, want [200]"},
		{"status in list", "{type: http, path: /fail, expect_status: [200, 503]}", addr, outcomeUp, ""},
		{"body substring", "{type: http, path: /ok, expect_body: all good}", addr, outcomeUp, ""},
		{"body substring missing", "{type: http, path: /ok, expect_body: all bad}", addr, outcomeDown, `body has no "all bad"`},
		{"body regexp", "{type: http, path: /ok, expect_body_regexp: '(?m)^status: all \\w+$'}", addr, outcomeUp, ""},
		{"body regexp mismatch", "{type: http, path: /ok, expect_body_regexp: '^good'}", addr, outcomeDown, "body does not match"},
		{"body read stops at 64 KiB", "{type: http, path: /late-body, expect_body: MARKER}", addr, outcomeDown, "in its first 65536 bytes"},
		{"host header", "{type: http, path: /host, host: www.example.test}", addr, outcomeUp, ""},
		{"host header missing", "{type: http, path: /host}", addr, outcomeDown, "status 421"},
		{"method", "{type: http, method: HEAD, path: /method}", addr, outcomeUp, ""},
		{"redirect not followed", "{type: http, path: /redirect}", addr, outcomeDown, "status 302"},
		{"redirect expected", "{type: http, path: /redirect, expect_status: [302]}", addr, outcomeUp, ""},
		{"timeout", "{type: http, path: /hang, interval: 1s, timeout: 100ms}", addr, outcomeError, "read response: timed out after 100ms"},
		{"refused", "{type: http, path: /ok}", closedPort(t), outcomeError, "refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := checkOf(t, tc.check)
			begin := time.Now()
			r := runOnce(t, ch, tc.addr)
			if r.outcome != tc.want || !strings.Contains(errText(r), tc.wantErr) {
				t.Fatalf("outcome %v (%q), want %v (%q)", r.outcome, errText(r), tc.want, tc.wantErr)
			}
			if d := time.Since(begin); d > ch.timeout+time.Second {
				t.Errorf("took %v, timeout %v", d, ch.timeout)
			}
		})
	}
}

// rawServer answers every connection with reply, then reads until the
// client goes.
func rawServer(t *testing.T, reply func(net.Conn)) string {
	t.Helper()
	return testnet.Listen(t, "127.0.0.1:0", func(c net.Conn) {
		defer c.Close()
		reply(c)
		io.Copy(io.Discard, c)
	}).Addr().String()
}

// TestHTTPBadServers: a backend that does not speak HTTP, or sends a
// header without end, is down or in error, and costs a bounded read.
func TestHTTPBadServers(t *testing.T) {
	tests := []struct {
		name    string
		reply   func(net.Conn)
		wantErr string
	}{
		{"not http", func(c net.Conn) { io.WriteString(c, "SSH-2.0-OpenSSH_9.2\r\n") }, "malformed HTTP"},
		{"endless header", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\n")
			line := []byte("X-Filler: " + strings.Repeat("x", 1000) + "\r\n")
			for {
				if _, err := c.Write(line); err != nil {
					return
				}
			}
		}, "read response"},
		{"chunked body", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nall \r\n4\r\ngood\r\n0\r\n\r\n")
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := checkOf(t, "{type: http, expect_body: all good, interval: 5s, timeout: 2s}")
			begin := time.Now()
			r := runOnce(t, ch, rawServer(t, tc.reply))
			if !strings.Contains(errText(r), tc.wantErr) || (tc.wantErr == "") != (r.outcome == outcomeUp) {
				t.Fatalf("outcome %v (%q), want %q", r.outcome, errText(r), tc.wantErr)
			}
			if d := time.Since(begin); d > time.Second {
				t.Errorf("took %v: the read was not bounded", d)
			}
		})
	}
}

func TestHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(httpBackend())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case fails the handshake on purpose
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	tests := []struct {
		name    string
		check   string
		want    outcome
		wantErr string
	}{
		{"skip verify", "{type: https, path: /ok, tls_skip_verify: true}", outcomeUp, ""},
		{"untrusted certificate", "{type: https, path: /ok}", outcomeError, "certificate"},
		{"server name", "{type: https, path: /sni, tls_server_name: www.example.test, tls_skip_verify: true}", outcomeUp, ""},
		{"server name from host", "{type: https, path: /sni, host: www.example.test, tls_skip_verify: true}", outcomeUp, ""},
		{"no server name", "{type: https, path: /sni, tls_skip_verify: true}", outcomeDown, "status 421"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runOnce(t, checkOf(t, tc.check), addr)
			if r.outcome != tc.want || !strings.Contains(errText(r), tc.wantErr) {
				t.Fatalf("outcome %v (%q), want %v (%q)", r.outcome, errText(r), tc.want, tc.wantErr)
			}
		})
	}
}

// dnsServer answers www.example.test A 192.0.2.1 and big.example.test
// with a truncated UDP answer (whole over TCP); other names get NXDOMAIN.
// It listens on UDP and TCP on the same port.
func dnsServer(t *testing.T) string {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		switch name := q.Question[0].Name; name {
		case "www.example.test.":
			rr, _ := dns.NewRR("www.example.test. 30 IN A 192.0.2.1")
			m.Answer = append(m.Answer, rr)
		case "big.example.test.":
			if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
				m.Truncated = true
			} else {
				rr, _ := dns.NewRR("big.example.test. 30 IN A 192.0.2.7")
				m.Answer = append(m.Answer, rr)
			}
		default:
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			if try < 10 {
				continue
			}
			t.Fatal(err)
		}
		for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
			started := make(chan struct{})
			s.NotifyStartedFunc = func() { close(started) }
			go s.ActivateAndServe()
			<-started
			t.Cleanup(func() { s.Shutdown() })
		}
		return pc.LocalAddr().String()
	}
}

// silentUDP reads and drops every datagram: a DNS server that never answers.
func silentUDP(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return pc.LocalAddr().String()
}

func TestDNS(t *testing.T) {
	addr := dnsServer(t)
	tests := []struct {
		name    string
		check   string
		addr    string
		want    outcome
		wantErr string
	}{
		{"noerror", "{type: dns, query: www.example.test}", addr, outcomeUp, ""},
		{"answer", "{type: dns, query: www.example.test, expect_answer: 192.0.2.1}", addr, outcomeUp, ""},
		{"answer mismatch", "{type: dns, query: www.example.test, expect_answer: 192.0.2.2}", addr, outcomeDown, `no answer record is "192.0.2.2" (1 answers)`},
		{"rcode mismatch", "{type: dns, query: nope.example.test}", addr, outcomeDown, "rcode NXDOMAIN, want NOERROR"},
		{"rcode expected", "{type: dns, query: nope.example.test, expect_rcode: NXDOMAIN}", addr, outcomeUp, ""},
		{"truncated retried over tcp", "{type: dns, query: big.example.test, expect_answer: 192.0.2.7}", addr, outcomeUp, ""},
		{"timeout", "{type: dns, query: www.example.test, interval: 1s, timeout: 100ms}", silentUDP(t), outcomeError, "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runOnce(t, checkOf(t, tc.check), tc.addr)
			if r.outcome != tc.want || !strings.Contains(errText(r), tc.wantErr) {
				t.Fatalf("outcome %v (%q), want %v (%q)", r.outcome, errText(r), tc.want, tc.wantErr)
			}
		})
	}
}

func TestLoadCheck(t *testing.T) {
	bodies := map[string]string{
		"/json":     `{"load": 0.42, "capacity": 100}`,
		"/bare":     " 0.75\n",
		"/nocap":    `{"load": 3}`,
		"/noload":   `{"capacity": 3}`,
		"/negative": `-1`,
		"/garbage":  `busy`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, b)
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		path           string
		want           outcome
		load, capacity float64
		wantErr        string
	}{
		{"/json", outcomeUp, 0.42, 100, ""},
		{"/bare", outcomeUp, 0.75, 0, ""},
		{"/nocap", outcomeUp, 3, 0, ""},
		{"/noload", outcomeDown, 0, 0, `no "load" field`},
		{"/negative", outcomeDown, 0, 0, "at least 0"},
		{"/garbage", outcomeDown, 0, 0, `load report "busy"`},
		{"/missing", outcomeDown, 0, 0, "status 404"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r := runOnce(t, checkOf(t, "{type: load, path: "+tc.path+"}"), srv.Listener.Addr().String())
			if r.outcome != tc.want || !strings.Contains(errText(r), tc.wantErr) {
				t.Fatalf("outcome %v (%q), want %v (%q)", r.outcome, errText(r), tc.want, tc.wantErr)
			}
			if r.hasLoad != (tc.want == outcomeUp) || r.load != tc.load || r.capacity != tc.capacity {
				t.Errorf("load %v %g capacity %g, want %g %g", r.hasLoad, r.load, r.capacity, tc.load, tc.capacity)
			}
		})
	}
}

func TestParseLoad(t *testing.T) {
	tests := []struct {
		in             string
		load, capacity float64
		bad            bool
	}{
		{`0`, 0, 0, false},
		{`12.5`, 12.5, 0, false},
		{`{"load":0.1,"capacity":2}`, 0.1, 2, false},
		{`{"load":0.1,"capacity":0}`, 0, 0, true},
		{`{"load":"high"}`, 0, 0, true},
		{`NaN`, 0, 0, true},
		{`+Inf`, 0, 0, true},
		{`{"load":1e400}`, 0, 0, true},
		{``, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			l, c, err := parseLoad([]byte(tc.in))
			if (err != nil) != tc.bad || l != tc.load || c != tc.capacity {
				t.Fatalf("parseLoad(%q) = %g, %g, %v", tc.in, l, c, err)
			}
		})
	}
}

func FuzzParseLoad(f *testing.F) {
	for _, s := range []string{`0.5`, `{"load": 0.42, "capacity": 100}`, `{"load": -0}`, `1e308`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, c, err := parseLoad(b)
		if err != nil {
			return
		}
		if !(l >= 0) || math.IsInf(l, 0) || !(c >= 0) || math.IsInf(c, 0) {
			t.Fatalf("parseLoad(%q) accepted load %g capacity %g", b, l, c)
		}
	})
}
