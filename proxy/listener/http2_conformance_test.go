package listener

import (
	"bytes"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/weft-mesh/weft/proxy/config"
)

// TestHTTP2RefusesConnectionSpecificHeaders (issue 14, RFC 9113 §8.2.2):
// an HTTP/2 request carrying a connection-specific header field, or a TE
// other than "trailers", is malformed and is never forwarded — to an
// HTTP/1.1 upstream such a field would be a smuggling path
// (Transfer-Encoding: chunked over a request framed by HTTP/2). The RFC
// asks for a stream error; Go's HTTP/2 server, which weft-proxy uses,
// answers 400 instead (net/http's checkValidHTTP2RequestHeaders), before
// any handler runs: the stream ends refused either way, and the test
// accepts both. Raw frames, so no client library drops the field first.
func TestHTTP2RefusesConnectionSpecificHeaders(t *testing.T) {
	var reached atomic.Int64
	up := backend(t, func(w http.ResponseWriter, r *http.Request) { reached.Add(1); w.Write([]byte("ok")) })
	e := newEnv(t, time.Second)
	e.mustApply(runtime(map[string]*config.Cluster{"api": staticCluster("api", up)}, httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))))

	tests := []struct {
		name    string
		field   [2]string
		refused bool
	}{
		{"connection", [2]string{"connection", "keep-alive"}, true},
		{"keep-alive", [2]string{"keep-alive", "timeout=5"}, true},
		{"proxy-connection", [2]string{"proxy-connection", "keep-alive"}, true},
		{"transfer-encoding", [2]string{"transfer-encoding", "chunked"}, true},
		{"upgrade", [2]string{"upgrade", "websocket"}, true},
		{"te other than trailers", [2]string{"te", "gzip"}, true},
		{"te: trailers is allowed", [2]string{"te", "trailers"}, false},
		{"an ordinary field", [2]string{"x-ordinary", "1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := reached.Load()
			_, fr := h2Conn(t, e.addr("l"))
			var block bytes.Buffer
			enc := hpack.NewEncoder(&block)
			for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "api"}, {":path", "/"}, tt.field} {
				enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
			got, err := streamOutcome(fr, 1)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.refused && got != "RST_STREAM PROTOCOL_ERROR" && got != "HEADERS :status 400":
				t.Errorf("stream 1: %s, want it refused (RST_STREAM PROTOCOL_ERROR, or Go's 400)", got)
			case !tt.refused && got != "HEADERS :status 200":
				t.Errorf("stream 1: %s, want a 200 response", got)
			}
			if n := reached.Load() - before; tt.refused && n != 0 {
				t.Errorf("%d malformed requests reached the upstream", n)
			}
		})
	}
}

// streamOutcome reads frames until stream id is answered: its response
// status, its reset code, or the connection's GOAWAY.
func streamOutcome(fr *http2.Framer, id uint32) (string, error) {
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return "", err
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				return "RST_STREAM " + f.ErrCode.String(), nil
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				return "HEADERS :status " + f.PseudoValue("status"), nil
			}
		case *http2.GoAwayFrame:
			return "GOAWAY " + f.ErrCode.String(), nil
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					return "", err
				}
			}
		}
	}
}
