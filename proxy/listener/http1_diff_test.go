package listener

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// seenRequest is what a handler saw of a request: what a proxy would
// forward upstream.
type seenRequest struct {
	Method, RequestURI, URL, Proto, Host string
	Header                               http.Header
	ContentLength                        int64
	TransferEncoding                     []string
	Close                                bool
	Body, BodyErr                        string
	Trailer                              http.Header
}

// requestLog records the requests a handler saw.
type requestLog struct {
	mu   sync.Mutex
	seen []seenRequest
}

func (l *requestLog) take() []seenRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seen
	l.seen = nil
	return s
}

// diffHandler records each request and answers by path, so that the
// corpus exercises every way of framing a response.
func diffHandler(log *requestLog) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seenRequest{
			Method: r.Method, RequestURI: r.RequestURI, URL: r.URL.String(), Proto: r.Proto, Host: r.Host,
			Header: r.Header.Clone(), ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding, Close: r.Close,
		}
		if !strings.HasPrefix(r.URL.Path, "/noread") && r.URL.Path != "/upgrade" {
			b, err := io.ReadAll(r.Body)
			s.Body = string(b)
			if err != nil {
				s.BodyErr = err.Error()
			}
			s.Trailer = r.Trailer.Clone()
		}
		log.mu.Lock()
		log.seen = append(log.seen, s)
		log.mu.Unlock()
		respondByPath(w, r)
	})
}

func respondByPath(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	switch r.URL.Path {
	case "/204":
		w.WriteHeader(http.StatusNoContent)
	case "/304":
		h.Set("ETag", `"v1"`)
		h.Set("Content-Length", "10")
		w.WriteHeader(http.StatusNotModified)
	case "/trailers":
		h.Set("Trailer", "X-Sum")
		io.WriteString(w, "body")
		h.Set("X-Sum", "1")
		h.Set(http.TrailerPrefix+"X-Late", "2")
	case "/big":
		w.Write(bytes.Repeat([]byte("b"), 10<<10))
	case "/cl":
		h.Set("Content-Length", "5")
		io.WriteString(w, "hello")
	case "/short":
		h.Set("Content-Length", "10")
		io.WriteString(w, "hello")
	case "/1xx":
		h.Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		h.Del("Link")
		io.WriteString(w, "after hints")
	case "/flush":
		io.WriteString(w, "one")
		http.NewResponseController(w).Flush()
		io.WriteString(w, "two")
	case "/close":
		h.Set("Connection", "close")
		io.WriteString(w, "bye")
	case "/html":
		io.WriteString(w, "<html><body>sniffed</body></html>")
	case "/identity":
		h.Set("Transfer-Encoding", "identity")
		io.WriteString(w, "until close")
	case "/empty":
	case "/upgrade":
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo: " + line)
		brw.Flush()
	default:
		fmt.Fprintf(w, "ok %s %s", r.Method, r.URL.Path)
	}
}

