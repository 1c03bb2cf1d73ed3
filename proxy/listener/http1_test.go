package listener

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/proxy/config"
)

// TestHTTP1AdoptCopiesEveryField: the connection's request takes every
// exported field of the parsed one, so a field a Go release adds to
// http.Request fails this test rather than vanish from requests.
func TestHTTP1AdoptCopiesEveryField(t *testing.T) {
	p := new(http.Request)
	v := reflect.ValueOf(p).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if !v.Type().Field(i).IsExported() {
			continue
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString("set")
		case reflect.Int, reflect.Int64:
			f.SetInt(7)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Chan, reflect.Interface, reflect.Func:
			if f.Kind() == reflect.Interface {
				f.Set(reflect.ValueOf(io.NopCloser(strings.NewReader(""))))
			} else if f.Kind() == reflect.Pointer {
				f.Set(reflect.New(f.Type().Elem()))
			} else if f.Kind() == reflect.Slice {
				f.Set(reflect.MakeSlice(f.Type(), 1, 1))
			} else if f.Kind() == reflect.Map {
				f.Set(reflect.MakeMap(f.Type()))
			} else if f.Kind() == reflect.Chan {
				f.Set(reflect.MakeChan(reflect.ChanOf(reflect.BothDir, f.Type().Elem()), 0))
			} else {
				f.Set(reflect.MakeFunc(f.Type(), func([]reflect.Value) []reflect.Value {
					return []reflect.Value{reflect.Zero(f.Type().Out(0)), reflect.Zero(f.Type().Out(1))}
				}))
			}
		default:
			t.Fatalf("http.Request.%s: kind %s not handled by this test", v.Type().Field(i).Name, f.Kind())
		}
	}
	hc := &h1Conn{req: new(http.Request), remoteAddr: "set"}
	hc.tlsState = p.TLS
	r := reflect.ValueOf(hc.adopt(p)).Elem()
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		if sf.IsExported() && r.Field(i).IsZero() {
			t.Errorf("adopt does not copy http.Request.%s", sf.Name)
		}
	}
}

// TestHTTP1ScanHead: the raw scan sees fields as net/textproto splits
// them.
func TestHTTP1ScanHead(t *testing.T) {
	tests := []struct {
		name  string
		block string
		want  headScan
	}{
		{"plain", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", headScan{hosts: 1}},
		{"CL and TE, any case", "POST / HTTP/1.1\r\ncOnTeNt-LeNgTh: 1\r\nTRANSFER-ENCODING: chunked\r\n\r\n", headScan{contentLength: true, transferEncoding: true}},
		{"bare LF", "GET / HTTP/1.1\nHost: x\nContent-Length: 0\n\n", headScan{hosts: 1, contentLength: true}},
		{"folded line is no field", "GET / HTTP/1.1\r\nX-A: 1\r\n Content-Length: 5\r\n\r\n", headScan{}},
		{"folded Host, origin-form: left to the parse", "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", headScan{hosts: 1}},
		{"folded Host", "GET http://a/ HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", headScan{hosts: 1, badHost: true, hostInTarget: true}},
		{"folded empty Host", "GET http://a/ HTTP/1.1\r\nHost:\r\n b \r\n\r\n", headScan{hosts: 1, hostInTarget: true}},
		{"space before colon is no field", "GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", headScan{}},
		{"absolute-form, bad Host", "GET http://a/ HTTP/1.1\r\nHost: a b\r\n\r\n", headScan{hosts: 1, badHost: true, hostInTarget: true}},
		{"absolute-form, good Host", "GET http://a/ HTTP/1.1\r\nHost:  a:80 \r\n\r\n", headScan{hosts: 1, hostInTarget: true}},
		{"origin-form, Host left to the parse", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", headScan{hosts: 1}},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", headScan{hosts: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s headScan
			rest := tt.block
			for !s.done {
				line, after, ok := strings.Cut(rest, "\n")
				if !ok {
					t.Fatalf("block ended before its empty line")
				}
				s.line([]byte(line))
				rest = after
			}
			got := s
			got.lines, got.hostValue, got.done = 0, nil, false
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(headScan{})); diff != "" {
				t.Errorf("scan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHTTP1ClientGoneCancelsContext: a client that goes away while its
// request is served, its body read, cancels the request's context, as
// with net/http's server, once the exchange has run for watchDelay.
// (Neither server notices before the handler has read the body.)
func TestHTTP1ClientGoneCancelsContext(t *testing.T) {
	entered := make(chan struct{})
	cause := make(chan error, 1)
	ls := startLeanServer(t, testServerSettings(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		close(entered)
		select {
		case <-r.Context().Done():
			cause <- context.Cause(r.Context())
		case <-time.After(wait):
			cause <- errors.New("context not cancelled")
		}
	})))
	c := dial(t, ls.addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
	<-entered
	c.Close()
	if err := <-cause; !errors.Is(err, errClientGone) {
		t.Errorf("request context ended with %v, want %v", err, errClientGone)
	}
}

// TestHTTP1WatchKeepsPipelinedBytes: the disconnect watch's read takes a
// byte of the next request when the client pipelines; that request is
// still served whole.
func TestHTTP1WatchKeepsPipelinedBytes(t *testing.T) {
	release := make(chan struct{})
	ls := startLeanServer(t, testServerSettings(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, r.URL.Path)
	})))
	c := dial(t, ls.addr)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	poll.UntilTrue(t, wait, "the watch reading", func() bool { return watchReading(ls.s) })
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	poll.UntilTrue(t, wait, "the watch's byte", func() bool { return !watchReading(ls.s) })
	close(release)
	br := bufio.NewReader(c)
	for _, want := range []string{"/slow", "/next"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response for %s: %v", want, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != want {
			t.Errorf("response body %q, want %q", b, want)
		}
	}
}

func watchReading(s *http1Server) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for hc := range s.conns {
		hc.watchMu.Lock()
		reading := hc.reading
		hc.watchMu.Unlock()
		if reading {
			return true
		}
	}
	return false
}

