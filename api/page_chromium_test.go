//go:build linux

package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// chromiumPath is Debian's chromium (make test installs it).
const chromiumPath = "/usr/bin/chromium"

// The badge colours of status.css, exact: the screenshot check counts them.
var (
	colUp    = color.RGBA{0x1a, 0x7f, 0x37, 0xff}
	colDown  = color.RGBA{0xcf, 0x22, 0x2e, 0xff}
	colDrain = color.RGBA{0x9a, 0x67, 0x00, 0xff}
	colStale = color.RGBA{0x6e, 0x77, 0x81, 0xff}
	colOK    = color.RGBA{0x05, 0x50, 0xae, 0xff}
)

// chromium runs headless Chromium on url with extra flags (--dump-dom,
// --screenshot=...) and returns its standard output. It is bounded by a
// timeout, runs in its own process group, and that group (the browser and
// the renderer, GPU and zygote processes it starts) is killed by its ID
// when it ends or times out.
func chromium(t *testing.T, url string, extra ...string) []byte {
	t.Helper()
	return chromiumFor(t, url, 4*time.Second, extra...)
}

// chromiumFor is chromium with budget of virtual time: virtual time runs
// only while nothing is loading, so the page's fetches complete and
// render, and timers (the page's refresh) fire without real waiting.
func chromiumFor(t *testing.T, url string, budget time.Duration, extra ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	cmd := chromiumCmd(ctx, t, url, append([]string{fmt.Sprintf("--virtual-time-budget=%d", budget.Milliseconds())}, extra...)...)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil {
		killGroup(t, cmd) // whatever the browser left behind in its group
	}
	if ctx.Err() != nil {
		t.Fatalf("chromium %v: timed out after %s\nstderr: %s", extra, time.Since(start).Round(time.Millisecond), tail(stderr.String(), 2000))
	}
	if err != nil {
		t.Fatalf("chromium %v: %v\nstderr: %s", extra, err, tail(stderr.String(), 2000))
	}
	t.Logf("chromium %v: %s", extra, time.Since(start).Round(time.Millisecond))
	return out.Bytes()
}

// chromiumCmd is headless Chromium on url with the flags every test
// wants (no sandbox, GPU or network of its own, sRGB at scale 1, a
// 1280x1600 window, a fresh profile and HOME) and extra, in a process
// group of its own (see killGroup).
func chromiumCmd(ctx context.Context, t *testing.T, url string, extra ...string) *exec.Cmd {
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--no-default-browser-check",
		"--force-color-profile=srgb", "--force-device-scale-factor=1", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(),
		"--window-size=1280,1600",
	}, extra...)
	cmd := exec.CommandContext(ctx, chromiumPath, append(args, url)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	return cmd
}