// http1Corpus are raw requests, one case per connection; several carry
// more than one request.
var http1Corpus = []struct{ name, raw string }{
	{"GET", "GET /a?b=c HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"},
	{"pipelined three", "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"POST with length", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world"},
	{"chunked with extensions and trailers", "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: v\r\nX-Other: w\r\n\r\n"},
	{"chunked then pipelined", "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"chunked uppercase", "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\n\r\n1\r\na\r\n0\r\n\r\n"},
	{"CL and TE", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"TE and CL, lowercase", "POST /a HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 0\r\n\r\n0\r\n\r\n"},
	{"CL and TE gzip", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: gzip\r\n\r\nabc"},
	{"HTTP/1.0 CL and TE", "POST /a HTTP/1.0\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc"},
	{"TE gzip", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"},
	{"TE twice", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{"duplicate CL, same", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nbody"},
	{"duplicate CL, different", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nbody"},
	{"CL with sign", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nbody"},
	{"bare LF header lines", "GET /lf HTTP/1.1\nHost: x\nX-A: 1\n\nGET /lf2 HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"bare LF in chunk size", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\nbody\r\n0\r\n\r\n"},
	{"obs-fold", "GET /fold HTTP/1.1\r\nHost: x\r\nX-Folded: one\r\n  two\r\n\tthree\r\n\r\n"},
	{"obs-fold first line", "GET /fold HTTP/1.1\r\n X-Bad: 1\r\nHost: x\r\n\r\n"},
	{"obs-fold of Host", "GET /fold HTTP/1.1\r\nHost: x\r\n y\r\n\r\n"},
	{"obs-fold of Host, absolute-form", "GET http://a/fold HTTP/1.1\r\nHost: x\r\n y\r\n\r\n"},
	{"obs-fold of empty Host, absolute-form", "GET http://a/fold HTTP/1.1\r\nHost:\r\n y\r\n\r\n"},
	{"absolute-form", "GET http://other:8080/a/b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"absolute-form without Host", "GET http://other/a HTTP/1.1\r\n\r\n"},
	{"absolute-form with bad Host", "GET http://other/a HTTP/1.1\r\nHost: a b\r\n\r\n"},
	{"absolute-form with empty authority", "GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"CONNECT authority-form", "CONNECT example.com:443 HTTP/1.1\r\n\r\n"},
	{"OPTIONS asterisk", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"missing Host", "GET / HTTP/1.1\r\n\r\n"},
	{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n"},
	{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
	{"bad Host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"},
	{"HTTP/1.0 without Host", "GET /old HTTP/1.0\r\n\r\n"},
	{"HTTP/1.0 keep-alive", "GET /cl HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"},
	{"HTTP/1.0 keep-alive, unknown length", "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /y HTTP/1.0\r\n\r\n"},
	{"HTTP/1.0 chunk-less big", "GET /big HTTP/1.0\r\n\r\n"},
	{"Connection: close then more", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"handler closes", "GET /close HTTP/1.1\r\nHost: x\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"Expect 100-continue", "POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody"},
	{"Expect 100-continue, body not read", "POST /noread HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbodyGET /next HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"Expect 100-continue, HTTP/1.0", "POST /e HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody"},
	{"Expect other", "POST /e HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 4\r\n\r\nbody"},
	{"body not read, small", "POST /noread HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"body not read, chunked", "POST /noread HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"body not read, large", "POST /noread HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n" + strings.Repeat("z", 300000) + "GET /next HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"body not read, large chunked", "POST /noread HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("1000\r\n"+strings.Repeat("q", 4096)+"\r\n", 70) + "0\r\n\r\n"},
	{"upgrade", "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello over the tunnel\n"},
	{"HEAD", "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nHEAD /empty HTTP/1.1\r\nHost: x\r\n\r\nHEAD /cl HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"204 and 304", "GET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"trailers", "GET /trailers HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"big, chunked", "GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"declared length", "GET /cl HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"short of declared length", "GET /short HTTP/1.1\r\nHost: x\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"1xx", "GET /1xx HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"flush", "GET /flush HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"sniffed", "GET /html HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"identity", "GET /identity HTTP/1.1\r\nHost: x\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"empty", "GET /empty HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"CRLF after POST", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"CRLF before the first request", "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: x\r\n\r\n"},
	{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n"},
	{"HTTP/0.9", "GET /\r\n\r\n"},
	{"PRI as request", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
	{"malformed request line", "GET/ HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"invalid method", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"space before colon", "GET / HTTP/1.1\r\nHost: x\r\nX-A : 1\r\n\r\n"},
	{"control character in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n"},
	{"header without colon", "GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n"},
	{"truncated header", "GET / HTTP/1.1\r\nHost: x\r\n"},
	{"truncated body", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"},
	{"large header, within the bound", "GET /large HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 6<<10) + "\r\nX-After: 1\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"many headers, within the bound", "GET /many HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-H: v\r\n", 900) + "\r\n"},
	{"header over the bound", "GET /huge HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 10<<10) + "\r\n\r\n"},
	{"percent-encoded target", "GET /a%2Fb/../c%20d?x=%41 HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"Pragma no-cache", "GET / HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\n\r\n"},
}

// intendedDifferences are the cases the lean server answers differently
// from net/http's server, on purpose: ambiguous framing (Content-Length
// with Transfer-Encoding) is refused with 400 and the connection closed,
// as Envoy does (RELIABILITY #12). net/http serves such a request,
// chunked (or by Content-Length for HTTP/1.0, which ignores
// Transfer-Encoding), or refuses a coding it does not implement with 501.
var intendedDifferences = map[string]bool{
	"CL and TE":            true,
	"TE and CL, lowercase": true,
	"CL and TE gzip":       true,
	"HTTP/1.0 CL and TE":   true,
}

// TestHTTP1MatchesNetHTTP replays the corpus through the lean server and
// net/http's server, with the same handler and settings: the handler
// must see the same requests (method, target, header, body, trailers)
// and the client get the same bytes (but for Date), and the connection
// end the same way, except for the intended differences.
func TestHTTP1MatchesNetHTTP(t *testing.T) {
	var leanLog, stdLog requestLog
	lean := startLeanServer(t, testServerSettings(diffHandler(&leanLog)))
	std := startNetHTTPServer(t, testServerSettings(diffHandler(&stdLog)))
	for _, tt := range http1Corpus {
		t.Run(tt.name, func(t *testing.T) {
			gotLean := normalizeResponses(exchangeRaw(t, lean.addr, []byte(tt.raw)))
			seenLean := leanLog.take()
			gotStd := normalizeResponses(exchangeRaw(t, std, []byte(tt.raw)))
			seenStd := stdLog.take()
			if intendedDifferences[tt.name] {
				if len(seenLean) != 0 || !strings.HasPrefix(gotLean, "HTTP/1.1 400 Bad Request") || strings.Count(gotLean, "HTTP/1.1 ") != 1 {
					t.Errorf("lean server: handler saw %d requests, client got %q; want one 400 and the connection closed", len(seenLean), gotLean)
				}
				return
			}
			if diff := cmp.Diff(seenStd, seenLean); diff != "" {
				t.Errorf("requests the handler saw (-net/http +lean):\n%s", diff)
			}
			if diff := cmp.Diff(gotStd, gotLean); diff != "" {
				t.Errorf("bytes the client got (-net/http +lean):\n%s", diff)
			}
		})
	}
}

var dateLine = regexp.MustCompile(`\r\nDate: [^\r]*\r\n`)

// normalizeResponses hides the Date of every response.
func normalizeResponses(b []byte) string {
	return dateLine.ReplaceAllString(string(b), "\r\nDate: (date)\r\n")
}
