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

// memberRTT is a member's RTT for its row (memberSeconds), or "-".
func memberRTT(m api.PoolMember) string {
	if sec := memberSeconds(m); sec > 0 {
		return fmtRTT(sec)
	}
	return "-"
}

// memberSeconds is a member's RTT in seconds: the median of the fresh
// smoothed RTTs the vantage nodes report, else this node's last
// successful probe, else 0 (not known).
func memberSeconds(m api.PoolMember) float64 {
	var fresh []float64
	for _, r := range m.RTTs {
		if !r.Stale && r.Seconds > 0 {
			fresh = append(fresh, r.Seconds)
		}
	}
	if len(fresh) > 0 {
		return median(fresh)
	}
	if c := m.LastCheck; c != nil && c.OK && c.RTTMilli > 0 {
		return c.RTTMilli / 1000
	}
	return 0
}

// median of xs (not empty), which it sorts.
func median(xs []float64) float64 {
	slices.Sort(xs)
	mid := len(xs) / 2
	if len(xs)%2 == 0 {
		return (xs[mid-1] + xs[mid]) / 2
	}
	return xs[mid]
}

// poolSummary is one pool in tern status: members up of all, and the
// RTTs of its members (memberSeconds) with their median over the members
// up, so that a slow pool shows at a glance.
type poolSummary struct {
	Name         string          `json:"name"`
	MembersUp    int             `json:"members_up"`
	MembersTotal int             `json:"members_total"`
	RTTMedian    float64         `json:"rtt_median_seconds,omitempty"`
	Members      []memberSummary `json:"members"`
}

// memberSummary is one member in tern status's JSON; RTTSeconds 0: not
// known.
type memberSummary struct {
	Address    string  `json:"address"`
	Up         bool    `json:"up"`
	RTTSeconds float64 `json:"rtt_seconds,omitempty"`
}

func summarize(p api.Pool) poolSummary {
	s := poolSummary{Name: p.Name, MembersTotal: len(p.Members), Members: []memberSummary{}}
	var up []float64
	for _, m := range p.Members {
		sec := memberSeconds(m)
		s.Members = append(s.Members, memberSummary{Address: m.Address, Up: m.Up, RTTSeconds: sec})
		if m.Up {
			s.MembersUp++
			if sec > 0 {
				up = append(up, sec)
			}
		}
	}
	if len(up) > 0 {
		s.RTTMedian = median(up)
	}
	return s
}

// line is the summary's row in tern status's table: "2 of 3 up, RTT
// median 15ms, slowest 192.0.2.11 40ms" (the slowest of the members up,
// when more than one has an RTT).
func (s poolSummary) line() string {
	b := fmt.Sprintf("%d of %d up", s.MembersUp, s.MembersTotal)
	if s.RTTMedian == 0 {
		return b + ", no RTT measured"
	}
	b += ", RTT median " + fmtRTT(s.RTTMedian)
	var slow *memberSummary
	n := 0
	for i, m := range s.Members {
		if m.Up && m.RTTSeconds > 0 {
			n++
			if slow == nil || m.RTTSeconds > slow.RTTSeconds {
				slow = &s.Members[i]
			}
		}
	}
	if n > 1 {
		b += ", slowest " + slow.Address + " " + fmtRTT(slow.RTTSeconds)
	}
	return b
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