// TestHTTP1Drain: on drain an idle connection closes at once; a request
// in flight completes, its response says Connection: close, and its
// connection closes after it.
func TestHTTP1Drain(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	ls := startLeanServer(t, testServerSettings(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/held" {
			close(entered)
			<-release
		}
		io.WriteString(w, "done")
	})))
	idle := dial(t, ls.addr)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	idleBr := bufio.NewReader(idle)
	resp, err := http.ReadResponse(idleBr, nil)
	if err != nil || resp.Close {
		t.Fatalf("first response %v, %v; want a keep-alive response", resp, err)
	}
	io.ReadAll(resp.Body)
	held := dial(t, ls.addr)
	io.WriteString(held, "GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered

	ls.s.drain()
	if n, err := idleBr.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle connection after drain: read %d bytes, %v; want it closed", n, err)
	}
	close(release)
	resp, err = http.ReadResponse(bufio.NewReader(held), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "done" || !resp.Close {
		t.Errorf("in-flight response %q close=%v, want \"done\" with Connection: close", b, resp.Close)
	}
	if rest := readAll(t, held); rest != "" {
		t.Errorf("after the in-flight response the server sent %q, want the connection closed", rest)
	}
}

// TestHTTP1Expect100Continue: the 100 comes when the handler first reads
// the body, not before; a handler that does not read gets no 100 and the
// connection closes after its response.
func TestHTTP1Expect100Continue(t *testing.T) {
	ls := startLeanServer(t, testServerSettings(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/noread" {
			io.WriteString(w, "not read")
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})))
	c := dial(t, ls.addr)
	io.WriteString(c, "POST /read HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("before the body the server sent %q, %v; want 100 Continue", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "body")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "body" || resp.Close {
		t.Errorf("response %q close=%v, want the body echoed on a kept connection", b, resp.Close)
	}

	io.WriteString(c, "POST /noread HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("response to an unread expecting body: %d close=%v, want 200 with Connection: close", resp.StatusCode, resp.Close)
	}
}

