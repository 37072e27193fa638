package config

import (
	"encoding/base64"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// RRL is response rate limiting, as BIND and Knot do it: each client
// network (ipv4_prefix, ipv6_prefix) gets responses_per_second responses
// of each kind (answer, NXDOMAIN, NODATA/referral, error) for each name;
// beyond that, responses are dropped, and every slip-th dropped one goes
// out truncated (TC=1) so that a real client retries over TCP, which is
// never limited. Off when the section is absent.
//
//	rrl: {responses_per_second: 20, slip: 2, window: 15s, exempt: [192.0.2.0/24]}
type RRL struct {
	ResponsesPerSecond int `yaml:"responses_per_second"`
	// Slip: every slip-th dropped response is sent truncated; 0 drops
	// them all, 1 truncates them all (default 2).
	Slip *int `yaml:"slip"`
	// Window is how far a client's account may go into debt: a network
	// that went over the rate gets answers again only once its average
	// over the window is under it (default 15s, at most 1m).
	Window Duration `yaml:"window"`
	// IPv4Prefix and IPv6Prefix group clients into networks (default 24
	// and 56).
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// Exempt lists client networks never limited (CIDRs or addresses).
	Exempt []string `yaml:"exempt"`
	// TableSize is how many accounts the limiter keeps (default 65536,
	// rounded up to a power of two); the oldest are evicted.
	TableSize int `yaml:"table_size"`
}

// SlipValue returns the slip ratio with its default.
func (r *RRL) SlipValue() int {
	if r.Slip == nil {
		return 2
	}
	return *r.Slip
}

// TSIG holds the TSIG keys (RFC 8945) that transfers and NOTIFY use.
//
//	tsig: {keys: {xfr: {algorithm: hmac-sha256, secret: BASE64}}}
type TSIG struct {
	Keys map[string]TSIGKey `yaml:"keys"`
}

// TSIGKey is one shared secret: inline (secret, base64) or in a file on
// this host (secret_file, holding the base64 text).
type TSIGKey struct {
	// Algorithm is hmac-sha256 (default), hmac-sha384, hmac-sha512 or
	// hmac-sha224.
	Algorithm  string `yaml:"algorithm"`
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
}

// Transfer says who may transfer the zones out (AXFR, IXFR over TCP) and
// which secondaries hear a NOTIFY when a zone's serial changes.
//
//	transfer:
//	  allow: [{from: 192.0.2.0/24, key: xfr}]
//	  notify: [{to: "192.0.2.53:53", key: xfr}]
type Transfer struct {
	Allow  []TransferAllow `yaml:"allow"`
	Notify []NotifyTarget  `yaml:"notify"`
}

// TransferAllow admits transfers from the From network (every address
// when empty) signed with Key (unsigned ones too when empty). At least
// one of them must be set.
type TransferAllow struct {
	From string `yaml:"from"`
	Key  string `yaml:"key"`
}

// NotifyTarget is a secondary to NOTIFY (host:port, port 53 when left
// out), signed with Key when set.
type NotifyTarget struct {
	To  string `yaml:"to"`
	Key string `yaml:"key"`
}

// tsigAlgorithms maps the names an operator writes to miekg/dns's.
var tsigAlgorithms = map[string]string{
	"hmac-sha224": dns.HmacSHA224,
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

// TSIGAlgorithm returns the key's algorithm as a DNS name
// ("hmac-sha256."), with the default applied.
func (k TSIGKey) TSIGAlgorithm() string {
	if k.Algorithm == "" {
		return dns.HmacSHA256
	}
	return tsigAlgorithms[strings.ToLower(strings.TrimSuffix(k.Algorithm, "."))]
}

// TSIGKeyName returns a configured key's name as TSIG carries it on the
// wire: a lower-case, fully qualified domain name.
func TSIGKeyName(name string) string { return dns.CanonicalName(name) }

// ParsePrefix reads a CIDR, or a single address as its host prefix.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// NotifyAddr returns a NOTIFY target's address with port 53 added when
// it has none.
func NotifyAddr(to string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(to); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(strings.Trim(to, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an address or address:port", to)
	}
	return netip.AddrPortFrom(a, 53), nil
}

func (c *Config) dnsDefaults() {
	if r := c.RRL; r != nil {
		if r.Window == 0 {
			r.Window = Duration(15 * time.Second)
		}
		if r.IPv4Prefix == 0 {
			r.IPv4Prefix = 24
		}
		if r.IPv6Prefix == 0 {
			r.IPv6Prefix = 56
		}
		if r.TableSize == 0 {
			r.TableSize = 65536
		}
	}
}

// validateDNS checks rrl, tsig and transfer. Secret files are read by
// TSIGSecrets, on the host that uses them.
func (c *Config) validateDNS(add func(path, format string, args ...any)) {
	c.dnsDefaults()
	if r := c.RRL; r != nil {
		if r.ResponsesPerSecond < 1 || r.ResponsesPerSecond > 10000 {
			add("rrl.responses_per_second", "responses_per_second %d: write 1 to 10000 (BIND and Knot suggest 5 to 20), or remove the rrl section to turn it off", r.ResponsesPerSecond)
		}
		if s := r.SlipValue(); s < 0 || s > 10 {
			add("rrl.slip", "slip %d: write 0 (drop every limited response) to 10; 2 (every second one goes out truncated) is the usual choice", s)
		}
		if w := r.Window.D(); w < time.Second || w > time.Minute {
			add("rrl.window", "window %v: write 1s to 1m (15s is the usual choice)", w)
		}
		if r.IPv4Prefix < 1 || r.IPv4Prefix > 32 {
			add("rrl.ipv4_prefix", "ipv4_prefix %d: write 1 to 32 (24 groups a /24)", r.IPv4Prefix)
		}
		if r.IPv6Prefix < 1 || r.IPv6Prefix > 128 {
			add("rrl.ipv6_prefix", "ipv6_prefix %d: write 1 to 128 (56 groups a /56)", r.IPv6Prefix)
		}
		if r.TableSize < 1024 || r.TableSize > 1<<24 {
			add("rrl.table_size", "table_size %d: write 1024 to 16777216 accounts", r.TableSize)
		}
		for i, e := range r.Exempt {
			if _, err := ParsePrefix(e); err != nil {
				add(fmt.Sprintf("rrl.exempt.%d", i), "exempt %q: write a CIDR like 192.0.2.0/24 or an address", e)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.TSIG.Keys)) {
		k := c.TSIG.Keys[name]
		path := "tsig.keys." + name
		if _, ok := dns.IsDomainName(name); !ok || name == "." {
			add(path, "TSIG key name %q: write a domain name like xfr or tern-xfr.example.com", name)
		}
		if k.Algorithm != "" && tsigAlgorithms[strings.ToLower(strings.TrimSuffix(k.Algorithm, "."))] == "" {
			add(path+".algorithm", "TSIG algorithm %q: write hmac-sha256 (or hmac-sha224, hmac-sha384, hmac-sha512)", k.Algorithm)
		}
		switch {
		case k.Secret != "" && k.SecretFile != "":
			add(path, "TSIG key %q has both secret and secret_file: keep one", name)
		case k.Secret == "" && k.SecretFile == "":
			add(path, "TSIG key %q has no secret: write secret: <base64> (make one with: head -c 32 /dev/urandom | base64) or secret_file: <path>", name)
		case k.Secret != "" && k.Secret != Redacted: // Redacted: a replicated copy (see TSIGSecrets)
			if err := checkSecret(k.Secret); err != nil {
				add(path+".secret", "TSIG key %q: %v", name, err)
			}
		}
	}
	key := func(path, name string) {
		if name == "" {
			return
		}
		if _, ok := c.TSIG.Keys[name]; !ok {
			add(path, "key %q is not under tsig.keys", name)
		}
	}
	for i, a := range c.Transfer.Allow {
		path := fmt.Sprintf("transfer.allow.%d", i)
		if a.From == "" && a.Key == "" {
			add(path, "a transfer allow entry needs from: (a CIDR) or key: (a TSIG key), or both")
		}
		if a.From != "" {
			if _, err := ParsePrefix(a.From); err != nil {
				add(path+".from", "from %q: write a CIDR like 192.0.2.0/24 or an address", a.From)
			}
		}
		key(path+".key", a.Key)
	}
	for i, n := range c.Transfer.Notify {
		path := fmt.Sprintf("transfer.notify.%d", i)
		if _, err := NotifyAddr(n.To); err != nil {
			add(path+".to", "notify to %q: write an address and port like 192.0.2.53:53 (a secondary's address, not a name)", n.To)
		}
		key(path+".key", n.Key)
	}
}

func checkSecret(s string) error {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("secret is not base64: %v", err)
	}
	if len(b) < 16 {
		return fmt.Errorf("secret is %d bytes: use at least 16 (32 for hmac-sha256)", len(b))
	}
	return nil
}

// TSIGSecret is a key ready to use: its wire name, algorithm and base64
// secret.
type TSIGSecret struct {
	Name      string // wire form: "xfr."
	Algorithm string // "hmac-sha256."
	Secret    string // base64
}

// TSIGSecrets returns every TSIG key by configured name, reading
// secret_file ones from c.FS. A file that cannot be read or holds no valid
// secret is a problem at the line of its secret_file; an inline secret
// that is the placeholder Redacted is a problem at its line.
func (c *Config) TSIGSecrets() (map[string]TSIGSecret, Problems) {
	out := make(map[string]TSIGSecret, len(c.TSIG.Keys))
	var ps Problems
	for _, name := range slices.Sorted(maps.Keys(c.TSIG.Keys)) {
		k := c.TSIG.Keys[name]
		secret := strings.TrimSpace(k.Secret)
		if k.SecretFile == "" && secret == Redacted {
			// A replicated copy's placeholder is never a key: a node's
			// TSIG keys come from its own file.
			ps = append(ps, Problem{File: c.Name, Line: c.Line("tsig.keys." + name + ".secret"), Msg: fmt.Sprintf("TSIG key %q: the secret is %q, a replicated copy's placeholder, not a key: this node's own file must hold the secret (or secret_file)", name, Redacted)})
			continue
		}
		if k.SecretFile != "" {
			line := c.Line("tsig.keys." + name + ".secret_file")
			if c.FS == nil {
				ps = append(ps, Problem{File: c.Name, Line: line, Msg: fmt.Sprintf("TSIG key %q: secret_file %s: the configuration has no file system to read it from", name, k.SecretFile)})
				continue
			}
			b, err := fs.ReadFile(c.FS, c.Resolve(k.SecretFile))
			if err != nil {
				ps = append(ps, Problem{File: c.Name, Line: line, Msg: fmt.Sprintf("TSIG key %q: secret_file %s: %v", name, c.DisplayPath(k.SecretFile), unwrapPath(err))})
				continue
			}
			secret = strings.TrimSpace(string(b))
			if err := checkSecret(secret); err != nil {
				ps = append(ps, Problem{File: c.Name, Line: line, Msg: fmt.Sprintf("TSIG key %q: secret_file %s: %v", name, c.DisplayPath(k.SecretFile), err)})
				continue
			}
		}
		out[name] = TSIGSecret{Name: TSIGKeyName(name), Algorithm: k.TSIGAlgorithm(), Secret: secret}
	}
	return out, ps
}
