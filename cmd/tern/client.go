package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/node"
)

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

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show a node's state: Raft, configuration version, members up, and each pool's members up and RTT",
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
			v := statusView{Status: s, Pools: []poolSummary{}}
			if ps, err := cl.Pools(c.Context); err != nil {
				v.PoolsError = err.Error()
			} else {
				for _, p := range ps {
					v.Pools = append(v.Pools, summarize(p))
				}
			}
			err = emit(c, v, func(out io.Writer) error {
				w := newTable(out)
				fmt.Fprintf(w, "node\t%s\n", s.Node)
				fmt.Fprintf(w, "raft\t%s (term %d, applied %d)\n", orDash(s.RaftState), s.Term, s.AppliedIndex)
				fmt.Fprintf(w, "leader\t%s\n", orDash(s.Leader))
				fmt.Fprintf(w, "in quorum\t%v\n", s.InQuorum)
				fmt.Fprintf(w, "config\tversion %d %s\n", s.ConfigVersion, s.ConfigHash)
				fmt.Fprintf(w, "serving\t%v\n", s.Serving)
				fmt.Fprintf(w, "members up\t%d of %d\n", s.MembersUp, s.MembersTotal)
				for _, p := range v.Pools {
					fmt.Fprintf(w, "pool %s\t%s\n", p.Name, p.line())
				}
				if v.PoolsError != "" {
					fmt.Fprintf(w, "pools\tnot read: %s\n", v.PoolsError)
				}
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
			})
			if err != nil {
				return err
			}
			return unhealthy(s)
		},
	}
}

// statusView is what tern status prints: the node's status, and each
// pool's members up and RTTs (read from /v1/pools; PoolsError says why
// not when that read failed, which does not fail the command).
type statusView struct {
	api.Status
	Pools      []poolSummary `json:"pools"`
	PoolsError string        `json:"pools_error,omitempty"`
}

// unhealthy is status's exit: 1 when the node is not in quorum or not
// serving yet (what /readyz says too), so a script or a probe can act on
// it; the state was printed all the same.
func unhealthy(s api.Status) error {
	switch {
	case !s.InQuorum:
		return cli.Exit(fmt.Sprintf("unhealthy: %s is not in quorum (raft %s): it serves the last state it knew", s.Node, orDash(s.RaftState)), exitFailed)
	case !s.Serving:
		return cli.Exit(fmt.Sprintf("unhealthy: %s is not serving yet", s.Node), exitFailed)
	}
	return nil
}

// nargs checks that the command was given between lo and hi arguments
// (hi < 0: any number): a usage error otherwise.
func nargs(c *cli.Context, lo, hi int) error {
	n := c.NArg()
	if n >= lo && (hi < 0 || n <= hi) {
		return nil
	}
	return usagef("usage: %s %s (see %s --help)", c.Command.HelpName, c.Command.ArgsUsage, c.Command.HelpName)
}

// argsClient checks the arguments' number (see nargs), then returns the
// API client.
func argsClient(c *cli.Context, lo, hi int) (*api.Client, error) {
	if err := nargs(c, lo, hi); err != nil {
		return nil, err
	}
	return apiClient(c)
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
					return emit(c, ms, func(out io.Writer) error {
						w := newTable(out)
						fmt.Fprintln(w, "ID\tRAFT\tAPI\tVOTER\tLEADER")
						for _, m := range ms {
							fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%v\n", m.ID, m.RaftAddr, orDash(m.APIAddr), m.Voter, m.Leader)
						}
						return w.Flush()
					})
				},
			},
			{
				Name:      "remove",
				Usage:     "remove a node from the cluster",
				ArgsUsage: "ID",
				Flags:     apiFlags(),
				Action: func(c *cli.Context) error {
					cl, err := argsClient(c, 1, 1)
					if err != nil {
						return err
					}
					id := c.Args().First()
					if err := cl.Remove(c.Context, id); err != nil {
						return err
					}
					return emit(c, map[string]string{"removed": id}, func(w io.Writer) error {
						_, err := fmt.Fprintf(w, "removed %s\n", id)
						return err
					})
				},
			},
		},
	}
}

// adminResult is what tern member prints with -o json.
type adminResult struct {
	Pool   string `json:"pool"`
	Member string `json:"member"`
	Admin  string `json:"admin"`
}

func memberCommand() *cli.Command {
	sub := func(state, usage string) *cli.Command {
		return &cli.Command{
			Name:         state,
			Usage:        usage,
			ArgsUsage:    "POOL ADDRESS",
			Flags:        apiFlags(),
			BashComplete: completeMember,
			Action: func(c *cli.Context) error {
				cl, err := argsClient(c, 2, 2)
				if err != nil {
					return err
				}
				pool, addr := c.Args().Get(0), c.Args().Get(1)
				if err := cl.SetAdmin(c.Context, pool, addr, state); err != nil {
					return err
				}
				return emit(c, adminResult{pool, addr, state}, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "%s %s: %s\n", pool, addr, state)
					return err
				})
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
			{
				Name:         "shed",
				Usage:        "send PERCENT of the member's clients (chosen by client subnet) to other members or sites; 100 drains, 0 is auto",
				ArgsUsage:    "POOL ADDRESS PERCENT",
				Flags:        apiFlags(),
				BashComplete: completeMember,
				Action: func(c *cli.Context) error {
					cl, err := argsClient(c, 3, 3)
					if err != nil {
						return err
					}
					pool, addr := c.Args().Get(0), c.Args().Get(1)
					pct, err := percentArg(c.Args().Get(2))
					if err != nil {
						return err
					}
					state := "auto"
					if pct > 0 {
						state = "shed:" + strconv.Itoa(pct)
					}
					if err := cl.SetAdmin(c.Context, pool, addr, state); err != nil {
						return err
					}
					return emit(c, adminResult{pool, addr, state}, func(w io.Writer) error {
						_, err := fmt.Fprintf(w, "%s %s: %s\n", pool, addr, state)
						return err
					})
				},
			},
		},
	}
}

