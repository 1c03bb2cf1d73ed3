package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2cServer serves handler over cleartext HTTP/2 (prior knowledge) until
// the test ends, and returns its address.
func h2cServer(t *testing.T, handler http.Handler, configure func(*http.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: handler, Protocols: p}
	if configure != nil {
		configure(srv)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// countingConn counts the writes made to a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// testH2Client is a lean HTTP/2 client dialling plain TCP, counting the
// connections it opens and the writes it makes.
type testH2Client struct {
	*http2Client
	dials, writes atomic.Int64
}

func newTestH2Client(t *testing.T, idle time.Duration) *testH2Client {
	t.Helper()
	c := &testH2Client{}
	c.http2Client = newHTTP2Client(func(ctx context.Context, addr string) (net.Conn, error) {
		c.dials.Add(1)
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: conn, writes: &c.writes}, nil
	}, idle, func() http.RoundTripper { return netHTTP2Transport() })
	t.Cleanup(func() { c.closeIdle(true) })
	return c
}

// netHTTP2Transport is net/http's HTTP/2 client, over cleartext.
func netHTTP2Transport() *http.Transport {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Transport{Protocols: p, DisableCompression: true}
}

// seenRequest is what an upstream saw of a request.
type seenRequest struct {
	Method, Host, RequestURI, Proto string
	ContentLength                   int64
	Header, Trailer                 http.Header
	Body                            string
}

// gotResponse is what a caller got of a response.
type gotResponse struct {
	Status        string
	StatusCode    int
	Proto         string
	ContentLength int64
	Header        http.Header
	Body          string
	Trailer       http.Header
	Informational []int
}

// TestHTTP2ClientMatchesNetHTTP sends the same requests with the lean
// client and with net/http's, to an upstream that records what it saw
// and answers as each case says: both must see and get the same.
func TestHTTP2ClientMatchesNetHTTP(t *testing.T) {
	var mu sync.Mutex
	var seen []seenRequest
	addr := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, seenRequest{r.Method, r.Host, r.RequestURI, r.Proto, r.ContentLength, r.Header.Clone(), r.Trailer.Clone(), string(body)})
		mu.Unlock()
		switch r.URL.Path {
		case "/hello":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "hello")
		case "/echo":
			w.Write(body)
		case "/stream":
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "Grpc-Status")
			w.WriteHeader(200)
			w.Write(body)
			w.(http.Flusher).Flush()
			w.Write([]byte("-more"))
			w.Header().Set("Grpc-Status", "0")
			w.Header().Set(http.TrailerPrefix+"Grpc-Message", "fine")
		case "/head":
			w.Header().Set("Content-Length", "42")
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, "after hints")
		case "/notfound":
			http.NotFound(w, r)
		}
	}), nil)

	type reqCase struct {
		name   string
		method string
		path   string
		body   func() io.Reader // nil: no body
		length int64
		header http.Header
		trail  http.Header
	}
	cases := []reqCase{
		{name: "GET", method: "GET", path: "/hello?q=1"},
		{name: "POST with Content-Length", method: "POST", path: "/echo", body: func() io.Reader { return strings.NewReader("hello world") }, length: 11},
		{name: "POST of unknown length, streamed response with trailers", method: "POST", path: "/stream", body: func() io.Reader { return io.MultiReader(strings.NewReader("abc"), strings.NewReader("def")) }, length: -1,
			header: http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}}},
		{name: "HEAD", method: "HEAD", path: "/head"},
		{name: "204", method: "GET", path: "/nocontent"},
		{name: "103 then 202", method: "GET", path: "/hints"},
		{name: "404", method: "DELETE", path: "/notfound"},
		{name: "PUT with an empty body", method: "PUT", path: "/echo", body: func() io.Reader { return http.NoBody }},
		{name: "headers: cookie crumbs, no User-Agent, repeated fields", method: "GET", path: "/hello",
			header: http.Header{"Cookie": {"a=1; b=2;c=3"}, "X-Multi": {"1", "2"}, "Accept": {"*/*"}}},
		{name: "headers: empty User-Agent is not sent", method: "GET", path: "/hello", header: http.Header{"User-Agent": {""}}},
		{name: "headers: the first User-Agent only", method: "GET", path: "/hello", header: http.Header{"User-Agent": {"a/1", "b/2"}}},
		{name: "request trailers", method: "POST", path: "/echo", body: func() io.Reader { return strings.NewReader("with trailers") }, length: -1,
			trail: http.Header{"X-Checksum": {"abc"}}},
	}
	send := func(t *testing.T, rt http.RoundTripper, c reqCase) gotResponse {
		t.Helper()
		var body io.Reader
		if c.body != nil {
			body = c.body()
		}
		req, err := http.NewRequest(c.method, "http://"+addr+c.path, body)
		if err != nil {
			t.Fatal(err)
		}
		if c.length != 0 {
			req.ContentLength = c.length
		}
		for k, vv := range c.header {
			req.Header[k] = vv
		}
		if c.trail != nil {
			req.Trailer = c.trail.Clone()
		}
		var got gotResponse
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
				got.Informational = append(got.Informational, code)
				return nil
			},
		}))
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("read body: %v", err)
		}
		resp.Body.Close()
		resp.Header.Del("Date")
		got.Status, got.StatusCode, got.Proto, got.ContentLength = resp.Status, resp.StatusCode, resp.Proto, resp.ContentLength
		got.Header, got.Body, got.Trailer = resp.Header, string(b), resp.Trailer
		return got
	}
	lean := newTestH2Client(t, time.Minute)
	std := netHTTP2Transport()
	t.Cleanup(std.CloseIdleConnections)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			gotLean := send(t, lean, c)
			gotStd := send(t, std, c)
			if diff := cmp.Diff(gotStd, gotLean); diff != "" {
				t.Errorf("response (-net/http +lean):\n%s", diff)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 2 {
				t.Fatalf("upstream saw %d requests, want 2", len(seen))
			}
			if diff := cmp.Diff(seen[1], seen[0]); diff != "" {
				t.Errorf("request the upstream saw (-net/http +lean):\n%s", diff)
			}
		})
	}
	if n := lean.dials.Load(); n != 1 {
		t.Errorf("the lean client dialled %d connections for %d sequential requests, want 1", n, len(cases))
	}
}

