package listener

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/proxy/config"
)

const floodMaxStreams = 16

// floodFrames bounds a control-frame flood: far more answers than the
// socket buffers of a client that does not read can hold.
const floodFrames = 3_000_000

// TestHTTP2Floods (RELIABILITY #11): a client that abuses HTTP/2 —
// rapid reset, an endless CONTINUATION header block, SETTINGS and PING
// floods, whether it reads the ACKs or not — has its connection ended
// (GOAWAY, or closed when it does not read what the server sends), never runs more than the advertised
// concurrent streams upstream, leaves the heap bounded, and a legitimate
// client on its own connection keeps ≥ 99.9 % success throughout.
func TestHTTP2Floods(t *testing.T) {
	for _, srv := range h2Servers {
		t.Run(srv.name, func(t *testing.T) { hTTP2Floods(t, srv.opts) })
	}
}

func hTTP2Floods(t *testing.T, opts func(*Options)) {
	e := newEnv(t, time.Second, opts)
	var held atomic.Int64
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(20 * time.Millisecond):
			}
		case "/held":
			held.Add(1)
			defer held.Add(-1)
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}
		io.WriteString(w, "ok")
	})
	l := httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))
	l.HTTP.HTTP2.MaxConcurrentStreams = floodMaxStreams
	e.mustApply(runtime(map[string]*config.Cluster{"api": staticCluster("api", up)}, l))
	addr := e.addr("l")

	tests := []struct {
		name string
		// flood writes the attack after the preface; it returns when a
		// write fails (the server closed) or the attack is over.
		flood func(fr *http2.Framer) error
		// wantGoAway: the server must say GOAWAY (the attacker reads);
		// otherwise closing the connection is enough.
		wantGoAway bool
		// goAwayIfQueued: Go's HTTP/2 server answers GOAWAY
		// (ENHANCE_YOUR_CALM) only when reset streams pile up faster than
		// their handlers end, which depends on scheduling; without it
		// the reset streams cost nothing (the bounds below are checked
		// either way), so a GOAWAY is reported, not required.
		goAwayIfQueued bool
	}{
		{name: "rapid reset", flood: rapidReset, goAwayIfQueued: true},
		{name: "CONTINUATION", flood: continuationFlood, wantGoAway: true},
		{name: "SETTINGS", flood: func(fr *http2.Framer) error {
			return repeat(floodFrames/10, func() error { return fr.WriteSettings() })
		}},
		{name: "PING", flood: func(fr *http2.Framer) error {
			return repeat(floodFrames, func() error { return fr.WritePing(false, [8]byte{1}) })
		}},
		// A client that reads the ACKs never makes the server block on
		// them: the listener's budget of PING and SETTINGS frames without
		// requests (h2guard.go) ends the connection.
		{name: "SETTINGS, ACKs read", flood: func(fr *http2.Framer) error {
			return repeat(floodFrames/10, func() error { return fr.WriteSettings() })
		}, wantGoAway: true},
		{name: "PING, ACKs read", flood: func(fr *http2.Framer) error {
			return repeat(floodFrames, func() error { return fr.WritePing(false, [8]byte{1}) })
		}, wantGoAway: true},
	}
	t.Run("streams over the limit are refused", func(t *testing.T) {
		const extra = 8
		c, fr := h2Conn(t, addr)
		block := requestBlock("/held")
		// Streams beyond the limit are reset (REFUSED_STREAM, or
		// PROTOCOL_ERROR once the limit is acknowledged), never run.
		if err := fr.WriteSettingsAck(); err != nil {
			t.Fatal(err)
		}
		for i := uint32(0); i < floodMaxStreams+extra; i++ {
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 2*i + 1, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
		}
		refused := 0
		c.SetReadDeadline(time.Now().Add(wait))
		for refused < extra {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("after %d refused streams: %v", refused, err)
			}
			if rst, ok := f.(*http2.RSTStreamFrame); ok {
				refused++
				if rst.StreamID <= 2*floodMaxStreams {
					t.Errorf("stream %d within the limit was reset: %v", rst.StreamID, rst.ErrCode)
				}
			}
		}
		poll.UntilTrue(t, wait, "the allowed streams at the upstream", func() bool { return held.Load() >= floodMaxStreams })
		if n := held.Load(); n != floodMaxStreams {
			t.Errorf("%d requests reached the upstream, want exactly the %d streams allowed", n, floodMaxStreams)
		}
		c.Close()
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			legit := startLegitClient(t, addr)
			t.Cleanup(func() { legit.stop() })
			var before goruntime.MemStats
			goruntime.GC()
			goruntime.ReadMemStats(&before)

			c, fr := h2Conn(t, addr)
			read := make(chan goAwayResult, 1)
			if tt.wantGoAway || tt.goAwayIfQueued {
				go func() { read <- readUntilGoAway(fr) }()
			}
			floodErr := tt.flood(fr)
			if tt.goAwayIfQueued {
				select {
				case r := <-read:
					t.Logf("connection ended: GOAWAY %v, %v (flood write error: %v)", r.frame, r.err, floodErr)
				case <-time.After(time.Second):
					t.Logf("no GOAWAY: the server kept up with the resets (flood write error: %v)", floodErr)
				}
			} else if tt.wantGoAway {
				select {
				case r := <-read:
					if r.frame == nil {
						t.Errorf("connection ended without GOAWAY: %v (flood write error: %v)", r.err, floodErr)
					} else {
						t.Logf("GOAWAY %v (flood write error: %v)", r.frame.ErrCode, floodErr)
					}
				case <-time.After(wait):
					t.Error("no GOAWAY within 10s of the flood")
				}
			} else if floodErr == nil {
				// The server must close a connection that floods it with
				// control frames and never reads their answers, at the
				// latest right after the flood (a flood of small frames
				// may all be written before it has).
				c.SetReadDeadline(time.Now().Add(wait))
				if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("the whole flood was written and the connection is still open %v later", wait)
				} else {
					t.Logf("flood written; then the connection ended: %v", err)
				}
			} else {
				t.Logf("flood ended: %v", floodErr)
			}
			c.Close()

			// A flood the server ends at once leaves the client little
			// time: judge it on at least 50 requests whatever the flood
			// took (on a loaded machine, fewer fit in a short flood).
			poll.UntilTrue(t, wait, "50 legitimate requests made", func() bool { return legit.ok.Load()+legit.failed.Load() >= 50 })
			ok, failed := legit.stop()
			if total := ok + failed; total < 50 || float64(ok)/float64(total) < 0.999 {
				t.Errorf("legitimate client: %d ok, %d failed during the flood; want ≥ 50 requests and ≥ 99.9%% success", ok, failed)
			}
			var after goruntime.MemStats
			goruntime.GC()
			goruntime.ReadMemStats(&after)
			if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 64<<20 {
				t.Errorf("heap in use grew by %d MiB after the flood, want bounded (≤ 64 MiB)", grew>>20)
			}
		})
	}
}

