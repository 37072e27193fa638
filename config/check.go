package config

import (
	"regexp"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Check describes how members are probed. Which fields apply depends on
// Type; package probes runs them. A pool names one check; a member is probed
// at its Address (or its Probe target) on the check's Port, unless its Probe
// target carries a port of its own.
type Check struct {
	Type string `yaml:"type"` // tcp | http | https | dns | exec | load
	// Port is where the check connects: default 80 for http and load, 443
	// for https, 53 for dns; tcp must give one; exec passes it on (0: none).
	Port     int      `yaml:"port"`
	Interval Duration `yaml:"interval"` // default 5s
	Timeout  Duration `yaml:"timeout"`  // default 2s, at most Interval
	// Rise and Fall are how many consecutive successes (failures) turn a
	// down (up) member up (down). Defaults 2 and 3.
	Rise int `yaml:"rise"`
	Fall int `yaml:"fall"`

	// http, https and load
	Method       string `yaml:"method"` // default GET
	Path         string `yaml:"path"`   // default /
	Host         string `yaml:"host"`   // Host header; default the target address
	ExpectStatus []int  `yaml:"expect_status"`
	// ExpectBody and ExpectBodyRE must be found within the first 64 KiB of
	// the body (http and https only).
	ExpectBody    string `yaml:"expect_body"`
	ExpectBodyRE  string `yaml:"expect_body_regexp"`
	TLSServerName string `yaml:"tls_server_name"` // https; default Host
	TLSSkipVerify bool   `yaml:"tls_skip_verify"` // https

	// dns
	Query string `yaml:"query"` // the name asked, required
	QType string `yaml:"qtype"` // default A
	// ExpectRcode is the response code that means up (default NOERROR).
	ExpectRcode string `yaml:"expect_rcode"`
	// ExpectAnswer, when set, must equal the data of one answer record, as
	// in zone file text: "192.0.2.1" for A, "host.example." for CNAME.
	ExpectAnswer string `yaml:"expect_answer"`

	// exec: program and arguments, run with TERN_POOL, TERN_MEMBER,
	// TERN_ADDRESS and TERN_PORT in its environment.
	Command []string `yaml:"command"`

	// load: reports are smoothed by an exponentially weighted moving
	// average giving a new report the weight LoadSmoothing (0 < w <= 1,
	// default 0.3), and a smoothed value moving by LoadThreshold or less
	// (default 0.05, in the report's units; 0 means the default, write a
	// tiny value like 1e-9 to pass every change on) is not passed on.
	LoadSmoothing float64 `yaml:"load_smoothing"`
	LoadThreshold float64 `yaml:"load_threshold"`

	// Response time (every type but exec): each successful probe's round
	// trip (tcp: the connect; http, https, load: the time to the first
	// byte of the response; dns: the query) is smoothed by an
	// exponentially weighted moving average whose weight halves every
	// RTTHalfLife (default 30s: a new sample weighs 1-2^(-interval/half
	// life)), and passed on (replicated) only when the smoothed value
	// moved by more than RTTHysteresis of the value passed on last
	// (default 0.1, a tenth) and by at least a millisecond, so small
	// changes do not churn answers.
	RTTHalfLife   Duration `yaml:"rtt_half_life"`
	RTTHysteresis float64  `yaml:"rtt_hysteresis"`
}

var (
	checkTypes  = map[string]bool{"tcp": true, "http": true, "https": true, "dns": true, "exec": true, "load": true}
	defaultPort = map[string]int{"http": 80, "https": 443, "load": 80, "dns": 53}
	httpMethod  = regexp.MustCompile(`^[A-Z]+$`)
)

// isHTTP reports whether checks of type t make an HTTP request.
func isHTTP(t string) bool { return t == "http" || t == "https" || t == "load" }

func (c *Config) checkDefaults() {
	for name, ch := range c.Checks {
		if ch.Interval == 0 {
			ch.Interval = Duration(5 * time.Second)
		}
		if ch.Timeout == 0 {
			ch.Timeout = min(Duration(2*time.Second), ch.Interval)
		}
		if ch.Rise == 0 {
			ch.Rise = 2
		}
		if ch.Fall == 0 {
			ch.Fall = 3
		}
		if ch.Port == 0 {
			ch.Port = defaultPort[ch.Type]
		}
		if isHTTP(ch.Type) && ch.Method == "" {
			ch.Method = "GET"
		}
		if isHTTP(ch.Type) && ch.Path == "" {
			ch.Path = "/"
		}
		if isHTTP(ch.Type) && len(ch.ExpectStatus) == 0 {
			ch.ExpectStatus = []int{200}
		}
		if ch.Type == "dns" && ch.QType == "" {
			ch.QType = "A"
		}
		if ch.Type == "dns" && ch.ExpectRcode == "" {
			ch.ExpectRcode = "NOERROR"
		}
		if ch.Type == "load" && ch.LoadSmoothing == 0 {
			ch.LoadSmoothing = 0.3
		}
		if ch.Type == "load" && ch.LoadThreshold == 0 {
			ch.LoadThreshold = 0.05
		}
		if ch.RTTHalfLife == 0 {
			ch.RTTHalfLife = Duration(30 * time.Second)
		}
		if ch.RTTHysteresis == 0 {
			ch.RTTHysteresis = 0.1
		}
		c.Checks[name] = ch
	}
}

func (c *Config) validateCheck(name string, add func(string, string, ...any)) {
	ch := c.Checks[name]
	p := "checks." + name
	if !checkTypes[ch.Type] {
		add(p+".type", "check %q: type %q is not one of tcp, http, https, dns, exec, load", name, ch.Type)
	}
	if ch.Port < 0 || ch.Port > 65535 {
		add(p+".port", "check %q: port %d is out of range", name, ch.Port)
	}
	if ch.Type == "tcp" && ch.Port == 0 {
		add(p, "check %q: a tcp check needs port:", name)
	}
	if ch.Timeout <= 0 {
		add(p+".timeout", "check %q: timeout must be positive", name)
	}
	if ch.Timeout > ch.Interval {
		add(p+".timeout", "check %q: timeout %v is longer than interval %v", name, ch.Timeout.D(), ch.Interval.D())
	}
	if ch.Interval < Duration(10*time.Millisecond) {
		add(p+".interval", "check %q: interval %v is shorter than 10ms", name, ch.Interval.D())
	}
	if ch.Rise < 1 || ch.Fall < 1 || ch.Rise > 100 || ch.Fall > 100 {
		add(p, "check %q: rise and fall must be 1 to 100", name)
	}
	if ch.RTTHalfLife < 0 || ch.RTTHalfLife > Duration(time.Hour) {
		add(p+".rtt_half_life", "check %q: rtt_half_life %v: write a duration up to 1h, like 30s (0: the default, 30s)", name, ch.RTTHalfLife.D())
	}
	if !(ch.RTTHysteresis >= 0 && ch.RTTHysteresis < 1) {
		add(p+".rtt_hysteresis", "check %q: rtt_hysteresis %g: write a fraction from 0 to below 1, like 0.1 (0: the default, 0.1)", name, ch.RTTHysteresis)
	}

	// Keys of another check type are mistakes the operator wants to hear
	// of: a dns check with expect_body would otherwise pass silently.
	misplaced := func(key string, set bool, types string) {
		if set {
			add(p+"."+key, "check %q: %s applies to %s checks, not %s", name, key, types, ch.Type)
		}
	}
	if !checkTypes[ch.Type] {
		return
	}
	if !isHTTP(ch.Type) {
		misplaced("method", ch.Method != "", "http, https and load")
		misplaced("path", ch.Path != "", "http, https and load")
		misplaced("host", ch.Host != "", "http, https and load")
		misplaced("expect_status", len(ch.ExpectStatus) > 0, "http, https and load")
	}
	if ch.Type != "http" && ch.Type != "https" {
		misplaced("expect_body", ch.ExpectBody != "", "http and https")
		misplaced("expect_body_regexp", ch.ExpectBodyRE != "", "http and https")
	}
	if ch.Type != "https" {
		misplaced("tls_server_name", ch.TLSServerName != "", "https")
		misplaced("tls_skip_verify", ch.TLSSkipVerify, "https")
	}
	if ch.Type != "dns" {
		misplaced("query", ch.Query != "", "dns")
		misplaced("qtype", ch.QType != "", "dns")
		misplaced("expect_rcode", ch.ExpectRcode != "", "dns")
		misplaced("expect_answer", ch.ExpectAnswer != "", "dns")
	}
	if ch.Type != "exec" {
		misplaced("command", len(ch.Command) > 0, "exec")
	}
	if ch.Type != "load" {
		misplaced("load_smoothing", ch.LoadSmoothing != 0, "load")
		misplaced("load_threshold", ch.LoadThreshold != 0, "load")
	}

	if isHTTP(ch.Type) {
		if !httpMethod.MatchString(ch.Method) {
			add(p+".method", "check %q: method %q: write an HTTP method in capitals, like GET or HEAD", name, ch.Method)
		}
		if !strings.HasPrefix(ch.Path, "/") || strings.ContainsAny(ch.Path, " \t\r\n") {
			add(p+".path", "check %q: path %q: write an absolute path without spaces, like /healthz", name, ch.Path)
		}
		if strings.ContainsAny(ch.Host, " \t\r\n/") {
			add(p+".host", "check %q: host %q is not a host name", name, ch.Host)
		}
		for _, s := range ch.ExpectStatus {
			if s < 100 || s > 599 {
				add(p+".expect_status", "check %q: %d is not an HTTP status", name, s)
			}
		}
	}
	if ch.ExpectBodyRE != "" {
		if _, err := regexp.Compile(ch.ExpectBodyRE); err != nil {
			add(p+".expect_body_regexp", "check %q: expect_body_regexp: %v", name, err)
		}
	}
	switch ch.Type {
	case "exec":
		if len(ch.Command) == 0 || ch.Command[0] == "" {
			add(p, "check %q: an exec check needs command: [program, args...]", name)
		}
	case "dns":
		if ch.Query == "" {
			add(p, "check %q: a dns check needs query: (the name to ask, like www.example.com)", name)
		} else if _, ok := dns.IsDomainName(ch.Query); !ok {
			add(p+".query", "check %q: query %q is not a domain name", name, ch.Query)
		}
		if _, ok := dns.StringToType[strings.ToUpper(ch.QType)]; !ok {
			add(p+".qtype", "check %q: qtype %q is not a DNS type", name, ch.QType)
		}
		if _, ok := dns.StringToRcode[strings.ToUpper(ch.ExpectRcode)]; !ok {
			add(p+".expect_rcode", "check %q: expect_rcode %q is not an rcode (NOERROR, NXDOMAIN, ...)", name, ch.ExpectRcode)
		}
	case "load":
		if ch.LoadSmoothing <= 0 || ch.LoadSmoothing > 1 {
			add(p+".load_smoothing", "check %q: load_smoothing %g: write the weight of a new report, above 0 and at most 1 (1: no smoothing)", name, ch.LoadSmoothing)
		}
		if ch.LoadThreshold < 0 {
			add(p+".load_threshold", "check %q: load_threshold %g must not be negative", name, ch.LoadThreshold)
		}
	}
}