// TestHTTP1Timeouts: a header not sent within ReadHeaderTimeout, or no
// request within IdleTimeout after the last, closes the connection
// without an answer.
func TestHTTP1Timeouts(t *testing.T) {
	srv := testServerSettings(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.ReadHeaderTimeout, srv.IdleTimeout = 50*time.Millisecond, 50*time.Millisecond
	ls := startLeanServer(t, srv)

	slow := dial(t, ls.addr)
	io.WriteString(slow, "GET / HTTP/1.1\r\nHost: x\r\n")
	if got := readAll(t, slow); got != "" {
		t.Errorf("a header not finished in time got %q, want the connection closed", got)
	}

	idle := dial(t, ls.addr)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(idle)
	if _, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle connection: read %d bytes, %v; want it closed", n, err)
	}
}

// TestHTTP1H2CPreface: with h2c on, a connection opening with the HTTP/2
// preface is handed off with the bytes read; one that differs from it at
// any byte is served as HTTP/1.
func TestHTTP1H2CPreface(t *testing.T) {
	srv := testServerSettings(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "http/1 "+r.Method)
	}))
	srv.Protocols.SetUnencryptedHTTP2(true)
	ls := startLeanServer(t, srv)
	handed := make(chan string, 1)
	serveOne := func(raw string) string {
		client, server := net.Pipe()
		defer client.Close()
		go io.WriteString(client, raw)
		end := make(chan connEnd, 1)
		go func() {
			end <- ls.s.serve(&connInfo{raw: server, conn: server}, func(c net.Conn) {
				b := make([]byte, len(h2cPreface))
				io.ReadFull(c, b)
				handed <- string(b)
				c.Close()
			})
		}()
		client.SetDeadline(time.Now().Add(wait))
		resp, err := http.ReadResponse(bufio.NewReader(client), nil)
		if err != nil {
			client.Close()
			if e := <-end; e != connHandedOff {
				t.Errorf("%q: no response and the connection ended as %v", raw, e)
			}
			return <-handed
		}
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := serveOne(h2cPreface); got != h2cPreface {
		t.Errorf("preface handed off as %q, want it whole", got)
	}
	if got := serveOne("PRI /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); got != "http/1 PRI" {
		t.Errorf("a request starting like the preface got %q, want it served as HTTP/1", got)
	}
}

// TestHTTP1HijackedConnKeepsBufferedBytes: bytes the client sent right
// after an upgrade request are read from the hijacked connection itself
// (net/http's leaves them in the returned bufio.Reader only).
func TestHTTP1HijackedConnKeepsBufferedBytes(t *testing.T) {
	ls := startLeanServer(t, testServerSettings(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		b := make([]byte, len("early"))
		io.ReadFull(conn, b)
		conn.Write(b)
	})))
	c := dial(t, ls.addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade response %v, %v", resp, err)
	}
	if got, _ := io.ReadAll(br); string(got) != "early" {
		t.Errorf("tunnel echoed %q, want \"early\"", got)
	}
}

// TestHTTP1RegistryForgetsConnections: through a listener, the socket's
// registry holds a lean connection while it is open, and forgets it
// when it closes or, hijacked, when its tunnel ends.
func TestHTTP1RegistryForgetsConnections(t *testing.T) {
	e := newEnv(t, time.Second)
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			io.WriteString(w, "ok")
			return
		}
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "echo")
		w.WriteHeader(http.StatusSwitchingProtocols)
		conn, brw, _ := http.NewResponseController(w).Hijack()
		defer conn.Close()
		io.Copy(conn, brw)
	})
	e.mustApply(runtime(map[string]*config.Cluster{"api": staticCluster("api", up)},
		httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))))
	b := e.m.lookup(keyOf(t, e, "l"))
	open := func() int {
		b.registry.mu.Lock()
		defer b.registry.mu.Unlock()
		return len(b.registry.conns)
	}

	c := dial(t, e.addr("l"))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Fatal(err)
	}
	if n := open(); n != 1 {
		t.Errorf("%d connections registered while one is open", n)
	}
	c.Close()
	poll.UntilTrue(t, wait, "the closed connection forgotten", func() bool { return open() == 0 })

	u := dial(t, e.addr("l"))
	io.WriteString(u, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	ubr := bufio.NewReader(u)
	if resp, err := http.ReadResponse(ubr, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	b.registry.mu.Lock()
	hijacked := 0
	for _, ci := range b.registry.conns {
		if ci.hijacked.Load() {
			hijacked++
		}
	}
	b.registry.mu.Unlock()
	if hijacked != 1 {
		t.Errorf("%d registered connections marked hijacked during a tunnel, want 1", hijacked)
	}
	u.Close()
	poll.UntilTrue(t, wait, "the tunnel's connection forgotten", func() bool { return open() == 0 })
}

func keyOf(t *testing.T, e *env, name string) string {
	t.Helper()
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	for k, b := range e.m.bound {
		if b.active.Load().Name == name {
			return k
		}
	}
	t.Fatalf("no listener %q", name)
	return ""
}

// serveOneGET starts a listener with the manager's options changed by
// configure, serves one GET through it on a connection left open, and
// returns the listener's socket.
func serveOneGET(t *testing.T, configure func(*Options)) *bound {
	t.Helper()
	e := newEnv(t, time.Second)
	configure(&e.m.opts)
	up := backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	e.mustApply(runtime(map[string]*config.Cluster{"api": staticCluster("api", up)},
		httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))))
	c := dial(t, e.addr("l"))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("response %v, %v", resp, err)
	}
	return e.m.lookup(keyOf(t, e, "l"))
}

