package http1client

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// responseCorpus are raw responses, each followed by the start of a next
// one, so that a framing difference shows in the bytes left behind.
var responseCorpus = []struct {
	name, raw string
	plain     bool // parsed by readPlainResponse, not http.ReadResponse
}{
	{"content length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n", true},
	{"no reason", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", true},
	{"odd reason", "HTTP/1.1 299 Fine \xe2\x9c\x93 then\r\nContent-Length: 1\r\n\r\nx", true},
	{"fields to canonicalize, repeated, padded", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-MULTI: a\r\nX-Multi:b\r\nset-cookie: a=1\r\nSet-Cookie:  b=2 \t\r\nX-Empty:\r\nx-long-name-with-many-parts: v\r\n\r\nhi", true},
	{"connection close", "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nhi", true},
	{"connection keep-alive", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi", true},
	{"no content with a length", "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", true},
	{"no content with an empty length (found by FuzzReadResponse)", "HTTP/1.1 204 No Content\r\nContent-Length:\r\n\r\n", false},
	{"not modified", "HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n", true},
	{"content length padded, leading zeros", "HTTP/1.1 200 OK\r\nContent-Length:  007 \r\n\r\n1234567", true},
	{"obs-text in a value", "HTTP/1.1 200 OK\r\nX-Text: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n", true},
	{"gRPC over HTTP/1.1 style", "HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nGrpc-Status: 0\r\nContent-Length: 0\r\n\r\n", true},

	{"32 fields", "HTTP/1.1 200 OK\r\n" + manyFields(31) + "Content-Length: 0\r\n\r\n", true},
	{"33 fields", "HTTP/1.1 200 OK\r\n" + manyFields(32) + "Content-Length: 0\r\n\r\n", false},
	{"a name over 64 bytes", "HTTP/1.1 200 OK\r\nX-" + strings.Repeat("n", 63) + ": v\r\nContent-Length: 0\r\n\r\n", false},

	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 5\r\n\r\n", false},
	{"chunked and a length", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n1\r\na\r\n0\r\n\r\n", false},
	{"until close", "HTTP/1.1 200 OK\r\n\r\nto the end", false},
	{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", false},
	{"informational", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", false},
	{"two equal lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", false},
	{"two different lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi", false},
	{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nhi", false},
	{"empty length", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nhi", false},
	{"huge length", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nhi", false},
	{"pragma", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n", false},
	{"obs-fold", "HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\nContent-Length: 0\r\n\r\n", false},
	{"bare LF ends the head", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\nab\r\n\r\nxyz45678", false},
	{"bare LF lines", "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", false},
	{"bare CR in a value", "HTTP/1.1 200 OK\r\nX-Bad: a\rb\r\nContent-Length: 0\r\n\r\n", false},
	{"space before the colon", "HTTP/1.1 200 OK\r\nX-Bad : a\r\nContent-Length: 0\r\n\r\n", false},
	{"control in a value", "HTTP/1.1 200 OK\r\nX-Bad: a\x01b\r\nContent-Length: 0\r\n\r\n", false},
	{"no colon", "HTTP/1.1 200 OK\r\nX-Bad\r\nContent-Length: 0\r\n\r\n", false},
	{"malformed status", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", false},
	{"two spaces in the status line", "HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n", false},
	{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", false},
	{"truncated head", "HTTP/1.1 200 OK\r\nContent-Len", false},
	{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", true},
	{"empty", "", false},
}

func manyFields(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "X-Field-%d: value %d\r\n", i%7, i)
	}
	return b.String()
}

// TestReadResponseMatchesNetHTTP is the differential test of the lean
// client's response reader: each response, read by readResponse and by
// http.ReadResponse, gives the same response, body, trailers and error,
// and leaves the same bytes behind; the common ones are parsed by
// readPlainResponse (the fast path is taken), the others fall back.
func TestReadResponseMatchesNetHTTP(t *testing.T) {
	for _, tt := range responseCorpus {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw + "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"
			if strings.HasPrefix(tt.name, "truncated") || tt.name == "until close" || tt.name == "empty" {
				raw = tt.raw
			}
			if err := compareResponseReaders(raw, "GET"); err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("GET", "http://api/", nil)
			_, plain := readPlainResponse(bufio.NewReader(strings.NewReader(raw)), req)
			if plain != tt.plain {
				t.Errorf("read by readPlainResponse: %v, want %v", plain, tt.plain)
			}
		})
	}
	t.Run("HEAD", func(t *testing.T) {
		if err := compareResponseReaders("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", "HEAD"); err != nil {
			t.Fatal(err)
		}
	})
}

// compareResponseReaders reads raw as a response to a request of method
// with both readers and describes the first difference.
func compareResponseReaders(raw, method string) error {
	type outcome struct {
		Status, Proto                  string
		StatusCode, Major, Minor       int
		Header, TrailerBefore, Trailer http.Header
		ContentLength                  int64
		Close                          bool
		TransferEncoding               []string
		Err, Body, BodyErr, Left       string
	}
	read := func(f func(*bufio.Reader, *http.Request) (*http.Response, error)) outcome {
		req, _ := http.NewRequest(method, "http://api/", nil)
		br := bufio.NewReaderSize(strings.NewReader(raw), 4096)
		resp, err := f(br, req)
		var o outcome
		if err != nil {
			o.Err = err.Error()
			return o
		}
		o = outcome{Status: resp.Status, Proto: resp.Proto, StatusCode: resp.StatusCode, Major: resp.ProtoMajor, Minor: resp.ProtoMinor,
			Header: resp.Header.Clone(), TrailerBefore: resp.Trailer.Clone(), ContentLength: resp.ContentLength, Close: resp.Close,
			TransferEncoding: resp.TransferEncoding}
		body, berr := io.ReadAll(resp.Body)
		o.Body, o.Trailer = string(body), resp.Trailer
		if berr != nil {
			o.BodyErr = berr.Error()
		}
		left, _ := io.ReadAll(br)
		o.Left = string(left)
		return o
	}
	got, want := read(readResponse), read(http.ReadResponse)
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("readResponse:\n%+v\nhttp.ReadResponse:\n%+v", got, want)
	}
	return nil
}

// FuzzReadResponse: whatever an upstream sends, the lean client reads
// the response http.ReadResponse reads, and leaves the same bytes.
func FuzzReadResponse(f *testing.F) {
	for _, tt := range responseCorpus {
		f.Add(tt.raw+"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", false)
	}
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true)
	f.Fuzz(func(t *testing.T, raw string, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		if err := compareResponseReaders(raw, method); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkReadResponse: the response of a typical upstream, read by
// readResponse and by http.ReadResponse.
func BenchmarkReadResponse(b *testing.B) {
	raw := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Sun, 06 Dec 2026 22:00:00 GMT\r\nServer: nginx\r\nContent-Length: 1024\r\nX-Request-Id: 4f1c2d\r\n\r\n" + strings.Repeat("x", 1024))
	req, _ := http.NewRequest("GET", "http://api/", nil)
	for _, r := range []struct {
		name string
		read func(*bufio.Reader, *http.Request) (*http.Response, error)
	}{{"http.ReadResponse", http.ReadResponse}, {"readResponse", readResponse}} {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			src := bytes.NewReader(raw)
			br := bufio.NewReaderSize(src, 4096)
			for b.Loop() {
				src.Reset(raw)
				br.Reset(src)
				resp, err := r.read(br, req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
			}
		})
	}
}
