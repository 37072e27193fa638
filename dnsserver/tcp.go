package dnsserver

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// serveTCP accepts connections on l until it is closed. At most
// TCPMaxConns are open at once; a connection beyond that is closed at
// once (the client retries or uses another server) rather than queued.
func (s *Server) serveTCP(l *net.TCPListener, wg *sync.WaitGroup) {
	sem := make(chan struct{}, s.opts.TCPMaxConns)
	var tempDelay time.Duration
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: back off instead of spinning.
			tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
			time.Sleep(tempDelay)
			continue
		}
		tempDelay = 0
		select {
		case sem <- struct{}{}:
		default:
			c.Close()
			continue
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
			<-sem
		}()
	}
}

// serveConn answers the queries of one connection in order (RFC 7766:
// a client may send several without waiting), closing it after TCPIdle
// without a complete query or when the server shuts down.
func (s *Server) serveConn(c *net.TCPConn) {
	w := s.workers.Get().(*worker)
	defer s.workers.Put(w)
	src := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
	r := bufio.NewReaderSize(c, 4096)
	msg := w.in
	var lenBuf [2]byte
	for {
		c.SetReadDeadline(time.Now().Add(s.opts.TCPIdle))
		// Run sets stopping before it moves every connection's deadline to
		// now: seen here, or that later deadline wins over the one above.
		if s.stopping.Load() {
			return
		}
		if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(r, msg[:n]); err != nil {
			return
		}
		resp := w.handle(s.cur.Load(), msg[:n], src, true)
		if w.xfr {
			if !s.serveTransfer(c, msg[:n], src, w.ts.key, w.ts.reqMAC) {
				return
			}
			continue
		}
		if resp == nil {
			continue
		}
		c.SetWriteDeadline(time.Now().Add(s.opts.TCPIdle))
		if _, err := c.Write(w.pk.framed(resp)); err != nil {
			return
		}
	}
}