// percentArg parses a shed share: a whole number from 0 to 100.
func percentArg(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	if err != nil || n < 0 || n > 100 {
		return 0, cli.Exit(fmt.Sprintf("PERCENT %q: write a whole number from 0 (no shedding) to 100 (drain)", s), 2)
	}
	return n, nil
}

func siteCommand() *cli.Command {
	return &cli.Command{
		Name:  "site",
		Usage: "act on every member of a site",
		Subcommands: []*cli.Command{{
			Name:      "shed",
			Usage:     "send PERCENT of the site's clients (chosen by client subnet) to the next sites; 100 drains, 0 stops shedding",
			ArgsUsage: "SITE PERCENT",
			Flags:     apiFlags(),
			Action: func(c *cli.Context) error {
				cl, err := argsClient(c, 2, 2)
				if err != nil {
					return err
				}
				pct, err := percentArg(c.Args().Get(1))
				if err != nil {
					return err
				}
				r, err := cl.ShedSite(c.Context, c.Args().Get(0), pct)
				if err != nil {
					return err
				}
				return emit(c, r, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "site %s: %d%% shed on %d members\n", r.Site, r.Percent, r.Members)
					return err
				})
			},
		}},
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
		if !diffBundles(versionLabel(cur), cv.Files, label, files).write(w) {
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
			"when that is no longer current it is refused with a diff against the current version, unless --force. " +
			"With --dry-run nothing is sent: the diff against the current version is printed.",
		Flags: append(append(apiFlags(), changeFlags()...),
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Required: true, Usage: "configuration `FILE`"},
			&cli.BoolFlag{Name: "dry-run", Usage: "validate and print the diff against the current version; send nothing"}),
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
			if c.Bool("dry-run") {
				return dryRun(c, cl, req)
			}
			res, err := cl.Apply(c.Context, req)
			if err != nil {
				return refused(c, cl, err, req.Change, "sent", func() (map[string]string, error) { return node.Redacted(req.Main, req.Files) })
			}
			return emit(c, applied{ApplyResult: res, Base: req.Base}, func(w io.Writer) error {
				if !res.Changed {
					_, err := fmt.Fprintf(w, "unchanged: version %d (%s) is this configuration already\n", res.Version, res.Hash)
					return err
				}
				_, err := fmt.Fprintf(w, "applied: version %d (%s), based on version %d\n", res.Version, res.Hash, req.Base)
				return err
			})
		},
	}
}

// applied is what tern apply and tern rollback print with -o json.
type applied struct {
	api.ApplyResult
	Base       uint64 `json:"base"`
	RollbackOf uint64 `json:"rollback_of,omitempty"`
}

// dryRun prints what applying req would change in the current version,
// and whether it would be refused; it sends nothing. Secrets are
// redacted on both sides, as the cluster keeps them.
func dryRun(c *cli.Context, cl *api.Client, req api.ApplyRequest) error {
	cur, err := cl.Current(c.Context)
	if err != nil {
		return fmt.Errorf("read the current configuration version: %w", err)
	}
	var files map[string]string
	if cur > 0 {
		cv, err := cl.Version(c.Context, cur)
		if err != nil {
			return err
		}
		files = cv.Files
	}
	sent, err := node.Redacted(req.Main, req.Files)
	if err != nil {
		return err
	}
	d := diffBundles(versionLabel(cur), files, "sent", sent)
	var stale error
	if c.IsSet("base") && req.Base != cur && !req.Force {
		stale = cli.Exit(fmt.Sprintf("would be refused: based on version %d, the cluster is at version %d (give --base %d, or --force)", req.Base, cur, cur), exitFailed)
	}
	err = emit(c, d, func(w io.Writer) error {
		fmt.Fprintf(w, "dry run, nothing sent: what applying %s would change in %s:\n", c.String("config"), versionName(cur))
		if !d.write(w) {
			fmt.Fprintln(w, "(nothing: the files are the current version's)")
		}
		return nil
	})
	if err != nil {
		return err
	}
	return stale
}

// versionLabel names version v's side of a diff ("version-3").
func versionLabel(v uint64) string { return fmt.Sprintf("version-%d", v) }

func versionName(v uint64) string {
	if v == 0 {
		return "the cluster (no version yet)"
	}
	return fmt.Sprintf("the current version %d", v)
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
			if err := nargs(c, 2, 2); err != nil {
				return err
			}
			name, client := c.Args().Get(0), c.Args().Get(1)
			var e api.Explanation
			if file := c.String("config"); file != "" {
				cfg, err := config.Load(file)
				if err != nil {
					return reportProblems(c, err)
				}
				snap, ps := node.Compile(cfg)
				if len(ps) > 0 {
					return reportProblems(c, ps)
				}
				var b strings.Builder
				if err := node.Explain(&b, snap, name, client); err != nil {
					return cli.Exit(err.Error(), exitFailed)
				}
				e.Text = b.String()
			} else {
				cl, err := apiClient(c)
				if err != nil {
					return err
				}
				if e, err = cl.Explain(c.Context, name, client); err != nil {
					return err
				}
			}
			return emit(c, e, func(w io.Writer) error {
				_, err := io.WriteString(w, e.Text)
				return err
			})
		},
	}
}
