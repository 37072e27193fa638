package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is one decoded, defaulted and validated configuration file.
type Config struct {
	Node  Node            `yaml:"node"`
	Geo   Geo             `yaml:"geo"`
	Sites map[string]Site `yaml:"sites"`
	// Nodes says where each Tern node probes from (by node name), for
	// the latency stage: the RTTs measured from the node nearest a client
	// stand for that client's.
	Nodes      map[string]NodeSite `yaml:"nodes"`
	Checks     map[string]Check    `yaml:"checks"`
	Pools      map[string]Pool     `yaml:"pools"`
	Zones      []Zone              `yaml:"zones"`
	Dispatcher *Dispatcher         `yaml:"dispatcher"`
	// RRL, TSIG and Transfer protect and extend the DNS side (dns.go).
	RRL      *RRL     `yaml:"rrl"`
	TSIG     TSIG     `yaml:"tsig"`
	Transfer Transfer `yaml:"transfer"`

	// Name is the configuration's path as the operator gave it, for
	// messages. File is the same file as a path into FS; other paths in the
	// configuration are relative to its directory (see Resolve).
	Name string `yaml:"-"`
	File string `yaml:"-"`
	// FS is the file system File and every path in it are read from.
	FS fs.FS `yaml:"-"`

	pos    positions
	onHost bool
}

// Node holds this node's own settings.
type Node struct {
	Name      string   `yaml:"name"`
	DNS       []string `yaml:"dns"`
	API       string   `yaml:"api"`
	Raft      string   `yaml:"raft"`
	Data      string   `yaml:"data"`
	Bootstrap bool     `yaml:"bootstrap"`
	Join      []string `yaml:"join"`
	// UDPSockets is how many SO_REUSEPORT sockets each DNS address gets;
	// 0 means one per CPU.
	UDPSockets int `yaml:"udp_sockets"`
	// TCPIdle closes a DNS TCP connection idle this long (default 10s).
	TCPIdle Duration `yaml:"tcp_idle_timeout"`
	// UDPSize is the EDNS0 UDP payload size Tern advertises and the cap it
	// applies to clients' sizes (default 1232, RFC 9715's advice).
	UDPSize int `yaml:"udp_size"`
	// ProbeWait bounds how long the node waits at start for one probe
	// round before it answers pools (default 3s); members still unprobed
	// then answer with their pool's initial state.
	ProbeWait Duration `yaml:"probe_wait"`
	// TLS, when set, runs the Raft transport over mutual TLS (see TLS),
	// and the API over HTTPS with the same certificate.
	TLS TLS `yaml:"tls"`
	// APIToken is the bearer token the API requires for writes (see
	// api.go); APITokenFile names a file holding it instead (read by Load,
	// trimmed; the token is then in APIToken). APIReadToken makes reads
	// need it too.
	APIToken     string `yaml:"api_token"`
	APITokenFile string `yaml:"api_token_file"`
	APIReadToken bool   `yaml:"api_read_token"`
	// APIPublicMetrics keeps /metrics open to anyone who reaches the API
	// when reads need the token (api_read_token), for a Prometheus that
	// scrapes without one. Default false: /metrics is a read like any
	// other (a scraper sends the token, Prometheus with
	// authorization: {credentials_file: ...}).
	APIPublicMetrics bool `yaml:"api_public_metrics"`
	// AllowExecChecks lets this node run exec checks (a command on this
	// host, as the user tern runs as). Default false: a replicated
	// configuration with an exec check is accepted, but this node does
	// not run it and reports its members as not probed here. Only the
	// local file decides: the node section of a replicated configuration
	// is never used.
	AllowExecChecks bool `yaml:"allow_exec_checks"`
	// QueryLog, when set, logs a sample of the queries answered, one line
	// each (client, name, type, rcode, answers, size, time taken), as
	// CoreDNS's log plugin does. This node's own setting: never
	// replicated.
	QueryLog *QueryLog `yaml:"query_log"`
}

// QueryLog is node.query_log.
type QueryLog struct {
	// Sample is the share of queries logged, above 0 up to 1 (every
	// query); 0.01 logs one in a hundred.
	Sample float64 `yaml:"sample"`
}

// Geo holds the MaxMind database and the named geo maps.
type Geo struct {
	Database string `yaml:"database"`
	// Maps name a geo map each: a key ("continent:EU", "country:GB", a
	// CIDR, or "default") to the ordered list of sites preferred there.
	Maps map[string]map[string][]string `yaml:"maps"`
}

// Site is a place members live in.
type Site struct {
	// Location is [latitude, longitude] in degrees.
	Location []float64 `yaml:"location"`
	// Capacity is what the site's members together can serve, in the
	// unit their load check reports (or active flows from a dispatcher);
	// 0: not declared. Past a pool's spill_at fraction of it, the site
	// sheds the excess share of its clients to the next sites (the spill
	// stage).
	Capacity float64 `yaml:"capacity"`
}

