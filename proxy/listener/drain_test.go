package listener

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/proxy/config"
)

// heldApp answers "done" to each request once released, counting the
// requests it holds.
type heldApp struct {
	held    atomic.Int64
	release chan struct{}
}

func startHeldApp(t *testing.T) (*heldApp, string) {
	a := &heldApp{release: make(chan struct{})}
	addr := backend(t, func(w http.ResponseWriter, r *http.Request) {
		a.held.Add(1)
		<-a.release
		io.WriteString(w, "done")
	})
	return a, addr
}

func (a *heldApp) waitHeld(t *testing.T, n int64) {
	t.Helper()
	poll.Until(t, wait, fmt.Sprintf("%d requests at the app", n), func() error {
		if got := a.held.Load(); got < n {
			return fmt.Errorf("%d reached it", got)
		}
		return nil
	})
}

// h1Result is the answer to one HTTP/1.1 request.
type h1Result struct {
	status int
	body   string
	close  bool // the response said Connection: close
	err    error
}

// h2Stream is one in-flight HTTP/2 request on a raw connection whose
// frames are read in the background.
type h2Stream struct {
	goAway chan *http2.GoAwayFrame
	done   chan h2Answer
}

type h2Answer struct {
	status int
	body   string
	err    error
}

// openH2Stream sends GET path on a new cleartext HTTP/2 connection and
// reads its frames until the stream ends: a GOAWAY is reported on
// goAway, the answer on done.
func openH2Stream(t *testing.T, addr, path string) *h2Stream {
	t.Helper()
	_, fr := h2Conn(t, addr)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "api"}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	s := &h2Stream{goAway: make(chan *http2.GoAwayFrame, 1), done: make(chan h2Answer, 1)}
	go func() {
		var a h2Answer
		var body bytes.Buffer
		dec := hpack.NewDecoder(4096, nil)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				a.err = err
				s.done <- a
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.GoAwayFrame:
				s.goAway <- f
			case *http2.RSTStreamFrame:
				a.err = fmt.Errorf("stream reset: %v", f.ErrCode)
				s.done <- a
				return
			case *http2.HeadersFrame:
				hf, err := dec.DecodeFull(f.HeaderBlockFragment())
				if err != nil {
					a.err = err
				}
				for _, h := range hf {
					if h.Name == ":status" {
						fmt.Sscan(h.Value, &a.status)
					}
				}
				if f.StreamEnded() {
					s.done <- a
					return
				}
			case *http2.DataFrame:
				body.Write(f.Data())
				if f.StreamEnded() {
					a.body = body.String()
					s.done <- a
					return
				}
			}
		}
	}()
	return s
}

// TestDrainOnListenerRemoval (RELIABILITY #13): requests in flight on
// HTTP/1.1 and HTTP/2 when their listener is removed complete within the
// drain window with their app's answer — none gets a 5xx; HTTP/1.1
// responses carry Connection: close; HTTP/2 connections receive GOAWAY
// (NO_ERROR) before their streams end; new connections are refused.
func TestDrainOnListenerRemoval(t *testing.T) {
	const drain = 5 * time.Second
	e := newEnv(t, drain)
	app, up := startHeldApp(t)
	e.mustApply(runtime(map[string]*config.Cluster{"api": staticCluster("api", up)},
		httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))))
	addr := e.addr("l")

	const h1Requests, h2Requests = 4, 2
	var wg sync.WaitGroup
	h1 := make([]h1Result, h1Requests)
	for i := range h1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: wait}).Get("http://" + addr + "/long")
			if err != nil {
				h1[i].err = err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			h1[i] = h1Result{status: resp.StatusCode, body: string(b), close: resp.Close, err: err}
		}()
	}
	h2 := make([]*h2Stream, h2Requests)
	for i := range h2 {
		h2[i] = openH2Stream(t, addr, "/long")
	}
	app.waitHeld(t, h1Requests+h2Requests)

	removed := time.Now()
	e.mustApply(runtime(nil))
	for i, s := range h2 {
		select {
		case g := <-s.goAway:
			if g.ErrCode != http2.ErrCodeNo || g.LastStreamID != 1 {
				t.Errorf("HTTP/2 connection %d: GOAWAY %v last stream %d, want NO_ERROR keeping stream 1", i, g.ErrCode, g.LastStreamID)
			}
		case a := <-s.done:
			t.Fatalf("HTTP/2 connection %d: stream ended (%+v) before any GOAWAY", i, a)
		case <-time.After(wait):
			t.Fatalf("HTTP/2 connection %d: no GOAWAY after the listener was removed", i)
		}
	}
	if c, err := dialRefused(addr); !c {
		t.Errorf("a new connection to the removed listener: %v, want refused", err)
	}
	close(app.release)
	wg.Wait()
	for i, r := range h1 {
		if r.err != nil || r.status != http.StatusOK || r.body != "done" || !r.close {
			t.Errorf("HTTP/1.1 request %d in flight across removal = %+v, want 200 \"done\" with Connection: close", i, r)
		}
	}
	for i, s := range h2 {
		if a := <-s.done; a.err != nil || a.status != http.StatusOK || a.body != "done" {
			t.Errorf("HTTP/2 stream %d in flight across removal = %+v, want 200 \"done\"", i, a)
		}
	}
	if took := time.Since(removed); took >= drain {
		t.Errorf("in-flight requests took %v after removal, want within the %v drain window", took, drain)
	}
}

// dialRefused reports whether a connection to addr is refused.
func dialRefused(addr string) (bool, error) {
	c, err := net.DialTimeout("tcp", addr, wait)
	if err == nil {
		c.Close()
		return false, fmt.Errorf("connected")
	}
	return errors.Is(err, syscall.ECONNREFUSED), err
}
