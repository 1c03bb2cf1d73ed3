package listener

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
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

	"github.com/weft-mesh/weft/proxy/config"
)

// leanH2 runs the lean HTTP/2 server alone on a loopback socket.
type leanH2 struct {
	s      *h2Server
	addr   string
	writes atomic.Int64 // writes to its connections
	wg     sync.WaitGroup
}

func startLeanH2(t testing.TB, h http.Handler, cfg *config.HTTP) *leanH2 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg == nil {
		cfg = &config.HTTP{}
	}
	l := &leanH2{addr: ln.Addr().String()}
	log := slog.New(slog.NewTextHandler(tWriterOf(t), &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := &http.Server{IdleTimeout: wait}
	l.s = newH2Server(log, h, srv, context.Background(), cfg, func(ctx context.Context, _ *connInfo) context.Context { return ctx })
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				cc := writeCounter{Conn: c, n: &l.writes}
				l.s.serve(&connInfo{raw: c, conn: cc}, cc, nil)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		l.s.closeAll()
		l.wg.Wait()
	})
	return l
}

// writeCounter counts the writes made to a connection.
type writeCounter struct {
	net.Conn
	n *atomic.Int64
}

func (c writeCounter) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// h2cClient is Go's HTTP/2 client over cleartext.
func h2cClient(t testing.TB) *http.Transport {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: p, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// h2Seen is what a handler saw of a request.
type h2Seen struct {
	Method, Host, RequestURI, Proto, Path, RawQuery string
	ContentLength                                   int64
	Header, Trailer                                 http.Header
	Body                                            string
	HasTLS                                          bool
}

// h2Got is what a client got of a response.
type h2Got struct {
	StatusCode    int
	Proto         string
	ContentLength int64
	Header        http.Header
	Body          string
	Trailer       http.Header
	Informational []int
	Err           string
}

// TestHTTP2ServerMatchesNetHTTP sends the same requests, with Go's
// HTTP/2 client, to the lean server and to Go's, both running the same
// handler: the handler must see the same requests and the client get
// the same responses.
func TestHTTP2ServerMatchesNetHTTP(t *testing.T) {
	var mu sync.Mutex
	var seen []h2Seen
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, h2Seen{r.Method, r.Host, r.RequestURI, r.Proto, r.URL.Path, r.URL.RawQuery, r.ContentLength, r.Header.Clone(), r.Trailer.Clone(), string(body), r.TLS != nil})
		mu.Unlock()
		switch r.URL.Path {
		case "/small":
			io.WriteString(w, "<html>small</html>")
		case "/large":
			w.Write(bytes.Repeat([]byte("x"), 10000))
		case "/declared":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/grpc":
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
			w.WriteHeader(200)
			w.Write([]byte{0, 0, 0, 0, 2, 'h', 'i'})
			w.Header().Set("Grpc-Status", "0")
			w.Header().Set("Grpc-Message", "ok")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		case "/flush":
			io.WriteString(w, "first")
			w.(http.Flusher).Flush()
			io.WriteString(w, " second")
		case "/head":
			w.Header().Set("Content-Length", "42")
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			_, err := io.WriteString(w, "not allowed")
			w.Header().Set("X-Never", fmt.Sprint(err)) // after WriteHeader: not sent
		case "/notmodified":
			w.WriteHeader(http.StatusNotModified)
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, "created")
		case "/echo":
			w.Write(body)
		case "/overlong":
			w.Header().Set("Content-Length", "3")
			_, err := io.WriteString(w, "four")
			w.Header().Set("X-Err", fmt.Sprint(err))
		case "/abort":
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
	})
	lean := startLeanH2(t, handler, nil)
	std := startNetHTTPServer(t, &http.Server{Handler: handler, Protocols: func() *http.Protocols {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		return p
	}()})
	client := h2cClient(t)

	type reqCase struct {
		name, method, path string
		// outcomeOnly compares the status and whether the body failed:
		// Go's server sends a body past its Content-Length, which the
		// client refuses; the lean one refuses the write.
		outcomeOnly     bool
		body            func() io.Reader
		length          int64
		header, trailer http.Header
	}
	cases := []reqCase{
		{name: "GET, a short body sniffed and sized", method: "GET", path: "/small?a=1&b=%20"},
		{name: "GET, a body past the first 4 KiB", method: "GET", path: "/large"},
		{name: "a declared Content-Length", method: "GET", path: "/declared"},
		{name: "gRPC shape: declared trailers and a TrailerPrefix one", method: "POST", path: "/grpc",
			body: func() io.Reader { return strings.NewReader("\x00\x00\x00\x00\x02hi") }, length: -1,
			header: http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}}},
		{name: "flush then more", method: "GET", path: "/flush"},
		{name: "HEAD", method: "HEAD", path: "/head"},
		{name: "204 refuses a body", method: "GET", path: "/nocontent"},
		{name: "304", method: "GET", path: "/notmodified"},
		{name: "103 then 201", method: "GET", path: "/hints"},
		{name: "POST with Content-Length", method: "POST", path: "/echo", body: func() io.Reader { return strings.NewReader("twelve bytes") }, length: 12},
		{name: "POST of unknown length", method: "POST", path: "/echo", body: func() io.Reader { return io.MultiReader(strings.NewReader("a"), strings.NewReader("b")) }, length: -1},
		{name: "request trailers", method: "POST", path: "/echo", body: func() io.Reader { return strings.NewReader("with trailers") }, length: -1,
			trailer: http.Header{"X-Sum": {"123"}}},
		{name: "cookies, repeated and odd fields", method: "GET", path: "/small",
			header: http.Header{"Cookie": {"a=1; b=2"}, "X-Multi": {"1", "2"}, "User-Agent": {"test/1"}}},
		{name: "a write past the declared Content-Length", method: "GET", path: "/overlong", outcomeOnly: true},
		{name: "a handler that aborts mid-body", method: "GET", path: "/abort"},
	}
	send := func(t *testing.T, addr string, c reqCase) h2Got {
		var body io.Reader
		if c.body != nil {
			body = c.body()
		}
		req, _ := http.NewRequest(c.method, "http://"+addr+c.path, body)
		req.Host = "api.example" // the same for both servers
		if c.length != 0 {
			req.ContentLength = c.length
		}
		for k, vv := range c.header {
			req.Header[k] = vv
		}
		req.Trailer = c.trailer.Clone()
		var got h2Got
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
				got.Informational = append(got.Informational, code)
				return nil
			},
		}))
		resp, err := client.RoundTrip(req)
		if err != nil {
			got.Err = "round trip failed"
			return got
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			got.Err = "body read failed"
		}
		resp.Header.Del("Date")
		got.StatusCode, got.Proto, got.ContentLength = resp.StatusCode, resp.Proto, resp.ContentLength
		got.Header, got.Body, got.Trailer = resp.Header, string(b), resp.Trailer
		return got
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			gotLean := send(t, lean.addr, c)
			gotStd := send(t, std, c)
			if c.outcomeOnly {
				gotLean = h2Got{StatusCode: gotLean.StatusCode, Err: gotLean.Err}
				gotStd = h2Got{StatusCode: gotStd.StatusCode, Err: gotStd.Err}
			}
			if diff := cmp.Diff(gotStd, gotLean); diff != "" {
				t.Errorf("response (-net/http +lean):\n%s", diff)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 2 {
				t.Fatalf("the handler saw %d requests, want 2", len(seen))
			}
			if diff := cmp.Diff(seen[1], seen[0]); diff != "" {
				t.Errorf("request the handler saw (-net/http +lean):\n%s", diff)
			}
		})
	}
}

