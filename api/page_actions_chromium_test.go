//go:build linux

package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternlb/tern/internal/eventually"
)

// browser is headless Chromium driven over the DevTools protocol on a
// pipe (--remote-debugging-pipe: commands on its fd 3, replies on fd 4,
// each message JSON ended by a NUL byte), attached to its one page. The
// test clicks with Input.dispatchMouseEvent, so the page sees trusted
// mouse events at a button's place on screen, as from an operator.
type browser struct {
	t       *testing.T
	w, r    *os.File
	in      *bufio.Reader
	next    int
	session string
}

// startBrowser opens url in a browser that is killed, with its process
// group, when the test ends.
func startBrowser(t *testing.T, url string) *browser {
	t.Helper()
	toChrome, cmdIn, err := os.Pipe() // Chromium reads toChrome as fd 3
	if err != nil {
		t.Fatal(err)
	}
	cmdOut, fromChrome, err := os.Pipe() // and writes fromChrome as fd 4
	if err != nil {
		t.Fatal(err)
	}
	cmd := chromiumCmd(context.Background(), t, url, "--remote-debugging-pipe")
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	toChrome.Close()
	fromChrome.Close()
	t.Cleanup(func() {
		cmdIn.Close()
		cmdOut.Close()
		killGroup(t, cmd)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("chromium stderr: %s", tail(stderr.String(), 2000))
		}
	})
	b := &browser{t: t, w: cmdIn, r: cmdOut, in: bufio.NewReader(cmdOut)}

	var targets struct {
		TargetInfos []struct{ TargetID, Type, URL string } `json:"targetInfos"`
	}
	var page string
	eventually.True(t, 10*time.Second, func() bool {
		b.call("Target.getTargets", nil, &targets)
		for _, ti := range targets.TargetInfos {
			if ti.Type == "page" {
				page = ti.TargetID
			}
		}
		return page != ""
	}, "a page target")
	var att struct {
		SessionID string `json:"sessionId"`
	}
	b.call("Target.attachToTarget", map[string]any{"targetId": page, "flatten": true}, &att)
	b.session = att.SessionID
	return b
}

// call sends one command and waits (at most 10 s) for its reply,
// skipping the events in between; an error reply fails the test.
func (b *browser) call(method string, params any, result any) {
	b.t.Helper()
	b.next++
	msg := map[string]any{"id": b.next, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if b.session != "" && !strings.HasPrefix(method, "Target.") {
		msg["sessionId"] = b.session
	}
	out, err := json.Marshal(msg)
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := b.w.Write(append(out, 0)); err != nil {
		b.t.Fatalf("%s: write to chromium: %v", method, err)
	}
	if err := b.r.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		b.t.Fatal(err)
	}
	for {
		line, err := b.in.ReadBytes(0)
		if err != nil {
			b.t.Fatalf("%s: read from chromium: %v", method, err)
		}
		var reply struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line[:len(line)-1], &reply); err != nil {
			b.t.Fatalf("%s: reply %q: %v", method, line, err)
		}
		if reply.ID != b.next {
			continue // an event, or a reply to nothing we wait for
		}
		if reply.Error != nil {
			b.t.Fatalf("%s: %d %s", method, reply.Error.Code, reply.Error.Message)
		}
		if result != nil {
			if err := json.Unmarshal(reply.Result, result); err != nil {
				b.t.Fatalf("%s: result %s: %v", method, reply.Result, err)
			}
		}
		return
	}
}

// eval runs a JavaScript expression in the page and decodes its value;
// an exception fails the test.
func (b *browser) eval(expr string, v any) {
	b.t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	b.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r)
	if r.Exception != nil {
		b.t.Fatalf("evaluate %s: %s", expr, r.Exception.Text)
	}
	if v != nil && len(r.Result.Value) > 0 {
		if err := json.Unmarshal(r.Result.Value, v); err != nil {
			b.t.Fatalf("evaluate %s = %s: %v", expr, r.Result.Value, err)
		}
	}
}

// waitFor polls a boolean JavaScript expression.
func (b *browser) waitFor(expr string) {
	b.t.Helper()
	eventually.True(b.t, 10*time.Second, func() bool {
		var ok bool
		b.eval(expr, &ok)
		return ok
	}, expr)
}

