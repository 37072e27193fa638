package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/raftstore"
)

// snapshotCommand is `tern snapshot save|restore|inspect`, as etcdctl's
// and consul's: a backup of the whole replicated state taken from a live
// cluster, restored offline into a new one.
func snapshotCommand() *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "save the cluster's state to a file, or restore a new cluster from one",
		Subcommands: []*cli.Command{
			{
				Name:      "save",
				Usage:     "write the leader's state (configuration versions, admin states, observations, nodes) to FILE",
				ArgsUsage: "FILE",
				Flags:     apiFlags(),
				Action: func(c *cli.Context) error {
					path, err := oneArg(c, "FILE")
					if err != nil {
						return err
					}
					cl, err := apiClient(c)
					if err != nil {
						return err
					}
					// Written beside FILE and renamed when whole and checked,
					// so FILE is never a half backup.
					tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".part*")
					if err != nil {
						return err
					}
					defer os.Remove(tmp.Name())
					if err := cl.Snapshot(c.Context, tmp); err != nil {
						tmp.Close()
						return err
					}
					if err := tmp.Sync(); err != nil {
						return err
					}
					if _, err := tmp.Seek(0, 0); err != nil {
						return err
					}
					b, err := raftstore.ReadBackup(tmp)
					tmp.Close()
					if err != nil {
						return fmt.Errorf("the saved snapshot does not check: %w", err)
					}
					if err := os.Rename(tmp.Name(), path); err != nil {
						return err
					}
					return emit(c, b.Header, func(w io.Writer) error {
						_, err := fmt.Fprintf(w, "saved %s: index %d, term %d, from %s, %d configuration version(s)\n",
							path, b.Header.Index, b.Header.Term, b.Header.Leader, len(b.State.ConfigVersions()))
						return err
					})
				},
			},
			{
				Name:      "inspect",
				Usage:     "check FILE and print its header",
				ArgsUsage: "FILE",
				Flags:     outputFlags(),
				Action: func(c *cli.Context) error {
					b, err := readBackupFile(c)
					if err != nil {
						return err
					}
					h := b.Header
					return emit(c, h, func(w io.Writer) error {
						ids := make([]string, len(h.Members))
						for i, m := range h.Members {
							ids[i] = string(m.ID)
						}
						_, err := fmt.Fprintf(w, "index %d, term %d, saved %s by %s (members %s), %d bytes, sha256 %s, %d configuration version(s)\n",
							h.Index, h.Term, h.Saved.Format("2006-01-02T15:04:05Z"), h.Leader, strings.Join(ids, ", "), h.Size, h.SHA, len(b.State.ConfigVersions()))
						return err
					})
				},
			},
			{
				Name:  "restore",
				Usage: "make this node's (empty) data directory a new one-node cluster holding FILE's state",
				Description: "Run it with the node stopped and node.data empty or absent; then start the node " +
					"(it leads a one-node cluster) and start the others with node.join pointing at it.",
				ArgsUsage: "FILE",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "this node's configuration `FILE` (node.name, node.raft, node.data)", Required: true},
				},
				Action: func(c *cli.Context) error {
					b, err := readBackupFile(c)
					if err != nil {
						return err
					}
					opts, err := storeOptions(c.String("config"))
					if err != nil {
						return err
					}
					if err := raftstore.RestoreBackup(opts.Dir, opts.ID, raftAddr(opts), b); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "restored index %d into %s: start %s, it leads a new one-node cluster; join the others to it\n", b.Applied, opts.Dir, opts.ID)
					return nil
				},
			},
		},
	}
}

// recoverCommand is `tern cluster recover`: a lost quorum's way back.
func recoverCommand() *cli.Command {
	return &cli.Command{
		Name:  "recover",
		Usage: "on a stopped node, replace the Raft configuration with --peers (after a quorum is lost for good)",
		Description: "Every survivor, stopped, is given the same --peers; started again they form a cluster of those " +
			"peers alone, and the nodes not named are forgotten. Without --peers the node alone is the new cluster.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "this node's configuration `FILE`", Required: true},
			&cli.StringSliceFlag{Name: "peers", Usage: "the new cluster's voters as `ID=HOST:PORT` (Raft addresses), comma-separated; default this node alone"},
		},
		Action: func(c *cli.Context) error {
			opts, err := storeOptions(c.String("config"))
			if err != nil {
				return err
			}
			peers := []raftstore.Member{{ID: opts.ID, Raft: raftAddr(opts)}}
			if ps := c.StringSlice("peers"); len(ps) > 0 {
				if peers, err = parsePeers(ps); err != nil {
					return err
				}
			}
			if err := raftstore.Recover(opts.Dir, peers); err != nil {
				return err
			}
			ids := make([]string, len(peers))
			for i, p := range peers {
				ids[i] = string(p.ID)
			}
			fmt.Fprintf(c.App.Writer, "recovered %s: the cluster is now %s; start the node\n", opts.Dir, strings.Join(ids, ", "))
			return nil
		},
	}
}

func parsePeers(ps []string) ([]raftstore.Member, error) {
	var out []raftstore.Member
	for _, p := range ps {
		for _, one := range strings.Split(p, ",") {
			id, addr, ok := strings.Cut(strings.TrimSpace(one), "=")
			if !ok || id == "" || addr == "" {
				return nil, cli.Exit(fmt.Sprintf("--peers %q: write ID=HOST:PORT (the node's name and Raft address)", one), 2)
			}
			out = append(out, raftstore.Member{ID: raftstore.NodeID(id), Raft: addr, Voter: true})
		}
	}
	return out, nil
}

func oneArg(c *cli.Context, what string) (string, error) {
	if c.NArg() != 1 {
		return "", cli.Exit(fmt.Sprintf("usage: tern %s %s", c.Command.FullName(), what), 2)
	}
	return c.Args().First(), nil
}

func readBackupFile(c *cli.Context) (raftstore.Backed, error) {
	path, err := oneArg(c, "FILE")
	if err != nil {
		return raftstore.Backed{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return raftstore.Backed{}, err
	}
	defer f.Close()
	b, err := raftstore.ReadBackup(f)
	if err != nil {
		return raftstore.Backed{}, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// storeOptions reads a node's own configuration for its Raft identity and
// data directory.
func storeOptions(path string) (raftstore.Options, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return raftstore.Options{}, err
	}
	o := raftstore.OptionsFor(cfg)
	if o.ID == "" || o.RaftAddr == "" || cfg.Node.Data == "" {
		return o, cli.Exit(fmt.Sprintf("%s: a cluster node's configuration needs node.name, node.raft and node.data", path), 1)
	}
	return o, nil
}

func raftAddr(o raftstore.Options) string {
	if o.Advertise != "" {
		return o.Advertise
	}
	return o.RaftAddr
}
