package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ternlb/tern/api"
)

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
					return emit(c, vs, func(out io.Writer) error {
						w := newTable(out)
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
					})
				},
			},
			configShowCommand(),
			configDiffCommand(),
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
				return usagef("usage: tern config rollback [--base N] [--force] [--comment TEXT] VERSION (a number from tern config versions)")
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
			return emit(c, applied{ApplyResult: res, Base: ch.Base, RollbackOf: v}, func(w io.Writer) error {
				if !res.Changed {
					_, err := fmt.Fprintf(w, "unchanged: version %d (%s) is version %d's configuration already\n", res.Version, res.Hash, v)
					return err
				}
				_, err := fmt.Fprintf(w, "rolled back to version %d: now version %d (%s)\n", v, res.Version, res.Hash)
				return err
			})
		},
	}
}

// versionsClient checks the VERSION arguments of config show and diff
// (at most hi of them), then builds the client: a usage mistake is told
// before the API is tried.
func versionsClient(c *cli.Context, hi int) (*api.Client, []uint64, error) {
	if err := nargs(c, 0, hi); err != nil {
		return nil, nil, err
	}
	var vs []uint64
	for _, a := range c.Args().Slice() {
		v, err := strconv.ParseUint(a, 10, 64)
		if err != nil || v == 0 {
			return nil, nil, usagef("%q is not a version: write a number from tern config versions", a)
		}
		vs = append(vs, v)
	}
	cl, err := apiClient(c)
	return cl, vs, err
}

func configShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "print a kept version (default: the current one) and its files, secrets redacted",
		ArgsUsage: "[VERSION]",
		Flags:     apiFlags(),
		Action: func(c *cli.Context) error {
			cl, vs, err := versionsClient(c, 1)
			if err != nil {
				return err
			}
			if len(vs) == 0 {
				cur, err := cl.Current(c.Context)
				if err != nil {
					return err
				}
				if cur == 0 {
					return cli.Exit("the cluster has no configuration version yet", exitFailed)
				}
				vs = append(vs, cur)
			}
			cv, err := cl.Version(c.Context, vs[0])
			if err != nil {
				return err
			}
			return emit(c, cv, func(w io.Writer) error {
				fmt.Fprintf(w, "# version %d %s, origin %s, comment %s\n", cv.Version, cv.Hash, origin(cv), orDash(oneLine(cv.Comment)))
				for _, p := range slices.Sorted(maps.Keys(cv.Files)) {
					fmt.Fprintf(w, "# ==> %s <==\n%s", p, cv.Files[p])
					if !strings.HasSuffix(cv.Files[p], "\n") {
						fmt.Fprintln(w)
					}
				}
				return nil
			})
		},
	}
}

func configDiffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "diff two kept versions: A to B; A to the current one; or the one before the current to it",
		ArgsUsage: "[A] [B]",
		Flags:     apiFlags(),
		Action: func(c *cli.Context) error {
			cl, vs, err := versionsClient(c, 2)
			if err != nil {
				return err
			}
			if len(vs) < 2 {
				cur, err := cl.Current(c.Context)
				if err != nil {
					return err
				}
				if len(vs) == 0 {
					if cur < 2 {
						return cli.Exit("the cluster has fewer than two versions: nothing to diff", exitFailed)
					}
					vs = append(vs, cur-1)
				}
				vs = append(vs, cur)
			}
			a, err := cl.Version(c.Context, vs[0])
			if err != nil {
				return err
			}
			b, err := cl.Version(c.Context, vs[1])
			if err != nil {
				return err
			}
			d := diffBundles(versionLabel(vs[0]), a.Files, versionLabel(vs[1]), b.Files)
			return emit(c, d, func(w io.Writer) error {
				if !d.write(w) {
					fmt.Fprintf(w, "(nothing: versions %d and %d hold the same files)\n", vs[0], vs[1])
				}
				return nil
			})
		},
	}
}