// click presses and releases the left mouse button on the middle of the
// element selector names, scrolled into view.
func (b *browser) click(selector string) {
	b.t.Helper()
	var at *struct{ X, Y float64 }
	b.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return null;
		e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();
		return {X: r.x + r.width / 2, Y: r.y + r.height / 2}; })()`, selector), &at)
	if at == nil {
		b.t.Fatalf("click: no element %s", selector)
	}
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		b.call("Input.dispatchMouseEvent", map[string]any{"type": typ, "x": at.X, "y": at.Y, "button": "left", "clickCount": 1}, nil)
	}
}

// adminNode is the page's fake node with a SetAdmin that works: it
// records each call and answers the new state in Pools, as a node does
// once the change is committed.
type adminNode struct {
	*pageNode
	mu    sync.Mutex
	calls []string // pool/address=state
}

func (a *adminNode) SetAdmin(_ context.Context, pool, address, state string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, pool+"/"+address+"="+state)
	for i := range a.pageNode.pools {
		if p := &a.pageNode.pools[i]; p.Name == pool {
			for j := range p.Members {
				if p.Members[j].Address == address {
					p.Members[j].Admin = state
					return nil
				}
			}
		}
	}
	return fmt.Errorf("%w: no member %s in pool %s", ErrNotFound, address, pool)
}

func (a *adminNode) Pools(ctx context.Context) ([]Pool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Clone(a.pageNode.pools)
	for i := range out {
		out[i].Members = slices.Clone(out[i].Members)
	}
	return out, nil
}

func (a *adminNode) recorded() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.calls)
}

// TestPageActionsInChromium clicks the admin buttons of a member as an
// operator would: each click sends that state with the write token and
// the page then shows it pressed; without the token the write is
// refused, the page asks for the token, and the token typed into its
// form makes the next click land.
func TestPageActionsInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no %s (Debian package chromium; make test installs it): %v", chromiumPath, err)
	}
	if testing.Short() {
		t.Skip("starts a browser")
	}
	const member = "192.0.2.10"
	button := func(action string) string {
		return fmt.Sprintf(`button[data-pool="web"][data-address=%q][data-action=%q]`, member, action)
	}
	pressed := func(action string) string {
		return fmt.Sprintf(`(() => { const b = document.querySelector(%q); return !!b && b.getAttribute('aria-pressed') === 'true' &&
			b.closest('tr').dataset.admin === %q; })()`, button(action), action)
	}

	t.Run("with the token", func(t *testing.T) {
		n := &adminNode{pageNode: newPageNode(time.Now())}
		s := serve(t, Options{Token: "s3cret", Status: n, Cluster: n, Pools: n, Events: n, Stats: n})
		b := startBrowser(t, "http://"+s.Addr().String()+"/#token=s3cret")
		b.waitFor(pressed("auto"))
		var want []string
		for _, a := range []string{"drain", "down", "up", "auto"} {
			b.click(button(a))
			b.waitFor(pressed(a))
			want = append(want, "web/"+member+"="+a)
			if got := n.recorded(); !slices.Equal(got, want) {
				t.Fatalf("after clicking %s: SetAdmin calls %v, want %v", a, got, want)
			}
		}
		var hiddenForm bool
		b.eval(`document.getElementById('token-form').hidden && document.getElementById('problem').hidden`, &hiddenForm)
		if !hiddenForm {
			t.Errorf("the token form or a problem shows after accepted writes")
		}
	})

	t.Run("token asked for", func(t *testing.T) {
		n := &adminNode{pageNode: newPageNode(time.Now())}
		s := serve(t, Options{Token: "s3cret", Status: n, Cluster: n, Pools: n, Events: n, Stats: n})
		b := startBrowser(t, "http://"+s.Addr().String()+"/")
		b.waitFor(pressed("auto"))
		b.click(button("drain"))
		b.waitFor(`!document.getElementById('token-form').hidden &&
			document.getElementById('token-label').textContent.includes('needs the API write token') &&
			document.getElementById('problem').textContent.includes('set ` + member + ` to drain refused')`)
		if got := n.recorded(); len(got) != 0 {
			t.Fatalf("a write without the token reached the node: %v", got)
		}
		b.click("#token-input")
		b.call("Input.insertText", map[string]any{"text": "s3cret"}, nil)
		b.click(`#token-form button[type="submit"]`)
		b.waitFor(`document.getElementById('token-form').hidden && !document.getElementById('forget-token').hidden`)
		b.click(button("drain"))
		b.waitFor(pressed("drain"))
		if got, want := n.recorded(), []string{"web/" + member + "=drain"}; !slices.Equal(got, want) {
			t.Fatalf("SetAdmin calls %v, want %v", got, want)
		}
	})
}
