// Package testnet holds the tests' small network peers: a TCP backend that
// accepts until the test ends, so that tests stop writing its accept loop
// each time.
package testnet

import (
	"net"
	"testing"
)

// Listen listens on addr ("127.0.0.1:0" for any port) until the test ends
// and hands each accepted connection to handle in a goroutine of its own;
// a nil handle closes it at once (a backend that only accepts, as a TCP
// check wants). The caller may close the listener early.
func Listen(t testing.TB, addr string, handle func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	if handle == nil {
		handle = func(c net.Conn) { c.Close() }
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln
}
