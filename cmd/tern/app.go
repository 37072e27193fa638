package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/ternlb/tern/config"
	lifecycle "github.com/ternlb/tern/internal/run"
	"github.com/ternlb/tern/node"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

func newApp() *cli.App {
	return &cli.App{
		Name:  programName,
		Usage: "DNS-based global load balancer",
		Description: "Flags may stand before or after the arguments and the command names " +
			"(tern member drain web 192.0.2.10 --api 10.0.0.2:8054); -- ends them. " +
			"Exit status: 0 done, 1 the request failed or the state is unhealthy, 2 a usage mistake.",
		HideHelpCommand: true, // tern help CMD is read by arrange
		HideVersion:     true, // --version is the app's own flag
		// Completion scripts ask the binary for candidates (completion.go).
		EnableBashCompletion: true,
		Flags:                globalFlags(),
		Action: func(c *cli.Context) error {
			if c.Bool("version") {
				return printVersion(c)
			}
			return usagef("give a command: %s (see tern --help)", strings.Join(visibleNames(c.App.Commands), ", "))
		},
		// The command table: a new command is one more line here, in its
		// own file; arrange, completion and the man page find it.
		Commands: []*cli.Command{
			serveCommand(),
			checkCommand(),
			applyCommand(),
			explainCommand(),
			statusCommand(),
			poolsCommand(),
			poolCommand(),
			memberCommand(),
			siteCommand(),
			clusterCommand(),
			configCommand(),
			rollbackCommand(),
			dispatchCommand(), decapCommand(),
			dnssecCommand(),
			versionCommand(),
			snapshotCommand(),
			completionCommand(),
			manCommand(),
			helpCommand(),
		},
	}
}

// globalFlags are every command's: how to reach a node's API.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "api", Value: "127.0.0.1:8054", EnvVars: []string{"TERN_API"}, Usage: "node API `ADDRESS` (host:port or URL)"},
		&cli.StringFlag{Name: "token", EnvVars: []string{"TERN_TOKEN"}, Usage: "bearer `TOKEN` for writes (and reads, with node.api_read_token)"},
		&cli.StringFlag{Name: "ca", EnvVars: []string{"TERN_CA"}, Usage: "CA certificate `FILE` to verify an https API"},
		&cli.BoolFlag{Name: "version", Usage: "print the version"},
	}
}

// helpCommand documents tern help CMD, which arrange turns into
// tern CMD --help before it runs.
func helpCommand() *cli.Command {
	return &cli.Command{
		Name:      "help",
		Usage:     "show a command's help",
		ArgsUsage: "[COMMAND...]",
		Action:    func(c *cli.Context) error { return cli.ShowAppHelp(c) },
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:   "version",
		Usage:  "print the version",
		Flags:  outputFlags(),
		Action: printVersion,
	}
}

// fullVersion is the linked version, with the VCS revision for a dev build.
func fullVersion() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v += "+" + s.Value
			}
		}
	}
	return v
}

func printVersion(c *cli.Context) error {
	v := fullVersion()
	return emit(c, map[string]string{"version": v}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "tern %s\n", v)
		return err
	})
}

