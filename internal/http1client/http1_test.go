package http1client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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
)

// rawUpstream is an HTTP/1.1 upstream that records the bytes of every
// request it reads and answers each with respond's raw response.
type rawUpstream struct {
	ln      net.Listener
	accepts atomic.Int64
	mu      sync.Mutex
	reqs    [][]byte
	conns   []net.Conn
}

// startRawUpstream serves until the test ends. respond returns the raw
// response for a request, and whether to close the connection after it.
func startRawUpstream(t *testing.T, respond func(req *http.Request) (string, bool)) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		u.mu.Lock()
		defer u.mu.Unlock()
		for _, c := range u.conns {
			c.Close()
		}
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			u.accepts.Add(1)
			u.mu.Lock()
			u.conns = append(u.conns, conn)
			u.mu.Unlock()
			go u.serve(conn, respond)
		}
	}()
	return u
}

func (u *rawUpstream) serve(conn net.Conn, respond func(*http.Request) (string, bool)) {
	defer conn.Close()
	var rec bytes.Buffer
	br := bufio.NewReader(io.TeeReader(conn, &rec))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
		// What was read of the connection beyond this request stays in
		// br: record only the request's own bytes.
		raw := rec.Bytes()[:rec.Len()-br.Buffered()]
		u.mu.Lock()
		u.reqs = append(u.reqs, bytes.Clone(raw))
		u.mu.Unlock()
		rest := bytes.Clone(rec.Bytes()[len(raw):])
		rec.Reset()
		rec.Write(rest)
		resp, closeAfter := respond(req)
		if _, err := io.WriteString(conn, resp); err != nil || closeAfter {
			return
		}
	}
}

func (u *rawUpstream) requests() [][]byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([][]byte(nil), u.reqs...)
}

func (u *rawUpstream) addr() string { return u.ln.Addr().String() }

const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"

func testHTTP1Client(t *testing.T) *Client {
	t.Helper()
	var fallback *http.Transport
	c := New(Options{Dial: func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}, IdleTimeout: time.Minute, MaxIdlePerHost: 16, Fallback: func() *http.Transport {
		if fallback == nil {
			fallback = &http.Transport{DisableCompression: true}
		}
		return fallback
	}})
	t.Cleanup(func() {
		c.CloseIdle(true)
		if fallback != nil {
			fallback.CloseIdleConnections()
		}
	})
	return c
}

// roundTripBody sends req through rt and returns the response with its
// body read.
func roundTripBody(t *testing.T, rt http.RoundTripper, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(body)
}

