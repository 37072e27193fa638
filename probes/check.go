package probes

import (
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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/config"
)

// maxBody is how much of an HTTP body a check reads.
const maxBody = 64 << 10

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
}

func up() result              { return result{outcome: outcomeUp} }
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

	client *http.Client   // http, https, load
	bodyRE *regexp.Regexp // http, https
	qtype  uint16         // dns
	rcode  int            // dns
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
		ch.client = newHTTPClient(c)
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
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", t.hostPort())
	if err != nil {
		return failed(err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
	return up()
}

func newHTTPClient(c config.Check) *http.Client {
	tr := &http.Transport{
		// No Proxy: a probe goes to the member and nowhere else.
		DialContext:            (&net.Dialer{}).DialContext,
		DisableKeepAlives:      true, // each probe proves a new connection works
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxBody,
	}
	if c.Type == "https" {
		name := c.TLSServerName
		if name == "" {
			name, _, _ = strings.Cut(c.Host, ":")
		}
		tr.TLSClientConfig = &tls.Config{ServerName: name, InsecureSkipVerify: c.TLSSkipVerify}
	}
	return &http.Client{
		Transport: tr,
		// A redirect could lead anywhere; probes only reach configured
		// addresses, so a 3xx is the answer itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get makes the check's request to t and returns the status and up to
// maxBody bytes of the body.
func (ch *checker) get(ctx context.Context, t *target) (int, []byte, error) {
	scheme := "http"
	if ch.cfg.Type == "https" {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, ch.cfg.Method, scheme+"://"+t.hostPort()+ch.cfg.Path, nil)
	if err != nil {
		return 0, nil, err
	}
	if ch.cfg.Host != "" {
		req.Host = ch.cfg.Host
	}
	req.Header.Set("User-Agent", "tern-probe")
	resp, err := ch.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read body: %w", err)
	}
	return resp.StatusCode, body, nil
}

func (ch *checker) http(ctx context.Context, t *target) result {
	status, body, err := ch.get(ctx, t)
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
	return up()
}

// loadReport is up when the endpoint answers an expected status with a
// load report, which it carries.
func (ch *checker) loadReport(ctx context.Context, t *target) result {
	status, body, err := ch.get(ctx, t)
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
	return result{outcome: outcomeUp, load: load, capacity: capacity, hasLoad: true}
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
	c := &dns.Client{Net: "udp", Timeout: ch.timeout}
	r, _, err := c.ExchangeContext(ctx, m, t.hostPort())
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, t.hostPort())
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
				return up()
			}
		}
		return mismatch("no answer record is %q (%d answers)", want, len(r.Answer))
	}
	return up()
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