// TestHTTP2ClientLargeBodiesAndFlowControl moves bodies far past every
// flow-control window, both ways, on concurrent streams.
func TestHTTP2ClientLargeBodiesAndFlowControl(t *testing.T) {
	addr := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("X-Sum", fmt.Sprintf("%x", h.Sum(nil)))
		w.Header().Set("X-Len", fmt.Sprint(n))
		w.WriteHeader(200)
		chunk := bytes.Repeat([]byte{'r'}, 64<<10)
		for range 8 << 20 / len(chunk) {
			w.Write(chunk)
		}
	}), nil)
	c := newTestH2Client(t, time.Minute)
	const reqSize = 3 << 20
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			body := bytes.Repeat([]byte{byte('a' + i)}, reqSize)
			req, _ := http.NewRequest("POST", "http://"+addr+"/", io.MultiReader(bytes.NewReader(body))) // unknown length
			req.ContentLength = -1
			resp, err := c.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			if err != nil || n != 8<<20 {
				t.Errorf("stream %d: read %d bytes of the response, %v; want %d", i, n, err, 8<<20)
			}
			if want := fmt.Sprintf("%x", sha256.Sum256(body)); resp.Header.Get("X-Sum") != want || resp.Header.Get("X-Len") != fmt.Sprint(reqSize) {
				t.Errorf("stream %d: upstream read %s bytes, sum %s; want %d, %s", i, resp.Header.Get("X-Len"), resp.Header.Get("X-Sum"), reqSize, want)
			}
		})
	}
	wg.Wait()
}

// TestHTTP2ClientFullDuplex: the response arrives while the request body
// is still being written, and each piece crosses before the next is sent.
func TestHTTP2ClientFullDuplex(t *testing.T) {
	addr := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		br := bufio.NewReader(r.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			io.WriteString(w, "echo "+line)
			w.(http.Flusher).Flush()
		}
	}), nil)
	c := newTestH2Client(t, time.Minute)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", "http://"+addr+"/", pr)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		fmt.Fprintf(pw, "ping %d\n", i)
		line, err := br.ReadString('\n')
		if want := fmt.Sprintf("echo ping %d\n", i); err != nil || line != want {
			t.Fatalf("got %q, %v; want %q", line, err, want)
		}
	}
	pw.Close()
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the request ended: %q, %v; want the end of the response", rest, err)
	}
}

