package main

import (
	"fmt"
	"io"
	"slices"
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
			Usage:        "a pool's members: state, admin state, load, RTT, answers served, why, and what each vantage node saw",
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
// indented row per vantage node's verdict. RTT is the member's smoothed
// probe round trip (the median of the vantage nodes' fresh ones, else
// this node's last successful probe); ANSWERS counts the answers this
// node gave it since it started.
func writePool(out io.Writer, p api.Pool) error {
	w := newTable(out)
	fmt.Fprintln(w, "MEMBER\tSTATE\tADMIN\tLOAD\tRTT\tANSWERS\tWHY")
	for _, m := range p.Members {
		state := "down"
		if m.Up {
			state = "up"
		}
		load := "-"
		if m.Load != 0 {
			load = fmt.Sprintf("%.2f", m.Load)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", m.Address, state, m.Admin, load, memberRTT(m), m.Answers, orDash(m.Why))
		rtts := map[string]api.RTTReport{}
		for _, r := range m.RTTs {
			rtts[r.Node] = r
		}
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
			rtt := "-"
			if r, ok := rtts[v.Node]; ok {
				rtt = fmtRTT(r.Seconds)
				if r.Stale {
					rtt += " (stale)"
				}
			}
			fmt.Fprintf(w, "  from %s\t%s\t\t\t%s\t\t%s\n", v.Node, seen, rtt, strings.Join(notes, ", "))
		}
	}
	return w.Flush()
}

// memberRTT is a member's RTT for its row: the median of the fresh
// smoothed RTTs the vantage nodes report, else this node's last
// successful probe, else "-".
func memberRTT(m api.PoolMember) string {
	var fresh []float64
	for _, r := range m.RTTs {
		if !r.Stale && r.Seconds > 0 {
			fresh = append(fresh, r.Seconds)
		}
	}
	if len(fresh) > 0 {
		slices.Sort(fresh)
		mid := len(fresh) / 2
		med := fresh[mid]
		if len(fresh)%2 == 0 {
			med = (fresh[mid-1] + fresh[mid]) / 2
		}
		return fmtRTT(med)
	}
	if c := m.LastCheck; c != nil && c.OK && c.RTTMilli > 0 {
		return fmtRTT(c.RTTMilli / 1000)
	}
	return "-"
}

// fmtRTT writes seconds as a duration of three significant figures or so
// (850µs, 12.3ms, 1.25s).
func fmtRTT(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d >= time.Second:
		d = d.Round(10 * time.Millisecond)
	case d >= 10*time.Millisecond:
		d = d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		d = d.Round(10 * time.Microsecond)
	default:
		d = d.Round(time.Microsecond)
	}
	return d.String()
}
