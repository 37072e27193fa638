package testnet

import (
	"io"
	"net"
	"testing"
	"time"
)

// A nil handle accepts and closes: the client reads EOF. A handle gets
// each connection; closing the listener refuses the next dial.
func TestListen(t *testing.T) {
	ln := Listen(t, "127.0.0.1:0", nil)
	c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("read from an accept-and-close backend: %d, %v; want EOF", n, err)
	}
	c.Close()

	got := make(chan string, 1)
	ln = Listen(t, "127.0.0.1:0", func(c net.Conn) { defer c.Close(); io.WriteString(c, "hi"); got <- c.LocalAddr().String() })
	c, err = net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if b, _ := io.ReadAll(c); string(b) != "hi" {
		t.Errorf("handle wrote %q, want hi", b)
	}
	if a := <-got; a != ln.Addr().String() {
		t.Errorf("handle's connection on %s, want %s", a, ln.Addr())
	}
	ln.Close()
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("dial after Close succeeded")
	}
}