// TestHTTP1ServerOption: HTTP1NetHTTP serves HTTP/1.1 with net/http's
// server: the lean server holds no connection.
func TestHTTP1ServerOption(t *testing.T) {
	for _, tt := range []struct {
		server   HTTP1Server
		wantLean bool
	}{{HTTP1Lean, true}, {HTTP1NetHTTP, false}} {
		t.Run(tt.server.String(), func(t *testing.T) {
			b := serveOneGET(t, func(o *Options) { o.HTTP1Server = tt.server })
			b.h1.mu.Lock()
			lean := len(b.h1.conns) == 1
			b.h1.mu.Unlock()
			if lean != tt.wantLean {
				t.Errorf("lean server used: %v, want %v", lean, tt.wantLean)
			}
		})
	}
}

// TestSocketIOOption: accepted connections have raw reads and writes
// (rawio) unless StandardSocketIO is set, and serve either way.
func TestSocketIOOption(t *testing.T) {
	for _, standard := range []bool{false, true} {
		t.Run(fmt.Sprintf("standard=%v", standard), func(t *testing.T) {
			b := serveOneGET(t, func(o *Options) { o.StandardSocketIO = standard })
			b.registry.mu.Lock()
			var types []string
			for _, ci := range b.registry.conns {
				types = append(types, fmt.Sprintf("%T", ci.raw))
			}
			b.registry.mu.Unlock()
			want := "*rawio.Conn"
			if standard {
				want = "*net.TCPConn"
			}
			if len(types) != 1 || types[0] != want {
				t.Errorf("accepted connections %v, want one %s", types, want)
			}
		})
	}
}

func TestParseHTTP1Server(t *testing.T) {
	for _, s := range []HTTP1Server{HTTP1Lean, HTTP1NetHTTP} {
		if got, err := ParseHTTP1Server(s.String()); err != nil || got != s {
			t.Errorf("ParseHTTP1Server(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseHTTP1Server("nginx"); err == nil {
		t.Error("ParseHTTP1Server accepted nginx")
	}
}

// TestChunkedRequestConnection: through a listener, a chunked request
// keeps its connection with the lean server, which refuses ambiguous
// framing before any handler; net/http's server cannot report it, so
// the edge closes the connection after every chunked request there.
func TestChunkedRequestConnection(t *testing.T) {
	for _, tt := range []struct {
		server    HTTP1Server
		wantClose bool
	}{{HTTP1Lean, false}, {HTTP1NetHTTP, true}} {
		t.Run(tt.server.String(), func(t *testing.T) {
			e := newEnv(t, time.Second)
			e.m.opts.HTTP1Server = tt.server
			up := backend(t, func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				w.Write(b)
			})
			e.mustApply(runtime(map[string]*config.Cluster{"api": staticCluster("api", up)},
				httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))))
			c := dial(t, e.addr("l"))
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(b) != "hello" || resp.Close != tt.wantClose {
				t.Errorf("response %d %q close=%v, want 200 \"hello\" close=%v", resp.StatusCode, b, resp.Close, tt.wantClose)
			}
		})
	}
}
