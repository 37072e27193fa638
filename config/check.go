package config

import (
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Check describes how members are probed. Which fields apply depends on
// Type; see package probes.
type Check struct {
	Type     string   `yaml:"type"` // tcp | http | https | dns | exec | load
	Port     int      `yaml:"port"`
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
	Rise     int      `yaml:"rise"`
	Fall     int      `yaml:"fall"`

	// http, https and load
	Method        string `yaml:"method"`
	Path          string `yaml:"path"`
	Host          string `yaml:"host"`
	ExpectStatus  []int  `yaml:"expect_status"`
	ExpectBody    string `yaml:"expect_body"`
	ExpectBodyRE  string `yaml:"expect_body_regexp"`
	TLSServerName string `yaml:"tls_server_name"`
	TLSSkipVerify bool   `yaml:"tls_skip_verify"`

	// dns
	Query        string `yaml:"query"`
	QType        string `yaml:"qtype"`
	ExpectRcode  string `yaml:"expect_rcode"`
	ExpectAnswer string `yaml:"expect_answer"`

	// exec
	Command []string `yaml:"command"`
}

var (
	checkTypes = map[string]bool{"tcp": true, "http": true, "https": true, "dns": true, "exec": true, "load": true}
)

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
		if (ch.Type == "http" || ch.Type == "https" || ch.Type == "load") && ch.Method == "" {
			ch.Method = "GET"
		}
		if (ch.Type == "http" || ch.Type == "https" || ch.Type == "load") && ch.Path == "" {
			ch.Path = "/"
		}
		if (ch.Type == "http" || ch.Type == "https") && len(ch.ExpectStatus) == 0 {
			ch.ExpectStatus = []int{200}
		}
		if ch.Type == "dns" && ch.QType == "" {
			ch.QType = "A"
		}
		if ch.Type == "dns" && ch.ExpectRcode == "" {
			ch.ExpectRcode = "NOERROR"
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
	if ch.Timeout > ch.Interval {
		add(p+".timeout", "check %q: timeout %v is longer than interval %v", name, ch.Timeout.D(), ch.Interval.D())
	}
	if ch.Interval < Duration(10*time.Millisecond) {
		add(p+".interval", "check %q: interval %v is shorter than 10ms", name, ch.Interval.D())
	}
	if ch.Rise < 1 || ch.Fall < 1 {
		add(p, "check %q: rise and fall must be at least 1", name)
	}
	for _, s := range ch.ExpectStatus {
		if s < 100 || s > 599 {
			add(p+".expect_status", "check %q: %d is not an HTTP status", name, s)
		}
	}
	if ch.Type == "exec" && len(ch.Command) == 0 {
		add(p, "check %q: an exec check needs command: [program, args...]", name)
	}
	if ch.Type == "dns" {
		if _, ok := dns.StringToType[strings.ToUpper(ch.QType)]; !ok {
			add(p+".qtype", "check %q: qtype %q is not a DNS type", name, ch.QType)
		}
		if _, ok := dns.StringToRcode[strings.ToUpper(ch.ExpectRcode)]; !ok {
			add(p+".expect_rcode", "check %q: expect_rcode %q is not an rcode (NOERROR, NXDOMAIN, ...)", name, ch.ExpectRcode)
		}
	}
}