// TestHTTP2ClientOpensConnectionsPastMaxStreams: requests beyond the
// server's SETTINGS_MAX_CONCURRENT_STREAMS go on new connections.
func TestHTTP2ClientOpensConnectionsPastMaxStreams(t *testing.T) {
	const n = 6
	arrived := make(chan struct{}, n)
	release := make(chan struct{})
	addr := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "ok")
	}), func(s *http.Server) { s.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 2} })
	c := newTestH2Client(t, time.Minute)
	// The first request lets the client learn the server's limit.
	warm, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	go func() { <-arrived; release <- struct{}{} }()
	if resp, err := c.RoundTrip(warm); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	errs := make(chan error, n)
	for range n {
		go func() {
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			resp, err := c.RoundTrip(req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	// All six run at once: on at least three connections. A request that
	// fails meanwhile never arrives, so it ends the wait.
	failed := 0
	for got := 0; got+failed < n; {
		select {
		case <-arrived:
			got++
		case err := <-errs:
			t.Errorf("a request failed before all %d arrived: %v", n, err)
			failed++
		}
	}
	close(release)
	for range n - failed {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if d := c.dials.Load(); d < 3 {
		t.Errorf("%d connections carried %d concurrent streams at 2 per connection; want at least 3", d, n)
	}
}

// TestHTTP2ClientCancellation: a cancelled request and a body closed
// early reset their streams, and the upstream's handler sees it.
func TestHTTP2ClientCancellation(t *testing.T) {
	gone := make(chan string, 2)
	started := make(chan struct{}, 1)
	addr := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		if r.URL.Path == "/partial" {
			io.WriteString(w, "first")
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
		gone <- r.URL.Path
	}), nil)
	c := newTestH2Client(t, time.Minute)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/wait", nil)
	errc := make(chan error, 1)
	go func() { _, err := c.RoundTrip(req); errc <- err }()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled RoundTrip: %v, want context.Canceled", err)
	}

	req, _ = http.NewRequest("GET", "http://"+addr+"/partial", nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := resp.Body.Read(buf); err == nil {
		t.Error("a read after Close succeeded")
	}
	got := map[string]bool{}
	for range 2 {
		got[<-gone] = true
	}
	if !got["/wait"] || !got["/partial"] {
		t.Errorf("handlers that saw their stream end: %v, want /wait and /partial", got)
	}
	if c.dials.Load() != 1 {
		t.Errorf("dials = %d: a reset stream must not cost the connection", c.dials.Load())
	}
}

// TestHTTP2ClientIdleTimeout: a connection without streams for the idle
// timeout is closed.
func TestHTTP2ClientIdleTimeout(t *testing.T) {
	closed := make(chan struct{})
	addr := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		func(s *http.Server) {
			s.ConnState = func(_ net.Conn, st http.ConnState) {
				if st == http.StateClosed {
					close(closed)
				}
			}
		})
	c := newTestH2Client(t, 50*time.Millisecond)
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the idle connection was not closed")
	}
}

// readyBody is a body that has arrived whole, and says so.
type readyBody struct{ *strings.Reader }

func (b readyBody) Ready() (int, bool) { return b.Len(), true }
func (readyBody) Close() error         { return nil }

// TestHTTP2ClientWritesAWholeRequestAtOnce: a request whose body has
// arrived whole goes out as one write — HEADERS, DATA and END_STREAM —
// and a response read to its end says so through Ready.
func TestHTTP2ClientWritesAWholeRequestAtOnce(t *testing.T) {
	addr := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}), nil)
	c := newTestH2Client(t, time.Minute)
	send := func(body io.ReadCloser) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/", body)
		req.ContentLength = -1
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "a whole message" {
			t.Fatalf("echo = %q", b)
		}
		if n, end := resp.Body.(interface{ Ready() (int, bool) }).Ready(); n != 0 || !end {
			t.Errorf("Ready after the end = %d, %v; want 0, true", n, end)
		}
		resp.Body.Close()
	}
	send(readyBody{strings.NewReader("a whole message")}) // connection set up, SETTINGS exchanged
	before := c.writes.Load()
	send(readyBody{strings.NewReader("a whole message")})
	if w := c.writes.Load() - before; w != 1 {
		t.Errorf("a request with a body that arrived whole took %d writes, want 1", w)
	}
	before = c.writes.Load()
	send(io.NopCloser(strings.NewReader("a whole message")))
	if w := c.writes.Load() - before; w < 2 {
		t.Errorf("a body of unknown state took %d writes; the test cannot tell the paths apart", w)
	}
}

// rawH2Server accepts HTTP/2 connections and runs serve on each, after
// the preface and the SETTINGS exchange, with a framer that decodes
// header blocks.
func rawH2Server(t *testing.T, serve func(fr *http2.Framer, enc func(...string) []byte)) string {
	t.Helper()
	return rawH2ServerConn(t, func(fr *http2.Framer, enc func(...string) []byte, _ net.Conn) { serve(fr, enc) })
}