// killGroup kills cmd's process group: the browser and the renderer, GPU
// and zygote processes it started.
func killGroup(t *testing.T, cmd *exec.Cmd) {
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Logf("kill chromium group %d: %v", cmd.Process.Pid, err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// dom is the rendered document, queried by attribute.
type dom struct{ root *html.Node }

func parseDOM(t *testing.T, b []byte) dom {
	t.Helper()
	n, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse dumped DOM: %v", err)
	}
	return dom{n}
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// find returns the elements under n for which match holds, in document order.
func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for c := range n.Descendants() {
		if c.Type == html.ElementNode && match(c) {
			out = append(out, c)
		}
	}
	return out
}

func withAttr(key, val string) func(*html.Node) bool {
	return func(n *html.Node) bool { v, ok := attr(n, key); return ok && (val == "" || v == val) }
}

func text(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data + " ")
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func (d dom) byID(id string) *html.Node {
	if ns := find(d.root, withAttr("id", id)); len(ns) > 0 {
		return ns[0]
	}
	return nil
}

func has(n *html.Node, key, val string) bool { v, ok := attr(n, key); return ok && v == val }

func hidden(n *html.Node) bool { _, ok := attr(n, "hidden"); return ok }

// memberRow is what the page must show for one member: its answer state
// and each vantage node's verdict, and so the badge colours in its row.
type memberRow struct {
	pool, member string
	state        string            // data-state: up, down, drain
	label        string            // the state badge's text
	nodes        map[string]string // node -> data-state: up, down, stale, none
	colours      []color.RGBA
}

var wantRows = []memberRow{
	{"web", "192.0.2.10", "up", "UP", map[string]string{"n1": "up", "n2": "up", "n3": "up"}, []color.RGBA{colUp}},
	{"web", "192.0.2.11", "down", "DOWN", map[string]string{"n1": "down", "n2": "down", "n3": "up"}, []color.RGBA{colDown, colUp}},
	{"web", "192.0.2.12", "drain", "DRAIN", map[string]string{"n1": "up", "n2": "up", "n3": "none"}, []color.RGBA{colDrain, colUp}},
	{"api", "2001:db8::1", "up", "UP (forced)", map[string]string{"n1": "down", "n2": "stale", "n3": "none"}, []color.RGBA{colUp, colDown, colStale}},
	{"api", "198.51.100.7", "down", "DOWN", map[string]string{"n1": "down", "n3": "stale", "n2": "none"}, []color.RGBA{colDown, colStale}},
	{"mail", "203.0.113.5", "up", "UP", map[string]string{}, []color.RGBA{colUp}},
	{"steer", "192.0.2.20", "up", "UP shed 30% spill 25%", map[string]string{}, []color.RGBA{colUp}},
	{"steer", "192.0.2.21", "up", "UP spill 25%", map[string]string{}, []color.RGBA{colUp}},
	{"steer", "192.0.2.22", "up", "UP", map[string]string{}, []color.RGBA{colUp}},
}

var verdictText = map[string]string{"up": "up", "down": "down", "stale": "stale:", "none": "not probed"}

func TestPageInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no %s (Debian package chromium; make test installs it): %v", chromiumPath, err)
	}
	if testing.Short() {
		t.Skip("starts a browser")
	}
	f := newPageNode(time.Now())
	s := serve(t, Options{Token: "s3cret", ReadToken: true, Status: f, Cluster: f, Pools: f, Events: f, Stats: f})
	base := "http://" + s.Addr().String() + "/"

	t.Run("dom", func(t *testing.T) {
		d := parseDOM(t, chromium(t, base+"#token=s3cret", "--dump-dom"))
		if form := d.byID("token-form"); form == nil || !hidden(form) {
			t.Errorf("the token form shows although the fragment carried the token")
		}
		rows := find(d.root, withAttr("data-member", ""))
		var got []string
		for _, r := range rows {
			p, _ := attr(r, "data-pool")
			m, _ := attr(r, "data-member")
			got = append(got, p+"/"+m)
		}
		var want []string
		for _, w := range wantRows {
			want = append(want, w.pool+"/"+w.member)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("member rows %v, want %v in this order", got, want)
		}
		for i, w := range wantRows {
			r := rows[i]
			if st, _ := attr(r, "data-state"); st != w.state {
				t.Errorf("%s/%s: data-state %q, want %q", w.pool, w.member, st, w.state)
			}
			if cells := find(r, withAttr("data-col", "state")); len(cells) != 1 || text(cells[0]) != w.label {
				t.Errorf("%s/%s: state cell %q, want %q", w.pool, w.member, textOf(cells), w.label)
			}
			cells := find(r, withAttr("data-node", ""))
			if len(cells) != len(w.nodes) {
				t.Errorf("%s/%s: %d vantage-node cells, want %d", w.pool, w.member, len(cells), len(w.nodes))
			}
			for _, c := range cells {
				node, _ := attr(c, "data-node")
				st, _ := attr(c, "data-state")
				if st != w.nodes[node] || !strings.Contains(text(c), verdictText[st]) {
					t.Errorf("%s/%s seen by %s: %s %q, want %s", w.pool, w.member, node, st, text(c), w.nodes[node])
				}
			}
		}

		checkShedding(t, d)

		leaders := find(d.root, withAttr("data-leader", "true"))
		if len(leaders) != 1 || !strings.Contains(text(leaders[0]), "n2") || !strings.Contains(text(leaders[0]), "leader") {
			t.Errorf("leader rows %q, want n2's marked leader", textOf(leaders))
		}
		if n := len(find(d.root, withAttr("data-cluster-member", ""))); n != 3 {
			t.Errorf("%d cluster member rows, want 3", n)
		}
		// A dead peer is unreachable, not a follower.
		for _, r := range find(d.root, withAttr("data-cluster-member", "")) {
			id, _ := attr(r, "data-cluster-member")
			reach, _ := attr(r, "data-reachable")
			role := textOf(find(r, withAttr("data-col", "role")))
			switch want := map[string]string{"n1": "follower", "n2": "leader", "n3": "unreachable"}[id]; {
			case !strings.Contains(role, want), (id == "n3") != (reach == "false"):
				t.Errorf("cluster member %s: role %q reachable=%s, want %s", id, role, reach, want)
			}
		}
		// Each pool says its policy and check; each member its site,
		// weight and priority, last check, answers served, and the
		// admin actions.
		if info := textOf(find(d.root, withAttr("data-pool-info", "web"))); info != "policy weighted · check h (http)" {
			t.Errorf("web's pool line %q", info)
		}
		web := rows[0]
		for col, want := range map[string]string{"site": "fra", "weight": "3 / 1", "check": "ok 1.5 ms", "answers": "9,876"} {
			if got := textOf(find(web, withAttr("data-col", col))); got != want {
				t.Errorf("web/192.0.2.10 %s: %q, want %q", col, got, want)
			}
		}
		if got := textOf(find(rows[1], withAttr("data-col", "check"))); got != "not probed here" {
			t.Errorf("a member without a check result here: %q", got)
		}
		var acts []string
		for _, b := range find(web, withAttr("data-action", "")) {
			a, _ := attr(b, "data-action")
			acts = append(acts, a)
		}
		if !slices.Equal(acts, []string{"drain", "down", "up", "auto"}) {
			t.Errorf("admin actions %v, want drain, down, up, auto", acts)
		}
		// The plots: queries per second over the history, each member's
		// probe latency (points with a value only).
		if c := find(d.root, withAttr("data-chart", "qps")); len(c) != 1 || !has(c[0], "data-points", "5") || !has(c[0], "data-max", "42.5") {
			t.Errorf("queries per second chart: %d found", len(c))
		} else if len(find(c[0], func(n *html.Node) bool { return n.Data == "path" })) != 1 {
			t.Errorf("the qps chart has no line")
		}
		if c := find(d.root, withAttr("data-chart", "latency web/192.0.2.10")); len(c) != 1 || !has(c[0], "data-points", "3") {
			t.Errorf("latency chart of web/192.0.2.10: %d found", len(c))
		}
		if node := d.byID("node"); node == nil || !strings.Contains(text(node), "Leader n2") || !strings.Contains(text(node), "in quorum") ||
			!strings.Contains(text(node), "Warning exec checks are not allowed on this node") {
			t.Errorf("node summary %q", textOf([]*html.Node{node}))
		}

		evs := find(d.root, withAttr("data-event-member", ""))
		if len(evs) != 2 {
			t.Fatalf("%d event rows, want 2", len(evs))
		}
		// Newest first: the cluster's decision on web, then n1's verdict.
		if e := text(evs[0]); !strings.Contains(e, "192.0.2.11") || !strings.Contains(e, "cluster") || !strings.Contains(e, "up → down") {
			t.Errorf("newest event %q", e)
		}
		if e := text(evs[1]); !strings.Contains(e, "2001:db8::1") || !strings.Contains(e, "n1") || !strings.Contains(e, "connection refused") {
			t.Errorf("older event %q", e)
		}

		if r := d.byID("query-rate"); r == nil || text(r) != "42.5 queries/s" {
			t.Errorf("query rate %q, want 42.5 queries/s", textOf([]*html.Node{r}))
		}
		if r := d.byID("query-total"); r == nil || text(r) != "123,456 queries" {
			t.Errorf("query total %q", textOf([]*html.Node{r}))
		}
		if n := len(find(d.root, withAttr("data-rcode", ""))); n != 3 {
			t.Errorf("%d rcode rows, want 3", n)
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "status.png")
		chromium(t, base+"#token=s3cret", "--screenshot="+file)
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("decode screenshot: %v", err)
		}
		defer func() {
			if t.Failed() || os.Getenv("TERN_KEEP_SCREENSHOT") != "" {
				keep := filepath.Join(os.TempDir(), "tern-status-page.png")
				if os.WriteFile(keep, b, 0o644) == nil {
					t.Logf("screenshot kept in %s", keep)
				}
			}
		}()
		checkScreenshot(t, img)
	})

	t.Run("no token", func(t *testing.T) {
		d := parseDOM(t, chromium(t, base, "--dump-dom"))
		form, problem := d.byID("token-form"), d.byID("problem")
		if form == nil || hidden(form) || problem == nil || hidden(problem) || !strings.Contains(text(problem), "Reads need the API token") {
			t.Errorf("without the token: form %q hidden=%v, problem %q; want the form and the reason", textOf([]*html.Node{form}), form != nil && hidden(form), textOf([]*html.Node{problem}))
		}
		if n := len(find(d.root, withAttr("data-member", ""))); n != 0 {
			t.Errorf("%d member rows without the token", n)
		}
	})

	t.Run("refreshes", func(t *testing.T) {
		// Each read of the counters answers 1,000 more queries: after
		// 11 s of the page's (virtual) time it has read them at least
		// three times (on load, at 5 s, at 10 s) and shows the last.
		c := &countingStats{}
		s := serve(t, Options{Status: f, Pools: f, Stats: c})
		d := parseDOM(t, chromiumFor(t, "http://"+s.Addr().String()+"/", 11*time.Second, "--dump-dom"))
		n := c.calls.Load()
		t.Logf("%d reads of /v1/stats", n)
		if n < 3 {
			t.Fatalf("the page read /v1/stats %d times in 11 s, want >= 3", n)
		}
		got := textOf([]*html.Node{d.byID("query-total")})
		if got != fmt.Sprintf("%s queries", fmtThousands(n*1000)) && got != fmt.Sprintf("%s queries", fmtThousands((n-1)*1000)) {
			t.Errorf("query total %q after %d reads: not the last answer", got, n)
		}
	})

	t.Run("not available", func(t *testing.T) {
		// A standalone node without the events and stats backends, reads open.
		solo := newPageNode(time.Now())
		solo.standalone = true
		s := serve(t, Options{Status: solo, Pools: solo})
		d := parseDOM(t, chromium(t, "http://"+s.Addr().String()+"/", "--dump-dom"))
		for _, id := range []string{"events", "queries"} {
			if n := d.byID(id); n == nil || text(n) != "Not available on this node." {
				t.Errorf("#%s = %q, want it to say not available", id, textOf([]*html.Node{n}))
			}
		}
		if n := len(find(d.root, withAttr("data-member", ""))); n != len(wantRows) {
			t.Errorf("%d member rows, want %d: the other sections still render", n, len(wantRows))
		}
		if n := d.byID("cluster"); n == nil || !strings.Contains(text(n), "Standalone node") {
			t.Errorf("#cluster = %q on a node without Raft, want it to say standalone", textOf([]*html.Node{n}))
		}
	})
}

