package probes

import (
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fullListener returns a loopback address whose listen queue is full, so
// that a connection attempt gets no answer at all (Linux drops the SYN).
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "full")
	l, err := net.FileListener(f) // for its address and its closing
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	addr := l.Addr().String()
	// Fill the accept queue: nobody accepts.
	for range 4 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

func TestTCPTimeout(t *testing.T) {
	addr := fullListener(t)
	ch := checkOf(t, "{type: tcp, port: 1, interval: 1s, timeout: 200ms}")
	begin := time.Now()
	r := runOnce(t, ch, addr)
	took := time.Since(begin)
	if r.outcome != outcomeError || !strings.Contains(errText(r), "timeout") {
		t.Fatalf("outcome %v (%q), want a timeout", r.outcome, errText(r))
	}
	if took < 150*time.Millisecond || took > 2*time.Second {
		t.Errorf("took %v, timeout 200ms", took)
	}
}
