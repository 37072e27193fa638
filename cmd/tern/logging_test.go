package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/internal/testnet"
	"github.com/ternlb/tern/zones"
)

// lockedBuffer is the serve command's stderr, read while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serveLogConfig writes a one-node configuration whose pool member is
// probed by tcp on a listener of the test's, with the query log on.
func serveLogConfig(t *testing.T) string {
	t.Helper()
	ln := testnet.Listen(t, "127.0.0.1:0", nil)
	port := ln.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	zone := "$ORIGIN log.test.\n@ 300 IN SOA ns1 h 1 3600 600 604800 60\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.53\nwww 30 IN POOL web\n"
	cfg := fmt.Sprintf(`node:
  name: t1
  dns: ["127.0.0.1:0"]
  api: "127.0.0.1:0"
  data: %s
  query_log: {sample: 1}
checks:
  up: {type: tcp, port: %d, interval: 200ms, timeout: 150ms}
pools:
  web: {check: up, members: [{address: 127.0.0.1}]}
zones:
  - file: z.zone
`, filepath.Join(dir, "data"), port)
	os.WriteFile(filepath.Join(dir, "z.zone"), []byte(zone), 0o644)
	file := filepath.Join(dir, "tern.yaml")
	os.WriteFile(file, []byte(cfg), 0o644)
	return file
}

// TestServeLogs: tern serve in each --log-format at --log-level debug. Every
// line is one record (JSON: one object); the serving line names the DNS
// and API addresses and the status page's URL; debug shows probes, API
// requests and snapshot swaps; the query log has a line per query.
func TestServeLogs(t *testing.T) {
	zones.RegisterPOOL()
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			file := serveLogConfig(t)
			var stdout, stderr lockedBuffer
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"serve", "--config", file, "--log-format", format, "--log-level", "debug"}, &stdout, &stderr)
			}()
			defer func() {
				cancel()
				if code := <-done; code != 0 {
					t.Errorf("serve exited %d\n%s", code, stderr.String())
				}
			}()
			rec := func(msg string) map[string]string { return findRecord(t, format, stderr.String(), msg) }
			eventually.True(t, 20*time.Second, func() bool { return rec("serving") != nil }, "the serving line")
			s := rec("serving")
			api := s["api"]
			if !regexp.MustCompile(`^http://127\.0\.0\.1:\d+$`).MatchString(api) || s["status_page"] != api+"/" || !strings.Contains(s["dns"], "127.0.0.1:") {
				t.Fatalf("serving line: %v", s)
			}
			resp, err := http.Get(api + "/v1/status")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			dnsAddr := strings.Trim(s["dns"], "[]")
			m := new(dns.Msg)
			m.SetQuestion("www.log.test.", dns.TypeA)
			if _, err := dns.Exchange(m, dnsAddr); err != nil {
				t.Fatal(err)
			}
			eventually.True(t, 20*time.Second, func() bool {
				return rec("probe") != nil && rec("api request") != nil && rec("snapshot swapped in") != nil && rec("query") != nil
			}, "debug and query lines")
			if r := rec("api request"); r["path"] != "/v1/status" || r["status"] != "200" {
				t.Errorf("api request line: %v", r)
			}
			if r := rec("probe"); r["pool"] != "web" || r["result"] != "up" {
				t.Errorf("probe line: %v", r)
			}
			if r := rec("query"); r["qname"] != "www.log.test." || r["qtype"] != "A" || r["rcode"] != "NOERROR" || r["answers"] != "1" {
				t.Errorf("query line: %v", r)
			}
			// The live node's pool show: the member's RTT from its probes
			// and the one answer it was given.
			var row []string
			eventually.True(t, 20*time.Second, func() bool {
				out, _, _ := runTern("pool", "show", "web", "--api", api)
				for _, l := range strings.Split(out, "\n") {
					if f := strings.Fields(l); len(f) >= 7 && f[0] == "127.0.0.1" {
						row = f
						return f[4] != "-"
					}
				}
				return false
			}, "pool show with an RTT")
			if row[1] != "up" || row[5] != "1" || !strings.HasSuffix(row[4], "s") {
				t.Errorf("pool show row %q: want up, an RTT, 1 answer", row)
			}
		})
	}
}

// findRecord parses out (text or json lines) and returns the fields of
// the first record whose msg is msg, nil when none is. Every line must be
// one whole record.
func findRecord(t *testing.T, format, out, msg string) map[string]string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		var fields map[string]string
		if format == "json" {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("not one JSON object: %q: %v", line, err)
			}
			fields = map[string]string{}
			for k, v := range m {
				fields[k] = fmt.Sprint(v)
			}
		} else {
			fields = logfmt(line)
			if fields["time"] == "" || fields["level"] == "" {
				t.Fatalf("not one logfmt record: %q", line)
			}
		}
		if fields["msg"] == msg {
			return fields
		}
	}
	return nil
}

var logfmtField = regexp.MustCompile(`([a-z_]+)=("(?:[^"\\]|\\.)*"|\S*)`)

// logfmt splits a text handler's line into its fields.
func logfmt(line string) map[string]string {
	m := map[string]string{}
	for _, f := range logfmtField.FindAllStringSubmatch(line, -1) {
		v := f[2]
		if strings.HasPrefix(v, `"`) {
			v = strings.ReplaceAll(strings.Trim(v, `"`), `\"`, `"`)
		}
		m[f[1]] = v
	}
	return m
}

// TestLogOneLine: a value with line breaks (a list of configuration
// problems, as a rejected reload logs) stays on its line, in either
// format, with no escaped \n; logProblems gives each problem its own
// record.
func TestLogOneLine(t *testing.T) {
	ps := config.Problems{{File: "tern.yaml", Line: 3, Msg: "first"}, {File: "z.zone", Line: 9, Msg: "second"}}
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		log, err := newLogger(&buf, "info", format)
		if err != nil {
			t.Fatal(err)
		}
		log.Error("reload rejected", "err", error(ps), "stack", "goroutine 1:\n\tmain.go:3\n")
		logProblems(log, "reload rejected", ps)
		out := buf.String()
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 4 || strings.Contains(out, `\n`) || strings.Contains(out, `\t`) {
			t.Errorf("%s: want 4 lines, no escaped breaks:\n%s", format, out)
		}
		if !strings.Contains(lines[0], "tern.yaml:3: first; z.zone:9: second") || !strings.Contains(lines[0], "goroutine 1:; main.go:3") {
			t.Errorf("%s: the multi-line values: %s", format, lines[0])
		}
		if !strings.Contains(lines[2], "tern.yaml:3: first") || !strings.Contains(lines[3], "z.zone:9: second") {
			t.Errorf("%s: one problem a record:\n%s", format, out)
		}
	}
	for _, bad := range [][2]string{{"loud", "text"}, {"info", "xml"}} {
		if _, err := newLogger(&bytes.Buffer{}, bad[0], bad[1]); err == nil {
			t.Errorf("--log-level %s --log-format %s accepted", bad[0], bad[1])
		}
	}
}