// checkShedding: the steer pool's rows show an operator's shed and the
// capacity spill-over beside the state (wantRows' labels), with why in
// their titles, and the load against the declared capacity.
func checkShedding(t *testing.T, d dom) {
	t.Helper()
	if info := textOf(find(d.root, withAttr("data-pool-info", "steer"))); info != "policy geo > spill · check none · spill past 90% of capacity" {
		t.Errorf("steer's pool line %q", info)
	}
	for _, tc := range []struct {
		member, load string
		titles       []string // the shed badges' titles
	}{
		{"192.0.2.20", "70.00 · site 120 of 100", []string{
			"an operator sheds 30% of its clients (tern member shed or tern site shed)",
			"site lon load 120 over 90 (0.9 of capacity 100): 25% of its clients move"}},
		{"192.0.2.21", "50.00 · site 120 of 100", []string{"site lon load 120 over 90 (0.9 of capacity 100): 25% of its clients move"}},
		{"192.0.2.22", "20.00 · 20 of 50", nil},
	} {
		rows := find(d.root, func(n *html.Node) bool { return has(n, "data-pool", "steer") && has(n, "data-member", tc.member) })
		if len(rows) != 1 {
			t.Errorf("steer/%s: %d rows", tc.member, len(rows))
			continue
		}
		if got := textOf(find(rows[0], withAttr("data-col", "load"))); got != tc.load {
			t.Errorf("steer/%s load %q, want %q", tc.member, got, tc.load)
		}
		var titles []string
		for _, b := range find(rows[0], withAttr("class", "badge h-shed")) {
			ti, _ := attr(b, "title")
			titles = append(titles, ti)
		}
		if !slices.Equal(titles, tc.titles) {
			t.Errorf("steer/%s shed badges %q, want %q", tc.member, titles, tc.titles)
		}
	}
}