// rawH2ServerConn is rawH2Server, with the connection too.
func rawH2ServerConn(t *testing.T, serve func(fr *http2.Framer, enc func(...string) []byte, conn net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				preface := make([]byte, len(http2.ClientPreface))
				if _, err := io.ReadFull(conn, preface); err != nil {
					return
				}
				fr := http2.NewFramer(conn, conn)
				fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
				fr.WriteSettings()
				var hb bytes.Buffer
				henc := hpack.NewEncoder(&hb)
				enc := func(kv ...string) []byte {
					hb.Reset()
					for i := 0; i < len(kv); i += 2 {
						henc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
					}
					return bytes.Clone(hb.Bytes())
				}
				serve(fr, enc, conn)
			}()
		}
	}()
	return ln.Addr().String()
}

// nextHeaders reads frames until a request's HEADERS, answering SETTINGS.
func nextHeaders(fr *http2.Framer) (*http2.MetaHeadersFrame, error) {
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			return f, nil
		}
	}
}

// TestHTTP2ClientRetriesWhatTheServerDidNotProcess: a refused stream and
// a stream above a GOAWAY's last one are sent again, on a new
// connection, without the caller seeing it.
func TestHTTP2ClientRetriesWhatTheServerDidNotProcess(t *testing.T) {
	for _, refuse := range []string{"REFUSED_STREAM", "GOAWAY"} {
		t.Run(refuse, func(t *testing.T) {
			var conns atomic.Int64
			addr := rawH2Server(t, func(fr *http2.Framer, enc func(...string) []byte) {
				first := conns.Add(1) == 1
				for {
					f, err := nextHeaders(fr)
					if err != nil {
						return
					}
					if first {
						if refuse == "GOAWAY" {
							fr.WriteGoAway(0, http2.ErrCodeNo, nil)
						} else {
							fr.WriteRSTStream(f.StreamID, http2.ErrCodeRefusedStream)
						}
						first = false
						continue
					}
					fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: enc(":status", "200"), EndHeaders: true})
					fr.WriteData(f.StreamID, true, []byte("served"))
				}
			})
			c := newTestH2Client(t, time.Minute)
			req, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader("body"))
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("body")), nil }
			resp, err := c.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "served" {
				t.Errorf("body = %q", b)
			}
			if refuse == "GOAWAY" && c.dials.Load() != 2 {
				t.Errorf("dials = %d, want 2: a connection that sent GOAWAY takes no new stream", c.dials.Load())
			}
		})
	}
}

// TestHTTP2ClientRefusesServerViolations: a server that breaks the
// protocol fails the request with an error naming what it did.
func TestHTTP2ClientRefusesServerViolations(t *testing.T) {
	cases := []struct {
		name    string
		respond func(fr *http2.Framer, enc func(...string) []byte, id uint32)
		want    string // in the RoundTrip or body error
	}{
		{"no :status", func(fr *http2.Framer, enc func(...string) []byte, id uint32) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: enc("x", "1"), EndHeaders: true, EndStream: true})
		}, "no :status"},
		{"a :status that is not three digits", func(fr *http2.Framer, enc func(...string) []byte, id uint32) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: enc(":status", "2000"), EndHeaders: true, EndStream: true})
		}, ":status"},
		{"DATA before the response header", func(fr *http2.Framer, enc func(...string) []byte, id uint32) {
			fr.WriteData(id, true, []byte("early"))
		}, "PROTOCOL_ERROR"},
		{"a body longer than its Content-Length", func(fr *http2.Framer, enc func(...string) []byte, id uint32) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: enc(":status", "200", "content-length", "2"), EndHeaders: true})
			fr.WriteData(id, true, []byte("three"))
		}, "Content-Length"},
		{"trailers without END_STREAM", func(fr *http2.Framer, enc func(...string) []byte, id uint32) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: enc(":status", "200"), EndHeaders: true})
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: enc("grpc-status", "0"), EndHeaders: true})
		}, "trailers without END_STREAM"},
		{"101 Switching Protocols", func(fr *http2.Framer, enc func(...string) []byte, id uint32) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: enc(":status", "101"), EndHeaders: true})
		}, "101"},
		{"PUSH_PROMISE", func(fr *http2.Framer, enc func(...string) []byte, id uint32) {
			fr.WritePushPromise(http2.PushPromiseParam{StreamID: id, PromiseID: 2, BlockFragment: enc(":method", "GET", ":path", "/", ":scheme", "http", ":authority", "x"), EndHeaders: true})
		}, "PUSH_PROMISE"},
		{"a frame on a stream the client never opened", func(fr *http2.Framer, enc func(...string) []byte, id uint32) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id + 2, BlockFragment: enc(":status", "200"), EndHeaders: true, EndStream: true})
		}, "did not open"},
		{"DATA past the stream window", func(fr *http2.Framer, enc func(...string) []byte, id uint32) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: enc(":status", "200"), EndHeaders: true})
			chunk := make([]byte, 16384)
			for range h2StreamWindow/len(chunk) + 1 {
				fr.WriteData(id, false, chunk)
			}
		}, "FLOW_CONTROL_ERROR"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// sent is closed once the client has read all the server
			// wrote: it answered the PING that follows.
			sent := make(chan struct{})
			addr := rawH2Server(t, func(fr *http2.Framer, enc func(...string) []byte) {
				f, err := nextHeaders(fr)
				if err != nil {
					return
				}
				c.respond(fr, enc, f.StreamID)
				fr.WritePing(false, [8]byte{1})
				for { // until the client goes
					f, err := fr.ReadFrame()
					if err != nil {
						return
					}
					if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
						close(sent)
					}
				}
			})
			client := newTestH2Client(t, time.Minute)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
			resp, err := client.RoundTrip(req)
			if err == nil {
				<-sent // the body is read only after everything arrived
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %v, want one containing %q", err, c.want)
			}
		})
	}
}