// TestHTTP1ClientSendsWhatTransportSends is the differential test: each
// request, sent once through http.Transport as the cluster configures it
// and once through the lean client, must reach the upstream as the same
// bytes.
func TestHTTP1ClientSendsWhatTransportSends(t *testing.T) {
	tests := []struct {
		name string
		req  func(url string) *http.Request
	}{
		{"GET with headers and query", func(url string) *http.Request {
			r, _ := http.NewRequest("GET", url+"/items?id=1&b=%2F", nil)
			r.Header.Set("X-Request-Id", "abc")
			r.Header.Add("Accept", "a")
			r.Header.Add("Accept", "b")
			r.Header["User-Agent"] = []string{""}
			return r
		}},
		{"POST with a small body", func(url string) *http.Request {
			r, _ := http.NewRequest("POST", url+"/form", strings.NewReader("a=1&b=2"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("User-Agent", "app/1")
			return r
		}},
		{"POST without a body", func(url string) *http.Request {
			r, _ := http.NewRequest("POST", url+"/empty", nil)
			return r
		}},
		{"HEAD", func(url string) *http.Request {
			r, _ := http.NewRequest("HEAD", url+"/", nil)
			return r
		}},
		{"Host other than the address", func(url string) *http.Request {
			r, _ := http.NewRequest("GET", url+"/", nil)
			r.Host = "api.internal"
			return r
		}},
		{"Connection: close", func(url string) *http.Request {
			r, _ := http.NewRequest("DELETE", url+"/x", nil)
			r.Close = true
			return r
		}},
		{"Connection: close asked twice", func(url string) *http.Request {
			r, _ := http.NewRequest("GET", url+"/x", nil)
			r.Header.Set("Connection", "keep-alive, Close")
			r.Close = true
			return r
		}},
		{"fields to sort, repeated and trimmed", func(url string) *http.Request {
			r, _ := http.NewRequest("GET", url+"/", nil)
			for _, k := range []string{"Zeta", "Mid", "B", "X-Forwarded-For", "Accept-Encoding", "Cookie", "Y", "Q", "Traceparent"} {
				r.Header[k] = []string{k}
			}
			r.Header["A"] = []string{" padded\t", "second", ""}
			r.Header["Content-Length"] = []string{"999"}
			r.Header["Transfer-Encoding"] = []string{"chunked"}
			r.Header["Trailer"] = []string{"X"}
			r.Header["Host"] = []string{"ignored"}
			r.Header["User-Agent"] = []string{" ua ", "second ignored"}
			return r
		}},
		{"User-Agent present without values", func(url string) *http.Request {
			r, _ := http.NewRequest("GET", url+"/", nil)
			r.Header["User-Agent"] = nil
			return r
		}},
		{"PUT and PATCH without a body say Content-Length: 0", func(url string) *http.Request {
			r, _ := http.NewRequest("PUT", url+"/", nil)
			return r
		}},
		{"OPTIONS without a body", func(url string) *http.Request {
			r, _ := http.NewRequest("OPTIONS", url+"/", nil)
			return r
		}},
		{"PATCH with a body of unknown type", func(url string) *http.Request {
			r, _ := http.NewRequest("PATCH", url+"/p", io.NopCloser(strings.NewReader(strings.Repeat("b", 9000))))
			r.ContentLength = 9000
			return r
		}},
		{"escaped path, forced empty query", func(url string) *http.Request {
			r, _ := http.NewRequest("GET", url+"/a%20b/%2F?", nil)
			return r
		}},
		{"Host with an IPv6 zone", func(url string) *http.Request {
			r, _ := http.NewRequest("GET", url+"/", nil)
			r.Host = "[fe80::1%25en0]:8080"
			return r
		}},
		{"Host not valid as a field value", func(url string) *http.Request {
			r, _ := http.NewRequest("GET", url+"/", nil)
			r.Host = "api\r\nX-Smuggled: 1"
			return r
		}},
		{"Host in Unicode", func(url string) *http.Request {
			r, _ := http.NewRequest("GET", url+"/", nil)
			r.Host = "bücher.example:80"
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startRawUpstream(t, func(*http.Request) (string, bool) { return okResponse, false })
			url := "http://" + up.addr()
			transport := &http.Transport{DisableCompression: true}
			t.Cleanup(transport.CloseIdleConnections)
			roundTripBody(t, transport, tt.req(url))
			roundTripBody(t, testHTTP1Client(t), tt.req(url))
			got := up.requests()
			if len(got) != 2 {
				t.Fatalf("upstream read %d requests, want 2", len(got))
			}
			if !bytes.Equal(got[0], got[1]) {
				t.Errorf("request bytes differ\nhttp.Transport:\n%q\nlean client:\n%q", got[0], got[1])
			}
		})
	}
}

// TestRequestWriterWritesWhatRequestWriteWrites: the lean client's
// request writer against http.Request.Write itself, with what
// http.Transport refuses before writing (newlines in values, invalid
// names) and bodies that do not match their length.
func TestRequestWriterWritesWhatRequestWriteWrites(t *testing.T) {
	tests := []struct {
		name string
		req  func() *http.Request
	}{
		{"newlines in values, User-Agent too", func() *http.Request {
			r, _ := http.NewRequest("GET", "http://api/", nil)
			r.Header["X-Newlines"] = []string{"one\r\ntwo\nthree", "\r\n trimmed \n"}
			r.Header["User-Agent"] = []string{" ua\r\n with newline "}
			return r
		}},
		{"invalid field names dropped", func() *http.Request {
			r, _ := http.NewRequest("GET", "http://api/", nil)
			r.Header["Bad Name"] = []string{"dropped"}
			r.Header["Bad:Name"] = []string{"dropped"}
			r.Header["Good"] = []string{"kept"}
			return r
		}},
		{"body shorter than its length", func() *http.Request {
			r, _ := http.NewRequest("POST", "http://api/", io.NopCloser(strings.NewReader("abc")))
			r.ContentLength = 5
			return r
		}},
		{"body longer than its length", func() *http.Request {
			r, _ := http.NewRequest("POST", "http://api/", io.NopCloser(strings.NewReader("abcdef")))
			r.ContentLength = 5
			return r
		}},
		{"control character in the path", func() *http.Request {
			r, _ := http.NewRequest("GET", "http://api/", nil)
			r.URL.RawPath, r.URL.Path = "/a\x01", "/a\x01"
			return r
		}},
		{"empty method", func() *http.Request {
			r, _ := http.NewRequest("GET", "http://api/x?y", nil)
			r.Method = ""
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want, got bytes.Buffer
			wantErr := tt.req().Write(&want)
			bw := bufio.NewWriter(&got)
			var w requestWriter
			gotErr := w.write(bw, tt.req())
			bw.Flush()
			if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
				t.Fatalf("error %v, Request.Write's %v", gotErr, wantErr)
			}
			if wantErr == nil && got.String() != want.String() {
				t.Errorf("wrote\n%q\nRequest.Write wrote\n%q", got.String(), want.String())
			}
		})
	}
}

func TestHTTP1ClientResponses(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		response  string
		wantCode  int
		wantBody  string
		wantTrail string // value of trailer X-Sum
		reuse     bool   // the connection serves the next request
	}{
		{"content length", "GET", okResponse, 200, "ok\n", "", true},
		{"chunked with trailer", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n", 200, "abcde", "5", true},
		{"no content", "GET", "HTTP/1.1 204 No Content\r\n\r\n", 204, "", "", true},
		{"not modified with a length", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", 304, "", "", true},
		{"HEAD with a length", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", 200, "", "", true},
		{"connection close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi", 200, "hi", "", false},
		{"until close", "GET", "HTTP/1.1 200 OK\r\n\r\nto the end", 200, "to the end", "", false},
		{"HTTP/1.0", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", 200, "hi", "", false},
		{"early hints first", "GET", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + okResponse, 200, "ok\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startRawUpstream(t, func(*http.Request) (string, bool) {
				return tt.response, strings.Contains(tt.name, "close") || tt.name == "HTTP/1.0"
			})
			c := testHTTP1Client(t)
			for range 2 {
				req, _ := http.NewRequest(tt.method, "http://"+up.addr()+"/", nil)
				resp, body := roundTripBody(t, c, req)
				if resp.StatusCode != tt.wantCode || body != tt.wantBody {
					t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantCode, tt.wantBody)
				}
				if got := resp.Trailer.Get("X-Sum"); got != tt.wantTrail {
					t.Errorf("trailer X-Sum = %q, want %q", got, tt.wantTrail)
				}
			}
			wantDials := int64(2)
			if tt.reuse {
				wantDials = 1
			}
			if got := up.accepts.Load(); got != wantDials {
				t.Errorf("upstream accepted %d connections for two requests, want %d", got, wantDials)
			}
		})
	}
}

