package probes

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/config"
)

// maxBody is how much of an HTTP body a check reads, maxHeader how much of
// a response before it.
const (
	maxBody   = 64 << 10
	maxHeader = 64 << 10
)

// outcome classifies a result for the result counters.
type outcome uint8

const (
	outcomeUp    outcome = iota
	outcomeDown          // the target answered, but not as expected
	outcomeError         // no answer: refused, timed out, unreachable
)

func (o outcome) String() string { return [...]string{"up", "down", "error"}[o] }

// result is one probe's outcome.
type result struct {
	outcome  outcome
	err      error // nil when up
	load     float64
	capacity float64
	hasLoad  bool
	// rtt is the round trip the check measured (tcp: the connect; http,
	// https, load: to the first byte of the response; dns: the query);
	// 0 when it measures none (exec) or failed.
	rtt time.Duration
}

func up() result { return result{outcome: outcomeUp} }
func upIn(rtt time.Duration) result {
	return result{outcome: outcomeUp, rtt: rtt}
}
func failed(err error) result { return result{outcome: outcomeError, err: err} }
func mismatch(f string, a ...any) result {
	return result{outcome: outcomeDown, err: fmt.Errorf(f, a...)}
}

// checker is one compiled check, shared by every target that uses it.
type checker struct {
	name     string
	cfg      config.Check
	interval time.Duration
	timeout  time.Duration
	run      func(ctx context.Context, t *target) result

	tls     *tls.Config    // https
	readers sync.Pool      // *bufio.Reader for http, https and load responses
	bodyRE  *regexp.Regexp // http, https
	qtype   uint16         // dns
	rcode   int            // dns
	source  netip.Addr     // Options.Source: the local address probes leave from
}

// dialer returns a dialer for t bound to the prober's source address, when
// one is set and t is of the same address family (a source of the other
// family cannot reach t, so the kernel chooses then).
func (ch *checker) dialer(t *target, network string) *net.Dialer {
	d := &net.Dialer{}
	if !ch.source.IsValid() {
		return d
	}
	if ip, err := netip.ParseAddr(t.host); err == nil && ip.Unmap().Is4() != ch.source.Unmap().Is4() {
		return d
	}
	if network == "udp" {
		d.LocalAddr = &net.UDPAddr{IP: ch.source.AsSlice()}
	} else {
		d.LocalAddr = &net.TCPAddr{IP: ch.source.AsSlice()}
	}
	return d
}

// newChecker compiles check name.
func newChecker(name string, c config.Check) (*checker, error) {
	ch := &checker{name: name, cfg: c, interval: c.Interval.D(), timeout: c.Timeout.D()}
	if ch.interval <= 0 || ch.timeout <= 0 {
		return nil, fmt.Errorf("check %q: interval and timeout must be positive", name)
	}
	switch c.Type {
	case "tcp":
		ch.run = ch.tcp
	case "http", "https", "load":
		if c.ExpectBodyRE != "" {
			re, err := regexp.Compile(c.ExpectBodyRE)
			if err != nil {
				return nil, fmt.Errorf("check %q: expect_body_regexp: %w", name, err)
			}
			ch.bodyRE = re
		}
		if c.Type == "https" {
			ch.tls = newTLSConfig(c)
		}
		ch.run = ch.http
		if c.Type == "load" {
			ch.run = ch.loadReport
		}
	case "dns":
		var ok bool
		if ch.qtype, ok = dns.StringToType[strings.ToUpper(c.QType)]; !ok {
			return nil, fmt.Errorf("check %q: qtype %q is not a DNS type", name, c.QType)
		}
		if ch.rcode, ok = dns.StringToRcode[strings.ToUpper(c.ExpectRcode)]; !ok {
			return nil, fmt.Errorf("check %q: expect_rcode %q is not an rcode", name, c.ExpectRcode)
		}
		ch.run = ch.dns
	case "exec":
		if len(c.Command) == 0 {
			return nil, fmt.Errorf("check %q: no command", name)
		}
		ch.run = ch.exec
	default:
		return nil, fmt.Errorf("check %q: unknown type %q", name, c.Type)
	}
	return ch, nil
}

