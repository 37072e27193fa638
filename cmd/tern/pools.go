package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ternlb/tern/api"
)

func poolsCommand() *cli.Command {
	return &cli.Command{
		Name:  "pools",
		Usage: "list the pools with how many members are up, drained and down",
		Flags: apiFlags(),
		Action: func(c *cli.Context) error {
			cl, err := argsClient(c, 0, 0)
			if err != nil {
				return err
			}
			ps, err := cl.Pools(c.Context)
			if err != nil {
				return err
			}
			return emit(c, ps, func(out io.Writer) error {
				w := newTable(out)
				fmt.Fprintln(w, "POOL\tMEMBERS\tUP\tDRAIN\tDOWN")
				for _, p := range ps {
					up, drain := 0, 0
					for _, m := range p.Members {
						switch {
						case m.Admin == "drain":
							drain++
						case m.Up:
							up++
						}
					}
					fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\n", p.Name, len(p.Members), up, drain, len(p.Members)-up-drain)
				}
				return w.Flush()
			})
		},
	}
}

func poolCommand() *cli.Command {
	return &cli.Command{
		Name:  "pool",
		Usage: "one pool",
		Subcommands: []*cli.Command{{
			Name:         "show",
			Usage:        "a pool's members: state, admin state, why, load, and what each vantage node saw",
			ArgsUsage:    "NAME",
			Flags:        apiFlags(),
			BashComplete: completePool,
			Action: func(c *cli.Context) error {
				cl, err := argsClient(c, 1, 1)
				if err != nil {
					return err
				}
				ps, err := cl.Pools(c.Context)
				if err != nil {
					return err
				}
				name := c.Args().First()
				for _, p := range ps {
					if p.Name == name {
						return emit(c, p, func(w io.Writer) error { return writePool(w, p) })
					}
				}
				return cli.Exit(fmt.Sprintf("no pool %q (tern pools lists them)", name), exitFailed)
			},
		}},
	}
}

// writePool is tern pool show's table: one row per member, then one
// indented row per vantage node's verdict.
func writePool(out io.Writer, p api.Pool) error {
	w := newTable(out)
	fmt.Fprintln(w, "MEMBER\tSTATE\tADMIN\tLOAD\tWHY")
	for _, m := range p.Members {
		state := "down"
		if m.Up {
			state = "up"
		}
		load := "-"
		if m.Load != 0 {
			load = fmt.Sprintf("%.2f", m.Load)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", m.Address, state, m.Admin, load, orDash(m.Why))
		for _, v := range m.Verdicts {
			seen := "down"
			if v.Up {
				seen = "up"
			}
			var notes []string
			if v.Prober {
				notes = append(notes, "prober")
			}
			if v.Stale {
				notes = append(notes, "stale")
			}
			if !v.At.IsZero() {
				notes = append(notes, "at "+v.At.UTC().Format(time.RFC3339))
			}
			if v.Reason != "" {
				seen, notes = "-", append(notes, v.Reason)
			}
			fmt.Fprintf(w, "  from %s\t%s\t\t\t%s\n", v.Node, seen, strings.Join(notes, ", "))
		}
	}
	return w.Flush()
}