func TestHTTP1ClientRelaysInformationalResponses(t *testing.T) {
	up := startRawUpstream(t, func(*http.Request) (string, bool) {
		return "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + okResponse, false
	})
	var got []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, h.Get("Link"))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "http://"+up.addr()+"/", nil)
	roundTripBody(t, testHTTP1Client(t), req)
	if len(got) != 1 || got[0] != "</a.css>" {
		t.Errorf("1xx relayed: %q, want one with Link </a.css>", got)
	}
}

func TestHTTP1ClientRejects(t *testing.T) {
	tests := []struct {
		name     string
		response string
		want     string
	}{
		{"too many informational responses", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 6) + okResponse, "informational"},
		{"header larger than the limit", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", MaxResponseHeaderBytes+10) + "\r\n\r\n", "header larger"},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", "malformed HTTP"},
		{"closed before answering", "", "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startRawUpstream(t, func(*http.Request) (string, bool) { return tt.response, true })
			req, _ := http.NewRequest("POST", "http://"+up.addr()+"/", strings.NewReader("x"))
			req.GetBody = nil // not replayable: no second try
			_, err := testHTTP1Client(t).RoundTrip(req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestHTTP1ClientRetriesStaleConnection: an idle pooled connection the
// upstream closed is found out on use; a request that can be sent again
// goes on a fresh connection, as with http.Transport.
func TestHTTP1ClientRetriesStaleConnection(t *testing.T) {
	up := startRawUpstream(t, func(*http.Request) (string, bool) { return okResponse, false })
	c := testHTTP1Client(t)
	get := func() {
		req, _ := http.NewRequest("GET", "http://"+up.addr()+"/", nil)
		if resp, body := roundTripBody(t, c, req); resp.StatusCode != 200 || body != "ok\n" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	}
	get()
	up.mu.Lock()
	for _, conn := range up.conns {
		conn.Close()
	}
	up.mu.Unlock()
	get()
	if got := up.accepts.Load(); got != 2 {
		t.Errorf("upstream accepted %d connections, want 2", got)
	}
}

// TestHTTP1ClientContextEndsExchange: the request's context interrupts a
// wait for the response and a body read, and the connection is not
// pooled afterwards.
func TestHTTP1ClientContextEndsExchange(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	up := startRawUpstream(t, func(r *http.Request) (string, bool) {
		switch r.URL.Path {
		case "/hang":
			<-release
			return okResponse, true
		case "/slow-body":
			return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", false
		}
		return okResponse, false
	})
	c := testHTTP1Client(t)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+up.addr()+"/hang", nil)
	errc := make(chan error, 1)
	go func() {
		_, err := c.RoundTrip(req)
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: error %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	req, _ = http.NewRequestWithContext(ctx, "GET", "http://"+up.addr()+"/slow-body", nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled body read: error %v, want context.Canceled", err)
	}
	resp.Body.Close()

	accepted := up.accepts.Load()
	req, _ = http.NewRequest("GET", "http://"+up.addr()+"/", nil)
	roundTripBody(t, c, req)
	if got := up.accepts.Load(); got != accepted+1 {
		t.Errorf("after two interrupted exchanges the next request used a pooled connection (%d accepts, want %d)", got, accepted+1)
	}
}

// TestHTTP1ClientClosedBodyClosesConnection: a body closed before its end
// leaves the rest of the response on the connection, so the connection
// is closed, not pooled.
func TestHTTP1ClientClosedBodyClosesConnection(t *testing.T) {
	up := startRawUpstream(t, func(*http.Request) (string, bool) {
		return "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", false
	})
	c := testHTTP1Client(t)
	for range 2 {
		req, _ := http.NewRequest("GET", "http://"+up.addr()+"/", nil)
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Read(make([]byte, 3))
		resp.Body.Close()
	}
	if got := up.accepts.Load(); got != 2 {
		t.Errorf("upstream accepted %d connections, want 2", got)
	}
}

// TestHTTP1ClientFallsBack: requests that need a concurrent writer go
// through the fallback transport.
func TestHTTP1ClientFallsBack(t *testing.T) {
	tests := []struct {
		name string
		req  func(url string) *http.Request
	}{
		{"chunked body", func(url string) *http.Request {
			r, _ := http.NewRequest("POST", url, io.NopCloser(strings.NewReader("stream")))
			r.ContentLength = -1
			return r
		}},
		{"large body", func(url string) *http.Request {
			r, _ := http.NewRequest("PUT", url, bytes.NewReader(make([]byte, MaxInlineBody+1)))
			return r
		}},
		{"expect continue", func(url string) *http.Request {
			r, _ := http.NewRequest("POST", url, strings.NewReader("x"))
			r.Header.Set("Expect", "100-continue")
			return r
		}},
		{"upgrade", func(url string) *http.Request {
			r, _ := http.NewRequest("GET", url, nil)
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startRawUpstream(t, func(*http.Request) (string, bool) { return okResponse, false })
			var used atomic.Bool
			fallback := &http.Transport{DisableCompression: true}
			t.Cleanup(fallback.CloseIdleConnections)
			c := New(Options{Dial: func(context.Context, string) (net.Conn, error) {
				return nil, errors.New("the lean path must not dial")
			}, IdleTimeout: time.Minute, MaxIdlePerHost: 16, Fallback: func() *http.Transport { used.Store(true); return fallback }})
			roundTripBody(t, c, tt.req("http://"+up.addr()+"/"))
			if !used.Load() {
				t.Error("fallback transport not used")
			}
		})
	}
}

// TestHTTP1ClientRetiredStopsPooling: once retired (the cluster's
// transport settings changed), connections in use close at the end of
// their exchange.
func TestHTTP1ClientRetiredStopsPooling(t *testing.T) {
	up := startRawUpstream(t, func(*http.Request) (string, bool) { return okResponse, false })
	c := testHTTP1Client(t)
	req, _ := http.NewRequest("GET", "http://"+up.addr()+"/", nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	c.CloseIdle(true)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n := len(c.pool(up.addr()).idle); n != 0 {
		t.Errorf("%d connections pooled after retirement", n)
	}
	req, _ = http.NewRequest("GET", "http://"+up.addr()+"/", nil)
	if _, err := c.RoundTrip(req); !errors.Is(err, ErrClosed) {
		t.Errorf("request after retirement: %v, want ErrClosed", err)
	}
}

// BenchmarkRequestWrite: the lean client's request writer against
// http.Request.Write, for a request as the sidecar forwards it.
func BenchmarkRequestWrite(b *testing.B) {
	req, _ := http.NewRequest("GET", "http://api:8080/items/42?full=1", nil)
	for k, v := range map[string]string{"Accept": "*/*", "X-Request-Id": "4f1c2d", "Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"X-Forwarded-Proto": "http", "X-Forwarded-Client-Cert": "By=spiffe://x/ns/default/dc/dc1/svc/api;URI=spiffe://x/ns/default/dc/dc1/svc/web"} {
		req.Header.Set(k, v)
	}
	bw := bufio.NewWriter(io.Discard)
	b.Run("Request.Write", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req.Write(bw)
		}
	})
	b.Run("requestWriter", func(b *testing.B) {
		b.ReportAllocs()
		var w requestWriter
		for b.Loop() {
			w.write(bw, req)
		}
	})
}
