// Command tern is Tern's one binary: the DNS load balancer node, its
// offline checker and, later, its cluster and dispatcher tools.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "tern:", err)
		os.Exit(1)
	}
}
