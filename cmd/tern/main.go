// Command tern is Tern's one binary: the DNS load balancer node, its
// offline checker, and its cluster and dispatcher tools.
package main

import (
	"context"
	"os"

	"github.com/ternlb/tern/zones"
)

func main() {
	// POOL is a private RR type in miekg/dns's process-wide tables: register
	// it before any goroutine parses or packs a message.
	zones.RegisterPOOL()
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