// TestHTTP2ServerWritesAResponseAtOnce: a response complete when its
// handler returns — header, body and trailers — leaves in one write.
func TestHTTP2ServerWritesAResponseAtOnce(t *testing.T) {
	s := startLeanH2(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		w.Write([]byte{0, 0, 0, 0, 2, 'o', 'k'})
		w.Header().Set("Grpc-Status", "0")
	}), nil)
	client := h2cClient(t)
	call := func() {
		req, _ := http.NewRequest("POST", "http://"+s.addr+"/svc/Method", strings.NewReader("\x00\x00\x00\x00\x00"))
		resp, err := client.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Trailer.Get("Grpc-Status") != "0" {
			t.Fatalf("trailers %v", resp.Trailer)
		}
	}
	call() // the connection's settings and windows
	const n = 20
	before := s.writes.Load()
	for range n {
		call()
	}
	// Go's client sends a WINDOW_UPDATE or PING now and then, which the
	// server answers: allow a few writes beyond one per response.
	if w := s.writes.Load() - before; w < n || w > n+n/4 {
		t.Errorf("%d responses took %d writes, want about one each", n, w)
	}
}

// TestHTTP2ServerFlowControl moves bodies far past the flow-control
// windows both ways, on concurrent streams of one connection.
func TestHTTP2ServerFlowControl(t *testing.T) {
	const down = 6 << 20
	s := startLeanH2(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("X-Sum", fmt.Sprintf("%x", h.Sum(nil)))
		w.Header().Set("X-Len", fmt.Sprint(n))
		chunk := bytes.Repeat([]byte{'d'}, 32<<10)
		for range down / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}), &config.HTTP{HTTP2: config.HTTP2Settings{InitialStreamWindowSize: 65535, InitialConnectionWindowSize: 65535}})
	client := h2cClient(t)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			up := bytes.Repeat([]byte{byte('a' + i)}, 3<<20)
			req, _ := http.NewRequest("POST", "http://"+s.addr+"/", io.MultiReader(bytes.NewReader(up)))
			req.ContentLength = -1
			resp, err := client.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != down {
				t.Errorf("stream %d: %d bytes down, %v; want %d", i, n, err, down)
			}
			if want := fmt.Sprintf("%x", sha256.Sum256(up)); resp.Header.Get("X-Sum") != want {
				t.Errorf("stream %d: the handler read %s bytes with another sum", i, resp.Header.Get("X-Len"))
			}
		})
	}
	wg.Wait()
}

