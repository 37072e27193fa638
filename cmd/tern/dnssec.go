package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/ternlb/tern/dnssec"
)

// dnssecCommand is `tern dnssec`: key files and DS records.
func dnssecCommand() *cli.Command {
	return &cli.Command{
		Name:  "dnssec",
		Usage: "make DNSSEC keys and print DS records",
		Subcommands: []*cli.Command{
			{
				Name:      "keygen",
				Usage:     "write a new key pair for ZONE in BIND's K<zone>+<alg>+<tag>.key/.private format",
				ArgsUsage: "ZONE",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "algorithm", Aliases: []string{"a"}, Value: "ecdsap256sha256", Usage: "ecdsap256sha256 or ed25519"},
					&cli.BoolFlag{Name: "zsk", Usage: "a zone-signing key (flags 256) for a KSK+ZSK zone; the default is a combined signing key (CSK, flags 257)"},
					&cli.StringFlag{Name: "dir", Aliases: []string{"d"}, Value: ".", Usage: "`DIR` to write the files into"},
				},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return cli.Exit("usage: tern dnssec keygen [--zsk] [-a ed25519] [-d DIR] ZONE", 2)
					}
					alg, err := dnssec.Algorithm(c.String("algorithm"))
					if err != nil {
						return cli.Exit(err.Error(), 2)
					}
					k, err := dnssec.Generate(c.Args().First(), alg, !c.Bool("zsk"))
					if err != nil {
						return cli.Exit(err.Error(), 1)
					}
					// A new keys folder is made (private to its owner, like the
					// private key files in it).
					if err := os.MkdirAll(c.String("dir"), 0o700); err != nil {
						return cli.Exit(err.Error(), 1)
					}
					_, _, err = k.Write(c.String("dir"))
					if err != nil {
						return cli.Exit(err.Error(), 1)
					}
					// The name to write under keys:, as BIND's dnssec-keygen prints it.
					fmt.Fprintln(c.App.Writer, filepath.Join(c.String("dir"), k.BaseName()))
					return nil
				},
			},
			{
				Name:      "ds",
				Usage:     "print the DS records (SHA-256) of ZONE's key-signing keys, to give the parent zone",
				ArgsUsage: "ZONE",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "key", Aliases: []string{"k"}, Usage: "key `FILE` (K<zone>+<alg>+<tag>, with or without .key); repeat for more", Required: true},
					&cli.UintFlag{Name: "ttl", Value: 3600, Usage: "TTL of the records printed"},
				},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return cli.Exit("usage: tern dnssec ds -k KEYFILE [-k KEYFILE...] ZONE", 2)
					}
					zone := c.Args().First()
					n := 0
					for _, p := range c.StringSlice("key") {
						k, err := dnssec.ReadKey(p)
						if err != nil {
							return cli.Exit(fmt.Sprintf("key %s: %v", p, err), 1)
						}
						if _, err := dnssec.NewSigner(zone, k.DNSKEY.Algorithm, []*dnssec.Key{k}, 1); err != nil {
							return cli.Exit(fmt.Sprintf("key %s: %v", p, err), 1)
						}
						if !k.SEP() {
							continue // a ZSK: the parent points at the KSK
						}
						fmt.Fprintln(c.App.Writer, k.DS(uint32(c.Uint("ttl"))).String())
						n++
					}
					if n == 0 {
						return cli.Exit("no key-signing key (flags 257) among the keys: the parent's DS points at the KSK or CSK", 1)
					}
					return nil
				},
			},
		},
	}
}
