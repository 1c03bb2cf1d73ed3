package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/weft-mesh/weft/internal/freeport"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/testproc"
)

// buildWeftProxy builds cmd/weft-proxy into a temporary directory.
func buildWeftProxy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := testproc.Build(dir, "github.com/weft-mesh/weft/cmd/weft-proxy"); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "weft-proxy")
}

// freeAddr returns a loopback address for a child process to bind.
func freeAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freeport.Get(t)))
}

// TestSIGTERMDrainsTheRealBinary (RELIABILITY #13) runs the weft-proxy
// binary and sends it SIGTERM while HTTP/1.1 and HTTP/2 requests are in
// flight and a load of short requests runs: the listener stops accepting
// at once, the HTTP/2 connection gets GOAWAY, the process waits for the
// in-flight requests, which complete with 200 (HTTP/1.1 with
// Connection: close), no request gets a 5xx, and the process then exits
// with status 0 well within its drain timeout.
func TestSIGTERMDrainsTheRealBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the weft-proxy binary")
	}
	bin := buildWeftProxy(t)
	tl := newTestLog(t)

	var held atomic.Int64
	release := make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/long" {
			held.Add(1)
			<-release
		}
		io.WriteString(w, "done")
	}))
	t.Cleanup(app.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	cp := startControlPlane(t, tl, "127.0.0.1:0")
	cp.set("v1", mesh{api: []string{strings.TrimPrefix(app.URL, "http://")}}.resources())

	const drainTimeout = 20 * time.Second
	admin := freeAddr(t)
	proc := testproc.Run(t, testproc.Spec{Name: "weft-proxy", Args: []string{bin, "--proxy-id", nodeID, "--xds-addr", cp.addr, "--admin-addr", admin,
		"--drain-timeout", drainTimeout.String(), "--access-log=false", "--log-level", "debug"}})
	poll.UntilTrue(t, wait, "admin API up", func() bool {
		c, err := net.DialTimeout("tcp", admin, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	rp := &runningProxy{t: t, admin: admin}
	rp.waitReady()
	addr := rp.listenerAddr(apiListener)

	// Short requests, continuously, until the listener refuses connections.
	var ok, serverErrors, otherErrors atomic.Int64
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var load sync.WaitGroup
	for range 2 {
		load.Add(1)
		go func() {
			defer load.Done()
			client := &http.Client{Transport: &http.Transport{}, Timeout: wait}
			for loadCtx.Err() == nil {
				resp, err := client.Get("http://" + addr + "/short")
				if errors.Is(err, syscall.ECONNREFUSED) {
					return // the listener is closed
				}
				if err != nil {
					otherErrors.Add(1)
					t.Logf("short request during shutdown: %v", err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					serverErrors.Add(1)
					t.Errorf("short request during shutdown: %d %s", resp.StatusCode, resp.Header.Get("X-Weft-Error"))
				} else {
					ok.Add(1)
				}
			}
		}()
	}

	type h1Result struct {
		status int
		body   string
		close  bool
		err    error
	}
	h1 := make(chan h1Result, 2)
	for range cap(h1) {
		go func() {
			resp, err := (&http.Client{Transport: &http.Transport{}, Timeout: wait + drainTimeout}).Get("http://" + addr + "/long")
			if err != nil {
				h1 <- h1Result{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			h1 <- h1Result{resp.StatusCode, string(b), resp.Close, err}
		}()
	}
	h2 := openRawH2Stream(t, addr, "/long")
	poll.UntilTrue(t, wait, "3 long requests at the app", func() bool { return held.Load() == 3 })
	poll.UntilTrue(t, wait, "short requests served", func() bool { return ok.Load() > 10 })

	if err := proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	select {
	case g := <-h2.goAway:
		if g.ErrCode != http2.ErrCodeNo || g.LastStreamID != 1 {
			t.Errorf("GOAWAY %v last stream %d, want NO_ERROR keeping stream 1", g.ErrCode, g.LastStreamID)
		}
	case a := <-h2.done:
		t.Fatalf("HTTP/2 stream ended (%+v) before any GOAWAY", a)
	case <-time.After(wait):
		t.Fatal("no GOAWAY on the HTTP/2 connection after SIGTERM")
	}
	poll.UntilTrue(t, wait, "listener closed", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	if proc.Exited() {
		t.Fatalf("weft-proxy exited (%v) with requests in flight", proc.Wait())
	}

	close(release)
	for range cap(h1) {
		if r := <-h1; r.err != nil || r.status != http.StatusOK || r.body != "done" || !r.close {
			t.Errorf("HTTP/1.1 request in flight at SIGTERM = %+v, want 200 \"done\" with Connection: close", r)
		}
	}
	if a := <-h2.done; a.err != nil || a.status != http.StatusOK || a.body != "done" {
		t.Errorf("HTTP/2 stream in flight at SIGTERM = %+v, want 200 \"done\"", a)
	}
	select {
	case <-proc.Done():
		if err := proc.Wait(); err != nil {
			t.Errorf("weft-proxy exit: %v, want status 0", err)
		}
		if took := time.Since(signalled); took >= drainTimeout {
			t.Errorf("exited %v after SIGTERM, want within the %v drain timeout", took, drainTimeout)
		}
	case <-time.After(drainTimeout):
		t.Fatal("weft-proxy still running after its drain timeout")
	}
	stopLoad()
	load.Wait()
	if n := serverErrors.Load(); n != 0 {
		t.Errorf("%d short requests got a 5xx during shutdown, want 0", n)
	}
	if n := otherErrors.Load(); n != 0 {
		t.Errorf("%d short requests failed other than by a refused connection", n)
	}
	t.Logf("short requests: %d ok", ok.Load())
}

type rawH2Stream struct {
	goAway chan *http2.GoAwayFrame
	done   chan rawH2Answer
}

type rawH2Answer struct {
	status int
	body   string
	err    error
}

// openRawH2Stream sends GET path on a new cleartext HTTP/2 connection and
// reads its frames in the background: GOAWAY frames are reported on
// goAway, stream 1's answer on done.
func openRawH2Stream(t *testing.T, addr, path string) *rawH2Stream {
	t.Helper()
	c := dialWithDeadline(t, addr)
	c.SetDeadline(time.Now().Add(2 * wait))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "api"}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	s := &rawH2Stream{goAway: make(chan *http2.GoAwayFrame, 4), done: make(chan rawH2Answer, 1)}
	go func() {
		var a rawH2Answer
		var body bytes.Buffer
		dec := hpack.NewDecoder(4096, nil)
		defer func() { s.done <- a }()
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				a.err = err
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
				return
			case *http2.HeadersFrame:
				hf, _ := dec.DecodeFull(f.HeaderBlockFragment())
				for _, h := range hf {
					if h.Name == ":status" {
						fmt.Sscan(h.Value, &a.status)
					}
				}
				if f.StreamEnded() {
					return
				}
			case *http2.DataFrame:
				body.Write(f.Data())
				if f.StreamEnded() {
					a.body = body.String()
					return
				}
			}
		}
	}()
	return s
}
