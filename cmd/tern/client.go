package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/node"
)

// apiFlags are how every client command finds a node's API.
func apiFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "api", Value: "127.0.0.1:8054", EnvVars: []string{"TERN_API"}, Usage: "node API `ADDRESS` (host:port or URL)"},
		&cli.StringFlag{Name: "token", EnvVars: []string{"TERN_TOKEN"}, Usage: "bearer `TOKEN` for writes"},
		&cli.StringFlag{Name: "ca", EnvVars: []string{"TERN_CA"}, Usage: "CA certificate `FILE` to verify an https API"},
		&cli.BoolFlag{Name: "json", Usage: "print the API's JSON answer"},
	}
}

func apiClient(c *cli.Context) (*api.Client, error) {
	var tc *tls.Config
	if ca := c.String("ca"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("read --ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s holds no PEM certificate", ca)
		}
		tc = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return api.NewClient(c.String("api"), c.String("token"), tc), nil
}

func printJSON(c *cli.Context, v any) error {
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show a node's state: Raft, configuration version, members up",
		Flags: apiFlags(),
		Action: func(c *cli.Context) error {
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			s, err := cl.Status(c.Context)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c, s)
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "node\t%s\n", s.Node)
			fmt.Fprintf(w, "raft\t%s (term %d, applied %d)\n", orDash(s.RaftState), s.Term, s.AppliedIndex)
			fmt.Fprintf(w, "leader\t%s\n", orDash(s.Leader))
			fmt.Fprintf(w, "in quorum\t%v\n", s.InQuorum)
			fmt.Fprintf(w, "config\tversion %d %s\n", s.ConfigVersion, s.ConfigHash)
			fmt.Fprintf(w, "serving\t%v\n", s.Serving)
			fmt.Fprintf(w, "members up\t%d of %d\n", s.MembersUp, s.MembersTotal)
			for _, warning := range s.Warnings {
				fmt.Fprintf(w, "warning\t%s\n", warning)
			}
			return w.Flush()
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clusterCommand() *cli.Command {
	return &cli.Command{
		Name:  "cluster",
		Usage: "Raft membership",
		Subcommands: []*cli.Command{
			{
				Name:  "members",
				Usage: "list the cluster's nodes",
				Flags: apiFlags(),
				Action: func(c *cli.Context) error {
					cl, err := apiClient(c)
					if err != nil {
						return err
					}
					ms, err := cl.Members(c.Context)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c, ms)
					}
					w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "ID\tRAFT\tAPI\tVOTER\tLEADER")
					for _, m := range ms {
						fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%v\n", m.ID, m.RaftAddr, orDash(m.APIAddr), m.Voter, m.Leader)
					}
					return w.Flush()
				},
			},
			{
				Name:      "remove",
				Usage:     "remove a node from the cluster",
				ArgsUsage: "ID",
				Flags:     apiFlags(),
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return cli.Exit("usage: tern cluster remove ID", 2)
					}
					cl, err := apiClient(c)
					if err != nil {
						return err
					}
					if err := cl.Remove(c.Context, c.Args().First()); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "removed %s\n", c.Args().First())
					return nil
				},
			},
		},
	}
}

func memberCommand() *cli.Command {
	sub := func(state, usage string) *cli.Command {
		return &cli.Command{
			Name:      state,
			Usage:     usage,
			ArgsUsage: "POOL ADDRESS",
			Flags:     apiFlags(),
			Action: func(c *cli.Context) error {
				if c.NArg() != 2 {
					return cli.Exit(fmt.Sprintf("usage: tern member %s POOL ADDRESS", state), 2)
				}
				cl, err := apiClient(c)
				if err != nil {
					return err
				}
				pool, addr := c.Args().Get(0), c.Args().Get(1)
				if err := cl.SetAdmin(c.Context, pool, addr, state); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "%s %s: %s\n", pool, addr, state)
				return nil
			},
		}
	}
	return &cli.Command{
		Name:  "member",
		Usage: "set a pool member's admin state",
		Subcommands: []*cli.Command{
			sub("drain", "give the member no new answers"),
			sub("down", "force the member down whatever probes say"),
			sub("up", "force the member up whatever probes say"),
			sub("auto", "let probes decide again"),
		},
	}
}