func h2Conn(t *testing.T, addr string) (net.Conn, *http2.Framer) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetWriteDeadline(time.Now().Add(wait))
	return c, h2Start(t, c)
}

// h2Start sends the client preface and an empty SETTINGS frame on c, and
// returns a framer over it.
func h2Start(t *testing.T, c net.Conn) *http2.Framer {
	t.Helper()
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return fr
}

func repeat(n int, write func() error) error {
	for range n {
		if err := write(); err != nil {
			return err
		}
	}
	return nil
}

func requestBlock(path string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "api"}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return buf.Bytes()
}

// rapidReset opens streams to a slow route and cancels each at once
// (CVE-2023-44487).
func rapidReset(fr *http2.Framer) error {
	block := requestBlock("/slow")
	for i := uint32(0); i < 20_000; i++ {
		id := 2*i + 1
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
			return err
		}
		if err := fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			return err
		}
	}
	return nil
}

// continuationFlood sends one header block that never ends: 64 MiB of
// CONTINUATION frames (CVE-2023-45288).
func continuationFlood(fr *http2.Framer) error {
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: requestBlock("/"), EndHeaders: false}); err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for buf.Len() < 15<<10 {
		enc.WriteField(hpack.HeaderField{Name: "x-flood", Value: strings.Repeat("a", 1000), Sensitive: true})
	}
	chunk := buf.Bytes()
	return repeat(64<<20/len(chunk), func() error { return fr.WriteContinuation(1, false, chunk) })
}

type goAwayResult struct {
	frame *http2.GoAwayFrame
	err   error
}

// readUntilGoAway reads frames until a GOAWAY or an error.
func readUntilGoAway(fr *http2.Framer) goAwayResult {
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return goAwayResult{err: err}
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			return goAwayResult{frame: g}
		}
	}
}

const legitConcurrency = 2

// legitClient sends requests over its own HTTP/2 connection until stopped.
type legitClient struct {
	ok, failed atomic.Int64
	lastErr    atomic.Pointer[error]
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

func startLegitClient(t *testing.T, addr string) *legitClient {
	t.Helper()
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: p}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	lc := &legitClient{cancel: cancel}
	for range legitConcurrency {
		lc.wg.Add(1)
		go func() {
			defer lc.wg.Done()
			for ctx.Err() == nil {
				if err := legitGet(ctx, client, "http://"+addr+"/"); err != nil {
					if ctx.Err() != nil {
						return
					}
					lc.failed.Add(1)
					lc.lastErr.Store(&err)
					t.Logf("legitimate request failed: %v", err)
					continue
				}
				lc.ok.Add(1)
			}
		}()
	}
	// Wait for the first success so that the client is really running.
	poll.UntilTrue(t, wait, "a first legitimate request served", func() bool { return lc.ok.Load() > 0 })
	return lc
}

// stop stops the client and waits for it; it may be called twice.
func (lc *legitClient) stop() (ok, failed int64) {
	lc.cancel()
	lc.wg.Wait()
	return lc.ok.Load(), lc.failed.Load()
}

func legitGet(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(b) != "ok" || resp.ProtoMajor != 2 {
		return fmt.Errorf("%s %d %q", resp.Proto, resp.StatusCode, b)
	}
	return nil
}