// checkResult is what tern check prints with -o json.
type checkResult struct {
	File     string   `json:"file"`
	OK       bool     `json:"ok"`
	Problems []string `json:"problems"`
	Warnings []string `json:"warnings"`
	// ClusterPart: the file has no node: section (a cluster-wide part for
	// tern apply; tern serve needs one).
	ClusterPart bool `json:"cluster_part,omitempty"`
}

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "validate a configuration and its zone files offline",
		ArgsUsage: " ",
		Flags: append(outputFlags(),
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "configuration `FILE`", Required: true}),
		Action: func(c *cli.Context) error {
			file := c.String("config")
			ps, warnings := node.CheckWarn(file)
			r := checkResult{File: file, OK: len(ps) == 0, Problems: []string{}, Warnings: []string{}}
			for _, p := range ps {
				r.Problems = append(r.Problems, p.String())
			}
			if r.OK {
				for _, w := range warnings { // legal, but likely a mistake
					w.Msg = "warning: " + w.Msg
					r.Warnings = append(r.Warnings, w.String())
				}
				if ok, err := hasNodeSection(file); err == nil && !ok {
					r.ClusterPart = true
				}
			}
			err := emit(c, r, func(w io.Writer) error {
				for _, p := range append(r.Problems, r.Warnings...) {
					fmt.Fprintln(c.App.ErrWriter, p)
				}
				switch {
				case !r.OK:
				case r.ClusterPart && hasSection(file, "dispatcher"):
					fmt.Fprintf(w, "%s: ok (no node: section: a file for tern dispatch, or a cluster-wide part for tern apply; tern serve needs one)\n", file)
				case r.ClusterPart:
					fmt.Fprintf(w, "%s: ok (no node: section: a cluster-wide part for tern apply; tern serve needs one)\n", file)
				default:
					fmt.Fprintf(w, "%s: ok\n", file)
				}
				return nil
			})
			if err == nil && !r.OK {
				err = cli.Exit(fmt.Sprintf("%d problem(s) found", len(ps)), exitFailed)
			}
			return err
		},
	}
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run a Tern node",
		Flags: append(logFlags(),
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "configuration `FILE`"},
			&cli.BoolFlag{Name: "dev", Usage: "serve the embedded example configuration on loopback"},
			&cli.StringFlag{Name: "api-token", EnvVars: []string{"TERN_API_TOKEN"}, Usage: "bearer `TOKEN` the API requires for writes (reads too with node.api_read_token); overrides node.api_token(_file); in a cluster every node's must match (nodes use it to join and forward writes)"},
			&cli.StringFlag{Name: "probe-source", Usage: "local `ADDRESS` health probes leave from (default: the kernel chooses)"},
			&cli.DurationFlag{Name: "verdict-max-age", Usage: "in a cluster, ignore a node's health verdict older than this (default: 3 x the longest check interval, at least 30s)"},
			&cli.DurationFlag{Name: "verdict-refresh", Usage: "in a cluster, re-propose unchanged verdicts this often (default: a third of --verdict-max-age)"},
			&cli.BoolFlag{Name: "release-startup-pages", Value: true, EnvVars: []string{"TERN_RELEASE_STARTUP_PAGES"}, Usage: "once serving, have the kernel reclaim the pages of the tern executable that starting touched (Linux, MADV_PAGEOUT); what serving uses faults back in"},
			&cli.StringFlag{Name: "cpuprofile", EnvVars: []string{"TERN_CPUPROFILE"}, Usage: "write a Go CPU profile of the whole run to `FILE` (read it with go tool pprof)"},
		),
		Action: func(c *cli.Context) error {
			log, err := commandLogger(c)
			if err != nil {
				return err
			}
			load, err := loader(c)
			if err != nil {
				return err
			}
			cfg, err := load()
			if err != nil {
				return reportProblems(c, err)
			}
			o := node.Options{Logger: log, ProbeWait: cfg.Node.ProbeWait.D(), APIToken: c.String("api-token"), VerdictMaxAge: c.Duration("verdict-max-age"), VerdictRefresh: c.Duration("verdict-refresh"), Version: version}
			if src := c.String("probe-source"); src != "" {
				if o.ProbeSource, err = netip.ParseAddr(src); err != nil {
					return cli.Exit(fmt.Sprintf("--probe-source %q: write an IP address", src), 2)
				}
			}
			n, err := node.New(cfg, o)
			if err != nil {
				return reportProblems(c, err)
			}
			ctx, stop := signalContext(c.Context)
			defer stop()
			if path := c.String("cpuprofile"); path != "" {
				stopProfile, err := startCPUProfile(path)
				if err != nil {
					return err
				}
				defer stopProfile()
			}
			// The node, then what acts on it: stopped first, they never
			// reload or report a node that has stopped.
			var g lifecycle.Group
			var nodeErr error
			g.Go("node", func(ctx context.Context) error { nodeErr = n.Run(ctx); return nodeErr })
			g.Go("reload on SIGHUP", func(ctx context.Context) error { reloadOnHUP(ctx, n, load, log); return nil })
			g.Go("serving log", func(ctx context.Context) error {
				select {
				case <-n.Serving():
					addrs := n.DNSAddrs()
					if c.Bool("release-startup-pages") {
						if size, err := releaseStartupPages(); err != nil {
							log.Debug("startup pages kept", "err", err)
						} else {
							log.Debug("startup pages released", "bytes", size)
						}
					}
					attrs := []any{"node", cfg.Node.Name, "dns", fmt.Sprint(addrs)}
					if u := n.APIURL(); u != "" {
						attrs = append(attrs, "api", u, "status_page", u+"/")
					}
					log.Info("serving", attrs...)
					if c.Bool("dev") && len(addrs) > 0 {
						host, port := splitAddr(addrs[0].String())
						fmt.Fprintf(c.App.Writer, "Tern is serving gslb.example.test. Try:\n  dig @%s -p %s www.gslb.example.test A\n", host, port)
					}
				case <-ctx.Done():
				}
				<-ctx.Done()
				return nil
			})
			err = g.Run(ctx)
			log.Info("stopped")
			if nodeErr != nil {
				return nodeErr // it names its own failed part
			}
			return err
		},
	}
}