func applyCommand() *cli.Command {
	return &cli.Command{
		Name:  "apply",
		Usage: "validate a configuration and send it to the cluster",
		Flags: append(apiFlags(), &cli.StringFlag{Name: "config", Aliases: []string{"c"}, Required: true, Usage: "configuration `FILE`"}),
		Action: func(c *cli.Context) error {
			file := c.String("config")
			if ps := node.Check(file); len(ps) > 0 {
				return reportProblems(c, ps)
			}
			req, err := bundle(file)
			if err != nil {
				return err
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			res, err := cl.Apply(c.Context, req)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "applied: version %d (%s)\n", res.Version, res.Hash)
			return nil
		},
	}
}

// bundle gathers the configuration file and every zone file it names,
// with their $INCLUDEs, by paths relative to the configuration's folder.
func bundle(file string) (api.ApplyRequest, error) {
	cfg, err := config.Load(file)
	if err != nil {
		return api.ApplyRequest{}, err
	}
	dir := filepath.Dir(file)
	req := api.ApplyRequest{Main: filepath.Base(file), Files: map[string]string{}}
	var add func(rel string) error
	add = func(rel string) error {
		rel = path.Clean(filepath.ToSlash(rel))
		if strings.HasPrefix(rel, "../") || path.IsAbs(rel) {
			return fmt.Errorf("%s: %q lies outside the configuration's folder; tern apply sends only files below it", file, rel)
		}
		if _, done := req.Files[rel]; done {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		req.Files[rel] = string(b)
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && strings.EqualFold(f[0], "$INCLUDE") {
				if err := add(path.Join(path.Dir(rel), strings.Trim(f[1], `"`))); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := add(req.Main); err != nil {
		return req, err
	}
	zs := make([]string, 0, len(cfg.Zones))
	for _, z := range cfg.Zones {
		zs = append(zs, z.File)
	}
	sort.Strings(zs)
	for _, z := range zs {
		if err := add(z); err != nil {
			return req, err
		}
	}
	return req, nil
}

func explainCommand() *cli.Command {
	return &cli.Command{
		Name:      "explain",
		Usage:     "show how a name is answered for a client, stage by stage",
		ArgsUsage: "NAME CLIENT (CLIENT: an address, or a subnet as ECS carries it)",
		Description: "With --config, explain offline from that configuration (members at their " +
			"configured states); without it, ask a running node's API for a live explanation.",
		Flags: append(apiFlags(), &cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "explain offline from configuration `FILE`"}),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return cli.Exit("usage: tern explain [--config FILE] NAME CLIENT", 2)
			}
			name, client := c.Args().Get(0), c.Args().Get(1)
			if file := c.String("config"); file != "" {
				cfg, err := config.Load(file)
				if err != nil {
					return reportProblems(c, err)
				}
				snap, ps := node.Compile(cfg)
				if len(ps) > 0 {
					return reportProblems(c, ps)
				}
				if err := node.Explain(c.App.Writer, snap, name, client); err != nil {
					return cli.Exit(err.Error(), 1)
				}
				return nil
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			e, err := cl.Explain(c.Context, name, client)
			if err != nil {
				return err
			}
			fmt.Fprint(c.App.Writer, e.Text)
			return nil
		},
	}
}

func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "the cluster's configuration versions",
		Subcommands: []*cli.Command{
			{
				Name:  "versions",
				Usage: "list the kept versions (the current one is marked *)",
				Flags: apiFlags(),
				Action: func(c *cli.Context) error {
					cl, err := apiClient(c)
					if err != nil {
						return err
					}
					vs, err := cl.Versions(c.Context)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c, vs)
					}
					w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "VERSION\tHASH\tCURRENT")
					for _, v := range vs {
						cur := ""
						if v.Current {
							cur = "*"
						}
						fmt.Fprintf(w, "%d\t%s\t%s\n", v.Version, v.Hash, cur)
					}
					return w.Flush()
				},
			},
			{
				Name:      "rollback",
				Usage:     "re-apply a kept version as a new version",
				ArgsUsage: "VERSION",
				Flags:     apiFlags(),
				Action: func(c *cli.Context) error {
					v, err := strconv.ParseUint(c.Args().First(), 10, 64)
					if c.NArg() != 1 || err != nil || v == 0 {
						return cli.Exit("usage: tern config rollback VERSION (a number from tern config versions)", 2)
					}
					cl, err := apiClient(c)
					if err != nil {
						return err
					}
					res, err := cl.Rollback(c.Context, v)
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "rolled back to version %d: now version %d (%s)\n", v, res.Version, res.Hash)
					return nil
				},
			},
		},
	}
}