// TestHTTP2ServerDrain: drain sends GOAWAY; the stream in flight
// finishes, the connection then closes, and the client's next request
// goes on a new connection.
func TestHTTP2ServerDrain(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	s := startLeanH2(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "done "+r.URL.Path)
	}), nil)
	var conns atomic.Int64
	client := h2cClient(t)
	client.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conns.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	get := func(path string) (string, error) {
		req, _ := http.NewRequest("GET", "http://"+s.addr+path, nil)
		resp, err := client.RoundTrip(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	slow := make(chan string, 1)
	go func() { b, err := get("/slow"); slow <- fmt.Sprint(b, err) }()
	<-started
	s.s.drain()
	close(release)
	if got := <-slow; got != "done /slow<nil>" {
		t.Errorf("the request in flight during the drain: %q", got)
	}
	s.s.draining.Store(false) // new connections are served again
	if b, err := get("/after"); err != nil || b != "done /after" {
		t.Errorf("after the drain: %q, %v", b, err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the drained one took no new stream", n)
	}
}

// FuzzHTTP2Server feeds arbitrary bytes, after the client preface (added
// when the input lacks it), to
// the lean server: it must neither panic nor hang, must end the
// connection, and every request its handler sees must be well formed.
func FuzzHTTP2Server(f *testing.F) {
	get := [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "api"}, {":path", "/"}}
	f.Add(guardInput(f, func(fr *http2.Framer, enc *blockEncoder) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc.block(get...), EndStream: true, EndHeaders: true})
	}))
	f.Add(guardInput(f, func(fr *http2.Framer, enc *blockEncoder) error {
		b := enc.block(append(get, [2]string{"content-length", "3"})...)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:2], PadLength: 1})
		fr.WriteContinuation(1, true, b[2:])
		fr.WriteData(1, false, []byte("ab"))
		return fr.WriteData(1, true, []byte("c"))
	}))
	f.Add(guardInput(f, func(fr *http2.Framer, enc *blockEncoder) error {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: enc.block(get...), EndHeaders: true})
		fr.WriteRSTStream(3, http2.ErrCodeCancel)
		fr.WriteWindowUpdate(0, 1<<20)
		fr.WritePing(false, [8]byte{})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: enc.block(append(get, [2]string{"connection", "x"})...), EndStream: true, EndHeaders: true})
		return fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	}))
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		var bad atomic.Value
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == "" || r.URL == nil || (r.Method != http.MethodConnect && !strings.HasPrefix(r.RequestURI, "/") && r.RequestURI != "*") {
				bad.Store(fmt.Sprintf("malformed request reached the handler: %q %q", r.Method, r.RequestURI))
			}
			for k := range r.Header {
				switch k {
				case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade":
					bad.Store("connection-specific field reached the handler: " + k)
				}
			}
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, "ok")
		})
		s := newH2Server(slog.New(slog.DiscardHandler), h, &http.Server{IdleTimeout: time.Second}, context.Background(),
			&config.HTTP{HTTP2: config.HTTP2Settings{MaxConcurrentStreams: 4}}, func(ctx context.Context, _ *connInfo) context.Context { return ctx })
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.serve(&connInfo{raw: server, conn: server}, server, nil)
		}()
		go io.Copy(io.Discard, client)
		client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if !bytes.HasPrefix(in, []byte(http2.ClientPreface)) {
			in = append([]byte(http2.ClientPreface), in...)
		}
		client.Write(in)
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the server did not end the connection after the client closed it")
		}
		if b := bad.Load(); b != nil {
			t.Error(b)
		}
	})
}
