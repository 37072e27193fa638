package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

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
			if s.LocalFileDiffers {
				fmt.Fprintf(w, "local file\tdiffers from the cluster's version (cluster-wide part %s); not applied: use tern apply\n", orDash(short(s.LocalFileHash)))
			}
			if s.LastConfigError != "" {
				fmt.Fprintf(w, "config error\t%s\n", s.LastConfigError)
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

// short is a hash's first 12 hex digits, as versions are shown.
func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func clusterCommand() *cli.Command {
	return &cli.Command{
		Name:  "cluster",
		Usage: "Raft membership",
		Subcommands: []*cli.Command{
			recoverCommand(),
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

// changeFlags are how apply and rollback name the version they are based
// on.
func changeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Uint64Flag{Name: "base", Usage: "the configuration `VERSION` this change is based on (default: the current one, read first); refused when it is no longer current"},
		&cli.BoolFlag{Name: "force", Usage: "apply even when --base is no longer the current version"},
		&cli.StringFlag{Name: "comment", Usage: "a `TEXT` kept with the new version (tern config versions shows it)"},
	}
}

// change reads the change flags, the base from the API unless given.
func change(c *cli.Context, cl *api.Client) (api.Change, error) {
	ch := api.Change{Base: c.Uint64("base"), Force: c.Bool("force"), Comment: c.String("comment")}
	if !c.IsSet("base") {
		cur, err := cl.Current(c.Context)
		if err != nil {
			return ch, fmt.Errorf("read the current configuration version: %w", err)
		}
		ch.Base = cur
	}
	return ch, nil
}

// refused explains a change refused because its base is stale (409): the
// diff from the cluster's current version to what the change would make
// it (sent, named label), and what to do. Any other error is returned as
// it is.
func refused(c *cli.Context, cl *api.Client, err error, ch api.Change, label string, sent func() (map[string]string, error)) error {
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		return err
	}
	w := c.App.ErrWriter
	fmt.Fprintf(w, "refused: %s\n", ae.Message)
	cur, err := cl.Current(c.Context)
	var cv api.ConfigVersion
	var files map[string]string
	if err == nil {
		cv, err = cl.Version(c.Context, cur)
	}
	if err == nil {
		files, err = sent()
	}
	if err != nil {
		fmt.Fprintf(w, "(no diff: %v)\n", err)
	} else {
		fmt.Fprintf(w, "what this changes in the current version %d:\n", cur)
		if !writeBundleDiff(w, fmt.Sprintf("version-%d", cur), cv.Files, label, files) {
			fmt.Fprintln(w, "(nothing: the files are the current version's)")
		}
	}
	return cli.Exit(fmt.Sprintf("the change was based on version %d, the cluster is at version %d: check the diff, then re-run with --force to replace it, or re-base (start from version %d and run again, or give --base %d)", ch.Base, cur, cur, cur), 1)
}

func applyCommand() *cli.Command {
	return &cli.Command{
		Name:  "apply",
		Usage: "validate a configuration and send it to the cluster",
		Description: "The change is based on the cluster's current version (read first) or on --base; " +
			"when that is no longer current it is refused with a diff against the current version, unless --force.",
		Flags: append(append(apiFlags(), changeFlags()...), &cli.StringFlag{Name: "config", Aliases: []string{"c"}, Required: true, Usage: "configuration `FILE`"}),
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
			if req.Change, err = change(c, cl); err != nil {
				return err
			}
			res, err := cl.Apply(c.Context, req)
			if err != nil {
				return refused(c, cl, err, req.Change, "sent", func() (map[string]string, error) { return req.Files, nil })
			}
			if !res.Changed {
				fmt.Fprintf(c.App.Writer, "unchanged: version %d (%s) is this configuration already\n", res.Version, res.Hash)
				return nil
			}
			fmt.Fprintf(c.App.Writer, "applied: version %d (%s), based on version %d\n", res.Version, res.Hash, req.Base)
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
					fmt.Fprintln(w, "VERSION\tHASH\tAT\tORIGIN\tCOMMENT\tCURRENT")
					for _, v := range vs {
						cur, at := "", "-"
						if v.Current {
							cur = "*"
						}
						if !v.At.IsZero() {
							at = v.At.UTC().Format(time.RFC3339)
						}
						fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", v.Version, short(v.Hash), at, origin(v), orDash(oneLine(v.Comment)), cur)
					}
					return w.Flush()
				},
			},
			rollbackCommand(),
		},
	}
}

// origin says in a few words where a version came from.
func origin(v api.ConfigVersion) string {
	o := v.Origin
	if o.Kind == "" {
		return "-"
	}
	out := o.Kind
	if v.RollbackOf > 0 {
		out += fmt.Sprintf(" of %d", v.RollbackOf)
	}
	if o.Node != "" {
		out += " on " + o.Node
	}
	if o.Client != "" {
		out += " from " + o.Client
	}
	return out
}

// oneLine keeps a comment to one table row.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// rollbackCommand is `tern config rollback` (and `tern rollback`).
func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:        "rollback",
		Usage:       "re-apply a kept version as a new version",
		ArgsUsage:   "VERSION",
		Description: "Like tern apply, the rollback is based on the current version (or --base) and refused, with a diff, when that is no longer current, unless --force.",
		Flags:       append(apiFlags(), changeFlags()...),
		Action: func(c *cli.Context) error {
			v, err := strconv.ParseUint(c.Args().First(), 10, 64)
			if c.NArg() != 1 || err != nil || v == 0 {
				return cli.Exit("usage: tern config rollback [--base N] [--force] [--comment TEXT] VERSION (a number from tern config versions; flags before it)", 2)
			}
			cl, err := apiClient(c)
			if err != nil {
				return err
			}
			ch, err := change(c, cl)
			if err != nil {
				return err
			}
			res, err := cl.Rollback(c.Context, v, api.RollbackRequest{Change: ch})
			if err != nil {
				return refused(c, cl, err, ch, fmt.Sprintf("version-%d", v), func() (map[string]string, error) {
					target, err := cl.Version(c.Context, v)
					return target.Files, err
				})
			}
			if !res.Changed {
				fmt.Fprintf(c.App.Writer, "unchanged: version %d (%s) is version %d's configuration already\n", res.Version, res.Hash, v)
				return nil
			}
			fmt.Fprintf(c.App.Writer, "rolled back to version %d: now version %d (%s)\n", v, res.Version, res.Hash)
			return nil
		},
	}
}