// loader returns how serve (and SIGHUP) reads the configuration.
func loader(c *cli.Context) (func() (*config.Config, error), error) {
	switch {
	case c.Bool("dev") && c.String("config") != "":
		return nil, cli.Exit("give --config FILE or --dev, not both", 2)
	case c.Bool("dev"):
		return node.DevConfig, nil
	case c.String("config") != "":
		path := c.String("config")
		return func() (*config.Config, error) {
			cfg, err := config.Load(path)
			if err != nil {
				return cfg, err
			}
			if ok, err := hasNodeSection(path); err != nil || !ok {
				return nil, errNoNode(path, err)
			}
			return cfg, nil
		}, nil
	}
	return nil, cli.Exit("tern serve needs --config FILE (or --dev for the embedded example)", 2)
}

// hasNodeSection reports whether the YAML file at path has a node: key
// with something under it. Without one a file is only a cluster-wide part
// (what `tern apply` sends): serving it would make a node of defaults
// (this host's name, DNS on [::]:53, no API) rather than the one meant.
func hasNodeSection(path string) (bool, error) {
	return section(path, "node")
}

// section reports whether the YAML file at path has a key with a
// non-empty mapping under it.
func section(path, key string) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(data, &top); err != nil {
		return false, err
	}
	n, ok := top[key]
	return ok && n.Kind == yaml.MappingNode && len(n.Content) > 0, nil
}

// hasSection is section, false when the file does not read.
func hasSection(path, key string) bool {
	ok, err := section(path, key)
	return ok && err == nil
}

func errNoNode(path string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return cli.Exit(fmt.Sprintf("%s has no node: section: tern serve needs one to know which node it is (name, dns, api, and in a cluster raft, data, bootstrap or join); a file without it is a cluster-wide part for tern apply", path), 1)
}

func reloadOnHUP(ctx context.Context, n *node.Node, load func() (*config.Config, error), log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			cfg, err := load()
			if err == nil {
				err = n.Reload(ctx, cfg)
			} else {
				n.ReloadFailed(err)
			}
			if err != nil {
				logProblems(log, "reload rejected; the previous configuration keeps serving", err)
			}
		}
	}
}

func reportProblems(c *cli.Context, err error) error {
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			fmt.Fprintln(c.App.ErrWriter, p.String())
		}
		return cli.Exit(fmt.Sprintf("%d problem(s) in the configuration", len(ps)), 1)
	}
	return err
}

func splitAddr(a string) (string, string) {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a, ""
	}
	return host, port
}

// startCPUProfile writes a CPU profile to path until the func it returns
// is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
