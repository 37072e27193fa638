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
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/ternlb/tern/config"
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
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "configuration `FILE`"},
			&cli.BoolFlag{Name: "dev", Usage: "serve the embedded example configuration on loopback"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&cli.StringFlag{Name: "api-token", EnvVars: []string{"TERN_API_TOKEN"}, Usage: "bearer `TOKEN` the API requires for writes (reads too with node.api_read_token); overrides node.api_token(_file); in a cluster every node's must match (nodes use it to join and forward writes)"},
			&cli.StringFlag{Name: "probe-source", Usage: "local `ADDRESS` health probes leave from (default: the kernel chooses)"},
			&cli.DurationFlag{Name: "verdict-max-age", Usage: "in a cluster, ignore a node's health verdict older than this (default: 3 x the longest check interval, at least 30s)"},
			&cli.DurationFlag{Name: "verdict-refresh", Usage: "in a cluster, re-propose unchanged verdicts this often (default: a third of --verdict-max-age)"},
		},
		Action: func(c *cli.Context) error {
			log, err := newLogger(c.String("log-level"))
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
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			go reloadOnHUP(ctx, n, load, log)
			go func() {
				select {
				case <-n.Serving():
					addrs := n.DNSAddrs()
					log.Info("serving", "node", cfg.Node.Name, "dns", fmt.Sprint(addrs))
					if c.Bool("dev") && len(addrs) > 0 {
						host, port := splitAddr(addrs[0].String())
						fmt.Fprintf(c.App.Writer, "Tern is serving gslb.example.test. Try:\n  dig @%s -p %s www.gslb.example.test A\n", host, port)
					}
				case <-ctx.Done():
				}
			}()
			err = n.Run(ctx)
			log.Info("stopped")
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
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(data, &top); err != nil {
		return false, err
	}
	n, ok := top["node"]
	return ok && n.Kind == yaml.MappingNode && len(n.Content) > 0, nil
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
				log.Error("reload rejected; the previous configuration keeps serving", "problems", err.Error())
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

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, cli.Exit(fmt.Sprintf("--log-level %q: write debug, info, warn or error", level), 2)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func splitAddr(a string) (string, string) {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a, ""
	}
	return host, port
}