// NodeSite is where a Tern node is: a location of its own or its site's.
type NodeSite struct {
	Location []float64 `yaml:"location"`
	Site     string    `yaml:"site"`
}

// NodeLocation returns where node name probes from, ok false when the
// configuration does not say.
func (c *Config) NodeLocation(name string) ([]float64, bool) {
	n, ok := c.Nodes[name]
	if !ok {
		return nil, false
	}
	if len(n.Location) == 2 {
		return n.Location, true
	}
	if s, ok := c.Sites[n.Site]; ok && len(s.Location) == 2 {
		return s.Location, true
	}
	return nil, false
}

// Zone names one zone file.
type Zone struct {
	File string `yaml:"file"`
	// Origin is the zone's name when the file has no $ORIGIN.
	Origin string `yaml:"origin"`
	// DNSSEC, when set, signs the zone (see DNSSEC).
	DNSSEC *DNSSEC `yaml:"dnssec"`
}

// Load reads and validates the configuration file at name on the host's
// file system.
func Load(name string) (*Config, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, fmt.Errorf("config %q: %w", name, err)
	}
	// An fs.FS rooted at / lets every relative path resolve the way an
	// operator expects: against the configuration file's directory.
	c, err := LoadFS(os.DirFS("/"), strings.TrimPrefix(abs, "/"), name)
	if c == nil {
		return nil, err
	}
	c.onHost = true
	// Files only this host has (certificates) are checked here, not in
	// Parse: a configuration replicated from another node names that
	// node's files.
	tps := append(c.CheckTLS(time.Now()), c.readAPIToken()...)
	tps = append(tps, c.checkHAKeyFile()...)
	if tps = append(tps, c.redactedOnHost()...); len(tps) > 0 {
		var ps Problems
		errors.As(err, &ps)
		ps = append(ps, tps...)
		ps.Sort()
		return c, ps
	}
	return c, err
}

// LoadFS reads and validates the configuration at file in fsys; display is
// the name used in messages (the path the operator typed).
func LoadFS(fsys fs.FS, file, display string) (*Config, error) {
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		// The path error names the file as fsys sees it (without the
		// leading slash of Load's root): say only what went wrong.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("read config %q: %w", display, err)
	}
	c, ps := Parse(display, data)
	if c != nil {
		c.FS = fsys
		c.File = file
	}
	return c, ps.Err()
}

// Parse decodes and validates data, naming it display in messages. It
// returns every problem found; the Config is nil only when data is not YAML
// at all.
func Parse(display string, data []byte) (*Config, Problems) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Problems{yamlProblem(display, err)}
	}
	c := &Config{Name: display, File: display, pos: indexPositions(&root)}
	var ps Problems
	if len(root.Content) == 0 {
		return c, Problems{{File: display, Line: 1, Msg: "empty configuration"}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, e := range te.Errors {
				ps = append(ps, yamlProblem(display, errors.New(e)))
			}
		} else {
			ps = append(ps, yamlProblem(display, err))
		}
	}
	c.setDefaults()
	ps = append(ps, c.validate(display)...)
	ps.Sort()
	return c, ps
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func yamlProblem(file string, err error) Problem {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return Problem{File: file, Msg: err.Error()}
	}
	var line int
	fmt.Sscan(m[1], &line)
	msg := m[2]
	// yaml.v3 names Go types; an operator wants to know the key is unknown.
	if k := unknownField.FindStringSubmatch(msg); k != nil {
		msg = fmt.Sprintf("unknown key %q (check its spelling and indentation)", k[1])
	}
	return Problem{File: file, Line: line, Msg: msg}
}

var unknownField = regexp.MustCompile(`^field (\S+) not found in type`)

// Resolve returns p relative to the configuration file's directory, as a
// path into c.FS. Absolute paths stay as they are (without the leading
// slash when FS is rooted at /).
func (c *Config) Resolve(p string) string {
	if p == "" {
		return ""
	}
	if path.IsAbs(p) {
		return strings.TrimPrefix(p, "/")
	}
	return path.Join(path.Dir(c.File), p)
}

// DisplayPath returns how a path written in the configuration (the raw
// value, as given to Resolve) is named in messages: joined to the directory
// of the name the operator gave.
func (c *Config) DisplayPath(p string) string {
	if path.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.Name), p)
}

// HostPath returns p (a path from the configuration) as a path on the
// host's file system, for things that must be opened and watched there
// (the MaxMind database). It is "" when the configuration was not loaded
// from the host.
func (c *Config) HostPath(p string) string {
	if p == "" || !c.onHost {
		return ""
	}
	return "/" + c.Resolve(p)
}

// Line returns the line of the YAML node at the dotted path (or its nearest
// ancestor), for messages found after loading.
func (c *Config) Line(dotted string) int { return c.pos.line(dotted) }

// PoolNames returns the pool names in a stable order.
func (c *Config) PoolNames() []string { return slices.Sorted(maps.Keys(c.Pools)) }