// tcp is up when a connection is accepted. It closes with a reset (linger
// 0), as HAProxy does, so thousands of checks leave no TIME_WAIT sockets on
// this node.
func (ch *checker) tcp(ctx context.Context, t *target) result {
	start := time.Now()
	c, err := ch.dialer(t, "tcp").DialContext(ctx, "tcp", t.hostPort())
	if err != nil {
		return failed(err)
	}
	rtt := time.Since(start)
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
	return upIn(rtt)
}

// newTLSConfig returns the https check's TLS settings; ServerName empty
// means the target's host.
func newTLSConfig(c config.Check) *tls.Config {
	name := c.TLSServerName
	if name == "" && c.Host != "" {
		name = c.Host
		if h, _, err := net.SplitHostPort(c.Host); err == nil {
			name = h
		}
	}
	return &tls.Config{ServerName: name, InsecureSkipVerify: c.TLSSkipVerify}
}

// get makes the check's HTTP/1.1 request to t on a connection of its own
// and returns the status and up to maxBody bytes of the body. It speaks
// HTTP itself rather than through net/http's Transport, whose connection
// goroutines cost thousands of probes a second dearly; the response is
// parsed by net/http (chunked bodies included). No proxy, no redirects.
func (ch *checker) get(ctx context.Context, t *target) (int, []byte, time.Duration, error) {
	fail := func(what string, err error) (int, []byte, time.Duration, error) {
		// The connection's deadline is the context's: it may fire first.
		if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, nil, 0, fmt.Errorf("%s: timed out after %v", what, ch.timeout)
		}
		return 0, nil, 0, fmt.Errorf("%s: %w", what, err)
	}
	start := time.Now()
	conn, err := ch.dialer(t, "tcp").DialContext(ctx, "tcp", t.hostPort())
	if err != nil {
		return fail("connect", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// A cancelled ctx (shutdown) without a deadline still ends the probe.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if ch.tls != nil {
		cfg := ch.tls
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			cfg.ServerName = t.host
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail("tls", err)
		}
		conn = tc
	}
	host := ch.cfg.Host
	if host == "" {
		host = t.hostPort()
		if t.port == defaultHTTPPort(ch.tls != nil) {
			host = t.host
			if strings.Contains(host, ":") {
				host = "[" + host + "]"
			}
		}
	}
	req := make([]byte, 0, 160)
	req = append(req, ch.cfg.Method...)
	req = append(req, ' ')
	req = append(req, ch.cfg.Path...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, host...)
	req = append(req, "\r\nUser-Agent: tern-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"...)
	if _, err := conn.Write(req); err != nil {
		return fail("write request", err)
	}
	// http.ReadResponse does not bound a header; the limit does, so a
	// backend sending headers without end costs at most this much.
	// The time to the first byte counts from the dial, as curl's
	// time_starttransfer does: what a client waits before the answer
	// starts.
	fb := &firstByte{r: conn, start: start}
	src := io.LimitReader(fb, maxHeader+maxBody)
	br, _ := ch.readers.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(src, 4096)
	} else {
		br.Reset(src)
	}
	defer func() { br.Reset(nil); ch.readers.Put(br) }()
	resp, err := http.ReadResponse(br, &http.Request{Method: ch.cfg.Method})
	if err != nil {
		return fail("read response", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fail("read body", err)
	}
	return resp.StatusCode, body, fb.rtt, nil
}

// firstByte notes how long after start its first byte came.
type firstByte struct {
	r     io.Reader
	start time.Time
	rtt   time.Duration
}

func (f *firstByte) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if n > 0 && f.rtt == 0 {
		f.rtt = max(time.Since(f.start), time.Nanosecond)
	}
	return n, err
}

