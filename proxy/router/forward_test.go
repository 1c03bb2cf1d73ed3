package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// TestForwardedHeaders pins what crosses the router in each direction:
// hop-by-hop headers (and those the Connection header names) and client
// forwarding headers stay behind, Te: trailers goes on, no User-Agent is
// invented, and a query Go would parse differently is re-encoded.
func TestForwardedHeaders(t *testing.T) {
	e := newEnv(t)
	seen := make(chan *http.Request, 1)
	e.setClusters(staticCluster("c", backend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "yes")
		io.WriteString(w, "ok")
	})))
	e.routes(to("c"))
	tests := []struct {
		name    string
		query   string
		headers []string
		check   func(*http.Request) string
	}{
		{"hop-by-hop and Connection-named headers dropped", "", []string{"Connection", "keep-alive, X-Hop", "X-Hop", "secret", "Proxy-Authorization", "Basic x", "X-End", "kept"}, func(r *http.Request) string {
			if r.Header.Get("X-Hop") != "" || r.Header.Get("Proxy-Authorization") != "" || r.Header.Get("X-End") != "kept" {
				return "headers " + headerString(r.Header)
			}
			return ""
		}},
		{"client forwarding headers dropped", "", []string{"X-Forwarded-For", "10.0.0.1", "Forwarded", "for=10.0.0.1", "X-Forwarded-Proto", "https"}, func(r *http.Request) string {
			if r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("Forwarded") != "" || r.Header.Get("X-Forwarded-Proto") != "" {
				return "headers " + headerString(r.Header)
			}
			return ""
		}},
		{"te trailers kept, other te dropped", "", []string{"Te", "gzip, trailers"}, func(r *http.Request) string {
			if got := r.Header.Values("Te"); len(got) != 1 || got[0] != "trailers" {
				return "Te " + strings.Join(got, "|")
			}
			return ""
		}},
		{"no user agent invented", "", []string{"User-Agent", ""}, func(r *http.Request) string {
			if ua := r.Header.Get("User-Agent"); ua != "" {
				return "User-Agent " + ua
			}
			return ""
		}},
		{"semicolon query re-encoded", "a=1;b=2&c=3", nil, func(r *http.Request) string {
			if r.URL.RawQuery != "c=3" {
				return "query " + r.URL.RawQuery
			}
			return ""
		}},
		{"plain query untouched", "b=2&a=%41", nil, func(r *http.Request) string {
			if r.URL.RawQuery != "b=2&a=%41" {
				return "query " + r.URL.RawQuery
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/"
			if tt.query != "" {
				path += "?" + tt.query
			}
			got := e.get(path, tt.headers...)
			if got.code != 200 || got.body != "ok" {
				t.Fatalf("got %d %q", got.code, got.body)
			}
			if msg := tt.check(<-seen); msg != "" {
				t.Errorf("upstream saw %s", msg)
			}
			if got.header.Get("X-Resp-Hop") != "" || got.header.Get("Keep-Alive") != "" || got.header.Get("X-Kept") != "yes" {
				t.Errorf("client got response headers %s", headerString(got.header))
			}
		})
	}
}

func headerString(h http.Header) string {
	var b strings.Builder
	h.Write(&b)
	return b.String()
}

// TestTrailersForwarded checks announced and unannounced trailers reach
// the client.
func TestTrailersForwarded(t *testing.T) {
	e := newEnv(t)
	e.setClusters(staticCluster("c", backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Announced")
		io.WriteString(w, "body")
		w.Header().Set("X-Announced", "a")
		w.Header().Set(http.TrailerPrefix+"X-Late", "l")
	})))
	e.routes(to("c"))
	resp, err := (&http.Client{Timeout: wait}).Get("http://" + e.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "body" || resp.Trailer.Get("X-Announced") != "a" || resp.Trailer.Get("X-Late") != "l" {
		t.Errorf("got %q with trailers %v, want body with X-Announced: a and X-Late: l", b, resp.Trailer)
	}
}

