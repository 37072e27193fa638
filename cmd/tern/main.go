// Command tern is Tern's one binary: the DNS load balancer node, its
// offline checker and, later, its cluster and dispatcher tools.
package main

import (
	"fmt"
	"os"

	"github.com/ternlb/tern/zones"
)

func main() {
	// POOL is a private RR type in miekg/dns's process-wide tables: register
	// it before any goroutine parses or packs a message.
	zones.RegisterPOOL()
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "tern:", err)
		os.Exit(1)
	}
}