func defaultHTTPPort(https bool) int {
	if https {
		return 443
	}
	return 80
}

func (ch *checker) http(ctx context.Context, t *target) result {
	status, body, rtt, err := ch.get(ctx, t)
	if err != nil {
		return failed(err)
	}
	if !slices.Contains(ch.cfg.ExpectStatus, status) {
		return mismatch("status %d, want %v", status, ch.cfg.ExpectStatus)
	}
	if ch.cfg.ExpectBody != "" && !bytes.Contains(body, []byte(ch.cfg.ExpectBody)) {
		return mismatch("body has no %q in its first %d bytes", ch.cfg.ExpectBody, len(body))
	}
	if ch.bodyRE != nil && !ch.bodyRE.Match(body) {
		return mismatch("body does not match %q in its first %d bytes", ch.cfg.ExpectBodyRE, len(body))
	}
	return upIn(rtt)
}

// loadReport is up when the endpoint answers an expected status with a
// load report, which it carries.
func (ch *checker) loadReport(ctx context.Context, t *target) result {
	status, body, rtt, err := ch.get(ctx, t)
	if err != nil {
		return failed(err)
	}
	if !slices.Contains(ch.cfg.ExpectStatus, status) {
		return mismatch("status %d, want %v", status, ch.cfg.ExpectStatus)
	}
	load, capacity, err := parseLoad(body)
	if err != nil {
		return mismatch("%w", err)
	}
	return result{outcome: outcomeUp, load: load, capacity: capacity, hasLoad: true, rtt: rtt}
}

// parseLoad reads a load report: {"load": 0.42, "capacity": 100} (capacity
// optional) or a bare number.
func parseLoad(b []byte) (load, capacity float64, err error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var r struct {
			Load     *float64 `json:"load"`
			Capacity *float64 `json:"capacity"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return 0, 0, fmt.Errorf("load report: %w", err)
		}
		if r.Load == nil {
			return 0, 0, errors.New(`load report: no "load" field`)
		}
		load = *r.Load
		if r.Capacity != nil {
			capacity = *r.Capacity
			if !(capacity > 0) || math.IsInf(capacity, 0) {
				return 0, 0, fmt.Errorf("load report: capacity %g must be a positive number", capacity)
			}
		}
	} else {
		v, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("load report %q: write a number or {\"load\": n, \"capacity\": n}", truncate(string(b), 40))
		}
		load = v
	}
	if !(load >= 0) || math.IsInf(load, 0) {
		return 0, 0, fmt.Errorf("load report: load %g must be a number of at least 0", load)
	}
	return load, capacity, nil
}

func (ch *checker) dns(ctx context.Context, t *target) result {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(ch.cfg.Query), ch.qtype)
	m.RecursionDesired = true // as dig does: recursive backends need it, authoritative ones ignore it
	c := &dns.Client{Net: "udp", Timeout: ch.timeout, Dialer: ch.dialer(t, "udp")}
	r, rtt, err := c.ExchangeContext(ctx, m, t.hostPort())
	if err == nil && r.Truncated {
		c.Net = "tcp"
		c.Dialer = ch.dialer(t, "tcp")
		r, rtt, err = c.ExchangeContext(ctx, m, t.hostPort())
	}
	if err != nil {
		return failed(err)
	}
	if r.Rcode != ch.rcode {
		return mismatch("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[ch.rcode])
	}
	if want := ch.cfg.ExpectAnswer; want != "" {
		for _, rr := range r.Answer {
			if sameRdata(rr, want) {
				return upIn(rtt)
			}
		}
		return mismatch("no answer record is %q (%d answers)", want, len(r.Answer))
	}
	return upIn(rtt)
}

// sameRdata reports whether rr's data, as zone file text, is want; names
// compare without case and with or without their final dot.
func sameRdata(rr dns.RR, want string) bool {
	got := strings.TrimPrefix(rr.String(), rr.Header().String())
	norm := func(s string) string { return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), ".")) }
	return norm(got) == norm(want)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
