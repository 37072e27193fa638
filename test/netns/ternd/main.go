// Command ternd is the end-to-end tests' helper: the small servers and
// clients the tests run inside their network namespaces (the dispatcher's
// own commands run from the tern binary itself).
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	app := &cli.App{
		Name: "ternd",
		Commands: []*cli.Command{
			httpdCommand(),
			getCommand(),
			echoCommand(),
			streamCommand(),
			txoffCommand(),
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "ternd:", err)
		os.Exit(1)
	}
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

// httpd answers / with its name and a body of --size bytes, and /healthz
// with 200, or 503 while --down-file exists.
func httpdCommand() *cli.Command {
	return &cli.Command{
		Name: "httpd",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: ":80"},
			&cli.StringFlag{Name: "name", Required: true},
			&cli.IntFlag{Name: "size", Value: 0},
			&cli.StringFlag{Name: "down-file"},
		},
		Action: func(c *cli.Context) error {
			name, pad := c.String("name"), strings.Repeat("x", c.Int("size"))
			mux := http.NewServeMux()
			mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
				if f := c.String("down-file"); f != "" {
					if _, err := os.Stat(f); err == nil {
						http.Error(w, "down", http.StatusServiceUnavailable)
						return
					}
				}
				io.WriteString(w, "ok\n")
			})
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, name+"\n"+pad)
			})
			ln, err := net.Listen("tcp", c.String("listen"))
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: mux}
			ctx, stop := signalContext()
			defer stop()
			go func() { <-ctx.Done(); srv.Close() }()
			fmt.Println("listening")
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
}

// get makes --count requests, each on a new connection, and prints the
// first line of each answer (the server's name), or "error: ..." .
func getCommand() *cli.Command {
	return &cli.Command{
		Name: "get",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Required: true},
			&cli.IntFlag{Name: "count", Value: 1},
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Second},
		},
		Action: func(c *cli.Context) error {
			for range c.Int("count") {
				client := &http.Client{Timeout: c.Duration("timeout"), Transport: &http.Transport{DisableKeepAlives: true}}
				resp, err := client.Get(c.String("url"))
				if err != nil {
					fmt.Println("error:", err)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					fmt.Println("error:", err)
					continue
				}
				first, _, _ := strings.Cut(string(body), "\n")
				fmt.Printf("%s %d\n", first, len(body))
			}
			return nil
		},
	}
}

// echo serves streams: it sends its name, then echoes what it reads.
func echoCommand() *cli.Command {
	return &cli.Command{
		Name: "echo",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: ":9000"},
			&cli.StringFlag{Name: "name", Required: true},
		},
		Action: func(c *cli.Context) error {
			ln, err := net.Listen("tcp", c.String("listen"))
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			go func() { <-ctx.Done(); ln.Close() }()
			fmt.Println("listening")
			for {
				conn, err := ln.Accept()
				if err != nil {
					return nil
				}
				go func() {
					defer conn.Close()
					fmt.Fprintf(conn, "%s\n", c.String("name"))
					io.Copy(conn, conn)
				}()
			}
		},
	}
}

// stream writes --chunk bytes every --every for --duration to an echo
// server and reads them back, then prints "ok SERVER BYTES MAXGAP" or
// "fail SERVER ERR".
func streamCommand() *cli.Command {
	return &cli.Command{
		Name: "stream",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Required: true},
			&cli.DurationFlag{Name: "duration", Value: 3 * time.Second},
			&cli.DurationFlag{Name: "every", Value: 10 * time.Millisecond},
			&cli.IntFlag{Name: "chunk", Value: 1000},
		},
		Action: func(c *cli.Context) error {
			conn, err := net.DialTimeout("tcp", c.String("addr"), 3*time.Second)
			if err != nil {
				fmt.Println("fail - dial:", err)
				return nil
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			name, err := r.ReadString('\n')
			if err != nil {
				fmt.Println("fail - greeting:", err)
				return nil
			}
			name = strings.TrimSpace(name)
			fmt.Println("server", name)
			chunk := make([]byte, c.Int("chunk"))
			for i := range chunk {
				chunk[i] = byte('a' + i%26)
			}
			var (
				sent   int64
				mu     sync.Mutex
				maxGap time.Duration
				werr   error
			)
			done := make(chan struct{})
			go func() {
				defer close(done)
				end := time.Now().Add(c.Duration("duration"))
				for time.Now().Before(end) {
					conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
					if _, err := conn.Write(chunk); err != nil {
						mu.Lock()
						werr = err
						mu.Unlock()
						return
					}
					mu.Lock()
					sent += int64(len(chunk))
					mu.Unlock()
					time.Sleep(c.Duration("every"))
				}
				conn.(*net.TCPConn).CloseWrite()
			}()
			var got int64
			buf := make([]byte, 64<<10)
			last := time.Now()
			for {
				conn.SetReadDeadline(time.Now().Add(15 * time.Second))
				n, err := r.Read(buf)
				if n > 0 {
					for i := range n {
						if buf[i] != byte('a'+int(got+int64(i))%len(chunk)%26) {
							fmt.Println("fail", name, "corrupt data at", got+int64(i))
							return nil
						}
					}
					got += int64(n)
					if g := time.Since(last); g > maxGap {
						maxGap = g
					}
					last = time.Now()
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					fmt.Println("fail", name, err)
					return nil
				}
			}
			<-done
			mu.Lock()
			defer mu.Unlock()
			if werr != nil {
				fmt.Println("fail", name, "write:", werr)
				return nil
			}
			if got != sent {
				fmt.Println("fail", name, "sent", sent, "got back", got)
				return nil
			}
			fmt.Println("ok", name, got, maxGap.Milliseconds())
			return nil
		},
	}
}

// txoff turns TX checksum offload off on an interface (ethtool -K IF tx
// off): veth leaves TCP checksums partial otherwise, which a real NIC would
// have filled in before the dispatcher saw the packet.
func txoffCommand() *cli.Command {
	return &cli.Command{
		Name:      "txoff",
		ArgsUsage: "IFACE",
		Action: func(c *cli.Context) error {
			name := c.Args().First()
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			val := struct{ cmd, data uint32 }{cmd: unix.ETHTOOL_STXCSUM, data: 0}
			var ifr struct {
				name [unix.IFNAMSIZ]byte
				data uintptr
				_    [16]byte
			}
			copy(ifr.name[:], name)
			ifr.data = uintptr(unsafe.Pointer(&val))
			if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
				return fmt.Errorf("ethtool tx off %s: %w", name, e)
			}
			return nil
		},
	}
}
