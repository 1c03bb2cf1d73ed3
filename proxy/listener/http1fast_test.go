package listener

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fastCorpus is requests the fast path takes and requests it leaves to
// http.ReadRequest.
var fastCorpus = []struct {
	name string
	raw  string
	fast bool
}{
	{"plain GET", "GET /items?id=1 HTTP/1.1\r\nHost: api\r\nUser-Agent: fortio\r\nAccept: */*\r\n\r\n", true},
	{"HEAD, DELETE and OPTIONS", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", true},
	{"no Host (refused later, as by net/http's server)", "GET / HTTP/1.1\r\n\r\n", true},
	{"values trimmed, repeated fields, uncommon name", "GET / HTTP/1.1\r\nHost:  a \t\r\nx-custom-thing:\tv1 \r\nX-Custom-Thing: v2\r\nACCEPT: b\r\n\r\n", true},
	{"empty value", "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n", true},
	{"Connection: close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, CLOSE\r\n\r\n", true},
	{"obs-text in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9\r\n\r\n", true},
	{"escaped path", "DELETE /a%2Fb/%7Ec HTTP/1.1\r\nHost: a\r\n\r\n", true},
	{"POST", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", false},
	{"GET with Content-Length", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab", false},
	{"GET with Transfer-Encoding", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
	{"Trailer (net/http drops it)", "GET / HTTP/1.1\r\nHost: a\r\nTrailer: x\r\n\r\n", false},
	{"Pragma (net/http adds Cache-Control)", "GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n", false},
	{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\n\r\n", false},
	{"absolute form", "GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n", false},
	{"asterisk form", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", false},
	{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", false},
	{"bare LF in a field line", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", false},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", false},
	{"space before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", false},
	{"control byte in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", false},
	{"bare CR in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", false},
	{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", false},
	{"lower-case method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", false},
	{"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", false},
	{"line without a colon", "GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n", false},
	{"bad escape (url refuses it)", "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", false},
}

func TestParseFastRequest(t *testing.T) {
	for _, tc := range fastCorpus {
		t.Run(tc.name, func(t *testing.T) {
			block := headerBlock([]byte(tc.raw))
			var r http.Request
			if got := parseFastRequest(block, &r); got != tc.fast {
				t.Fatalf("fast path took it: %v, want %v", got, tc.fast)
			}
			if tc.fast {
				checkSameAsReadRequest(t, block, &r)
			}
		})
	}
}

// FuzzParseFastRequest: whatever the fast path takes, http.ReadRequest
// reads the same bytes into the same request.
func FuzzParseFastRequest(f *testing.F) {
	for _, tc := range fastCorpus {
		f.Add([]byte(tc.raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		block := headerBlock(raw)
		if block == nil {
			return
		}
		var r http.Request
		if parseFastRequest(block, &r) {
			checkSameAsReadRequest(t, block, &r)
		}
	})
}

// headerBlock is raw up to its first empty line (CRLF CRLF) included,
// nil without one.
func headerBlock(raw []byte) []byte {
	i := bytes.Index(raw, []byte("\r\n\r\n"))
	if i < 0 {
		return nil
	}
	return raw[:i+4]
}

func checkSameAsReadRequest(t *testing.T, block []byte, got *http.Request) {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(block))
	want, err := http.ReadRequest(br)
	if err != nil {
		t.Fatalf("the fast path took %q, http.ReadRequest refuses it: %v", block, err)
	}
	if rest, _ := io.ReadAll(br); len(rest) > 0 {
		t.Fatalf("http.ReadRequest left %q unread of %q", rest, block)
	}
	if got.Body != http.NoBody || want.Body != http.NoBody {
		t.Fatalf("bodies %T and %T, want http.NoBody", got.Body, want.Body)
	}
	opts := cmp.Options{
		cmpopts.IgnoreUnexported(http.Request{}),
		cmpopts.IgnoreFields(http.Request{}, "Body", "GetBody"),
		cmpopts.EquateEmpty(),
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Fatalf("request of %q (-http.ReadRequest +fast):\n%s", block, diff)
	}
}