func textOf(ns []*html.Node) string {
	var out []string
	for _, n := range ns {
		if n != nil {
			out = append(out, text(n))
		}
	}
	return strings.Join(out, " | ")
}

// checkScreenshot finds the member rows in the picture as horizontal
// bands holding health-badge colours (badges are separated vertically by
// the rows' padding) and checks each band, top to bottom, against the
// expected row: every colour the row must show covers at least minPixels
// and no other health colour appears in it.
func checkScreenshot(t *testing.T, img image.Image) {
	t.Helper()
	const minPixels = 300 // a badge is about 80 x 22 pixels, less its text
	health := []color.RGBA{colUp, colDown, colDrain, colStale}
	name := map[color.RGBA]string{colUp: "up", colDown: "down", colDrain: "drain", colStale: "stale", colOK: "ok"}
	bounds := img.Bounds()
	if bounds.Dx() != 1280 || bounds.Dy() != 1600 {
		t.Errorf("screenshot %v, want 1280x1600", bounds.Size())
	}

	type band struct {
		top, bottom int
		count       map[color.RGBA]int
	}
	var bands []band
	colours := map[color.RGBA]int{}
	var cur *band
	nonWhite, okPixels := 0, 0
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		line := map[color.RGBA]int{}
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			colours[c]++
			if c != (color.RGBA{0xff, 0xff, 0xff, 0xff}) {
				nonWhite++
			}
			if c == colOK {
				okPixels++
			}
			if slices.Contains(health, c) {
				line[c]++
			}
		}
		if len(line) == 0 {
			if cur != nil {
				bands = append(bands, *cur)
				cur = nil
			}
			continue
		}
		if cur == nil {
			cur = &band{top: y, count: map[color.RGBA]int{}}
		}
		cur.bottom = y
		for c, n := range line {
			cur.count[c] += n
		}
	}
	if cur != nil {
		bands = append(bands, *cur)
	}

	total := bounds.Dx() * bounds.Dy()
	if len(colours) < 20 || nonWhite < total/100 {
		t.Fatalf("blank screenshot: %d colours, %d of %d pixels not white", len(colours), nonWhite, total)
	}
	if okPixels < minPixels {
		t.Errorf("%d pixels of the leader/quorum badge colour, want >= %d", okPixels, minPixels)
	}
	describe := func(b band) string {
		var parts []string
		for _, c := range health {
			if b.count[c] > 0 {
				parts = append(parts, fmt.Sprintf("%s:%d", name[c], b.count[c]))
			}
		}
		return fmt.Sprintf("y %d-%d {%s}", b.top, b.bottom, strings.Join(parts, " "))
	}
	var all []string
	for _, b := range bands {
		all = append(all, describe(b))
	}
	if len(bands) != len(wantRows) {
		t.Fatalf("%d bands of health colours, want one per member row (%d): %s", len(bands), len(wantRows), strings.Join(all, "; "))
	}
	for i, w := range wantRows {
		b := bands[i]
		for _, c := range health {
			want := slices.Contains(w.colours, c)
			switch n := b.count[c]; {
			case want && n < minPixels:
				t.Errorf("row %s/%s (%s): %d %s pixels, want >= %d", w.pool, w.member, describe(b), n, name[c], minPixels)
			case !want && n > 0:
				t.Errorf("row %s/%s (%s): %d %s pixels, want none", w.pool, w.member, describe(b), n, name[c])
			}
		}
	}
}

// countingStats answers 1,000 more queries at each call.
type countingStats struct{ calls atomic.Uint64 }

func (c *countingStats) Stats(context.Context) (QueryStats, error) {
	n := c.calls.Add(1)
	return QueryStats{Total: n * 1000, Rate: 100, WindowSeconds: 10}, nil
}

func fmtThousands(n uint64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