// FuzzHTTP2Client answers a request with arbitrary bytes: the client must
// neither panic nor hang; the round trip and the body end, with a
// response or an error, once the server is gone.
func FuzzHTTP2Client(f *testing.F) {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 10})
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	enc.WriteField(hpack.HeaderField{Name: "content-length", Value: "2"})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	fr.WriteData(1, false, []byte("o"))
	fr.WriteData(1, true, []byte("k"))
	f.Add(bytes.Clone(buf.Bytes()))
	hb.Reset()
	enc.WriteField(hpack.HeaderField{Name: "grpc-status", Value: "0"})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true})
	fr.WriteGoAway(1, http2.ErrCodeNo, nil)
	fr.WriteRSTStream(1, http2.ErrCodeRefusedStream)
	f.Add(bytes.Clone(buf.Bytes()))
	f.Add([]byte{0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, in []byte) {
		c := newHTTP2Client(func(ctx context.Context, addr string) (net.Conn, error) {
			client, server := net.Pipe()
			go func() {
				go io.Copy(io.Discard, server)
				server.SetWriteDeadline(time.Now().Add(2 * time.Second))
				server.Write(in)
				server.Close()
			}()
			return client, nil
		}, time.Minute, func() http.RoundTripper { return netHTTP2Transport() })
		defer c.closeIdle(true)
		done := make(chan struct{})
		go func() {
			defer close(done)
			req, _ := http.NewRequest("POST", "http://upstream/", strings.NewReader("body"))
			resp, err := c.RoundTrip(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the round trip did not end after the server went away")
		}
	})
}

// TestHTTP2ClientResponseBeforeRequestEnds: a server may answer whole
// before the request's end (a gRPC server answers a unary call once its
// message arrived): the caller gets the response, and the rest of the
// request body is not sent; the stream is cancelled, not failed.
func TestHTTP2ClientResponseBeforeRequestEnds(t *testing.T) {
	addr := rawH2ServerConn(t, func(fr *http2.Framer, enc func(...string) []byte, conn net.Conn) {
		f, err := nextHeaders(fr)
		if err != nil {
			return
		}
		for { // the first DATA, without END_STREAM
			g, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if d, ok := g.(*http2.DataFrame); ok && len(d.Data()) > 0 {
				break
			}
		}
		// The whole response in one write: the client reads it in one
		// batch.
		var b bytes.Buffer
		w := http2.NewFramer(&b, nil)
		w.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: enc(":status", "200"), EndHeaders: true})
		w.WriteData(f.StreamID, false, []byte("answer"))
		w.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: enc("grpc-status", "0"), EndHeaders: true, EndStream: true})
		conn.Write(b.Bytes())
		for {
			if _, err := fr.ReadFrame(); err != nil {
				return
			}
		}
	})
	c := newTestH2Client(t, time.Minute)
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("message")) // and never the end, until the response came
	req, _ := http.NewRequest("POST", "http://"+addr+"/", pr)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "answer" || resp.Trailer.Get("Grpc-Status") != "0" {
		t.Errorf("body %q, %v, trailers %v; want the whole response", b, err, resp.Trailer)
	}
}