// TestStreamsFlushedPerWrite checks that an event stream and a chunked
// response reach the client write by write: the client reads the first
// event while the upstream holds the second back until it is read.
func TestStreamsFlushedPerWrite(t *testing.T) {
	for _, ct := range []string{"text/event-stream; charset=utf-8", "application/octet-stream"} {
		t.Run(ct, func(t *testing.T) {
			e := newEnv(t)
			release := make(chan struct{})
			e.setClusters(staticCluster("c", backend(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ct)
				io.WriteString(w, "first\n")
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "second\n")
			})))
			e.routes(to("c"))
			resp, err := (&http.Client{Timeout: wait}).Get("http://" + e.addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			if line, err := br.ReadString('\n'); line != "first\n" {
				t.Fatalf("first read %q, %v", line, err)
			}
			close(release)
			if line, err := br.ReadString('\n'); line != "second\n" {
				t.Fatalf("second read %q, %v", line, err)
			}
		})
	}
}

// TestUpgradePiped checks a protocol switch: the 101 reaches the client
// and bytes flow both ways over the hijacked connection.
func TestUpgradePiped(t *testing.T) {
	e := newEnv(t)
	e.setClusters(staticCluster("c", backend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		io.WriteString(c, "echo: "+line)
	})))
	e.routes(to("c"))
	c, err := net.DialTimeout("tcp", e.addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "echo" {
		t.Fatalf("upgrade response %v, %v; want 101 to echo", resp, err)
	}
	io.WriteString(c, "hello\n")
	if line, err := br.ReadString('\n'); line != "echo: hello\n" {
		t.Errorf("piped %q, %v; want the upstream's echo", line, err)
	}
}

// TestEarlyHintsRelayed checks that a 1xx response reaches the client,
// with its own headers only, before the final response.
func TestEarlyHintsRelayed(t *testing.T) {
	e := newEnv(t)
	e.setClusters(staticCluster("c", backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "final")
	})))
	e.routes(to("c"))
	var hints []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		hints = append(hints, fmt.Sprintf("%d %s", code, h.Get("Link")))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "http://"+e.addr+"/", nil)
	got := e.do(req)
	if len(hints) != 1 || hints[0] != "103 </style.css>; rel=preload" {
		t.Errorf("client saw 1xx %q, want one 103 with the Link", hints)
	}
	if got.code != 200 || got.body != "final" || got.header.Get("Link") != "" {
		t.Errorf("final response %d %q %v, want 200 final without the hint's Link", got.code, got.body, got.header)
	}
}

// TestEarlyHintsKeepHeadersSetForTheFinalResponse: headers a listener set
// on the final response before routing (Connection: close after an
// ambiguous request) go out with the final response, not with a relayed
// 1xx.
func TestEarlyHintsKeepHeadersSetForTheFinalResponse(t *testing.T) {
	e := newEnv(t)
	e.setClusters(staticCluster("c", backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "final")
	})))
	e.routes(to("c"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Set-Before", "kept")
		e.router.Serve(w, r, Request{Route: e.table.Load().Match(r, r.URL.EscapedPath())})
	}))
	t.Cleanup(srv.Close)
	var hints []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		hints = append(hints, fmt.Sprintf("%d link=%s before=%s", code, h.Get("Link"), h.Get("X-Set-Before")))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", srv.URL+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(hints) != 1 || hints[0] != "103 link=</style.css>; rel=preload before=" {
		t.Errorf("client saw 1xx %q, want one 103 with the Link and nothing else", hints)
	}
	if resp.StatusCode != 200 || string(body) != "final" || resp.Header.Get("X-Set-Before") != "kept" || resp.Header.Get("Link") != "" {
		t.Errorf("final response %d %q %v, want 200 final with X-Set-Before and without Link", resp.StatusCode, body, resp.Header)
	}
}
