package listener

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/match"
	"github.com/weft-mesh/weft/proxy/route"
)

// h2Servers are the listener's HTTP/2 servers: the lean one (the
// default) and net/http's behind the h2Guard. The conformance tests run
// against both.
var h2Servers = []struct {
	name string
	opts func(*Options)
}{
	{"lean", func(*Options) {}},
	{"net/http", func(o *Options) { o.StandardHTTP2Server = true }},
}

// TestHTTP2RefusesConnectionSpecificHeaders (issue 14, RFC 9113 §8.2.2):
// an HTTP/2 request carrying a connection-specific header field, or a TE
// other than "trailers", is malformed: its stream is reset with
// PROTOCOL_ERROR and it is never forwarded — to an HTTP/1.1 upstream such
// a field would be a smuggling path (Transfer-Encoding: chunked over a
// request framed by HTTP/2). Go's HTTP/2 server alone answers 400; the
// listener's h2Guard makes it reset the stream (a 400 may come first,
// which §8.1.1 allows). The connection lives on: a request after it,
// whose header block refers to fields the malformed one put in the HPACK
// table, is served. Raw frames, so no client library drops the field
// first; on the outbound (h2c) and the inbound (mTLS, h2 by ALPN)
// listeners.
func TestHTTP2RefusesConnectionSpecificHeaders(t *testing.T) {
	for _, srv := range h2Servers {
		for _, l := range []struct {
			name  string
			start func(t *testing.T, up *config.Cluster, with ...func(*Options)) func(t *testing.T) *http2.Framer
		}{
			{"outbound h2c", h2cListener},
			{"inbound mTLS h2", h2TLSListener},
		} {
			t.Run(srv.name+"/"+l.name, func(t *testing.T) { refusesConnectionSpecific(t, l.start, srv.opts) })
		}
	}
}

func refusesConnectionSpecific(t *testing.T, start func(t *testing.T, up *config.Cluster, with ...func(*Options)) func(t *testing.T) *http2.Framer, opts func(*Options)) {
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
	var reached atomic.Int64
	up := staticCluster("api", backend(t, func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("ok"))
	}))
	connect := start(t, up, opts)
	for _, tt := range tests {
		for _, body := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s body=%v", tt.name, body), func(t *testing.T) {
				before := reached.Load()
				fr := connect(t)
				enc := newBlockEncoder()
				fields := [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "api"}, {":path", "/"}, {"x-indexed", "from stream 1"}, tt.field}
				if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc.block(fields...), EndStream: !body, EndHeaders: true}); err != nil {
					t.Fatal(err)
				}
				if body {
					if err := fr.WriteData(1, true, []byte("smuggled?")); err != nil {
						t.Fatal(err)
					}
				}
				got, err := streamEnd(fr, 1)
				if err != nil {
					t.Fatal(err)
				}
				want := "HEADERS :status 200"
				if tt.refused {
					want = "RST_STREAM PROTOCOL_ERROR"
				}
				if got != want {
					t.Errorf("stream 1: %s, want %s", got, want)
				}
				if n := reached.Load() - before; tt.refused && n != 0 {
					t.Errorf("%d malformed requests reached the upstream", n)
				}
				// The same fields again, from the HPACK table.
				if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: enc.block(fields[:5]...), EndStream: true, EndHeaders: true}); err != nil {
					t.Fatal(err)
				}
				if got, err := streamEnd(fr, 3); err != nil || got != "HEADERS :status 200" {
					t.Errorf("stream 3 after it: %s, %v; want a 200 response on the same connection", got, err)
				}
			})
		}
	}
}

// TestHTTP2GuardFrameShapes: the guard follows header blocks whatever
// their frames look like — padded, with priority, split in CONTINUATION
// frames with the malformed field in the last one — and judges only a
// request's own header block, not the connection's other frames.
func TestHTTP2GuardFrameShapes(t *testing.T) {
	for _, srv := range h2Servers {
		t.Run(srv.name, func(t *testing.T) { hTTP2GuardFrameShapes(t, srv.opts) })
	}
}

func hTTP2GuardFrameShapes(t *testing.T, opts func(*Options)) {
	up := staticCluster("api", backend(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	connect := h2cListener(t, up, opts)
	fields := [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "api"}, {":path", "/"}}
	tests := []struct {
		name  string
		write func(fr *http2.Framer, enc *blockEncoder) error
		want  string
	}{
		{"padded and with priority", func(fr *http2.Framer, enc *blockEncoder) error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc.block(append(fields, [2]string{"upgrade", "h2c"})...),
				EndStream: true, EndHeaders: true, PadLength: 7, Priority: http2.PriorityParam{Weight: 9}})
		}, "RST_STREAM PROTOCOL_ERROR"},
		{"malformed field in a CONTINUATION", func(fr *http2.Framer, enc *blockEncoder) error {
			b := enc.block(append(fields, [2]string{"x-long", strings.Repeat("v", 300)}, [2]string{"transfer-encoding", "chunked"})...)
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:10], EndStream: true, PadLength: 3}); err != nil {
				return err
			}
			if err := fr.WriteContinuation(1, false, b[10:200]); err != nil {
				return err
			}
			return fr.WriteContinuation(1, true, b[200:])
		}, "RST_STREAM PROTOCOL_ERROR"},
		{"a well-formed request split in CONTINUATIONs", func(fr *http2.Framer, enc *blockEncoder) error {
			b := enc.block(append(fields, [2]string{"x-long", strings.Repeat("v", 300)})...)
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:1], EndStream: true}); err != nil {
				return err
			}
			return fr.WriteContinuation(1, true, b[1:])
		}, "HEADERS :status 200"},
		{"pings and window updates around it", func(fr *http2.Framer, enc *blockEncoder) error {
			if err := fr.WritePing(false, [8]byte{1}); err != nil {
				return err
			}
			if err := fr.WriteWindowUpdate(0, 1000); err != nil {
				return err
			}
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc.block(append(fields, [2]string{"te", "gzip"})...), EndStream: true, EndHeaders: true})
		}, "RST_STREAM PROTOCOL_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := connect(t)
			enc := newBlockEncoder()
			if err := tt.write(fr, enc); err != nil {
				t.Fatal(err)
			}
			if got, err := streamEnd(fr, 1); err != nil || got != tt.want {
				t.Errorf("stream 1: %s, %v; want %s", got, err, tt.want)
			}
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: enc.block(fields...), EndStream: true, EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
			if got, err := streamEnd(fr, 3); err != nil || got != "HEADERS :status 200" {
				t.Errorf("stream 3 after it: %s, %v; want a 200 response on the same connection", got, err)
			}
		})
	}
}

// h2cListener starts an outbound listener (HTTP/2 by prior knowledge)
// routing to up, and returns how to open a raw HTTP/2 connection to it.
func h2cListener(t *testing.T, up *config.Cluster, with ...func(*Options)) func(t *testing.T) *http2.Framer {
	e := newEnv(t, time.Second, with...)
	e.mustApply(runtime(map[string]*config.Cluster{"api": up}, httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))))
	return func(t *testing.T) *http2.Framer {
		c, fr := h2Conn(t, e.addr("l"))
		c.SetReadDeadline(time.Now().Add(wait))
		return fr
	}
}

// h2TLSListener starts an inbound listener (mTLS, h2 by ALPN) routing to
// up, and returns how to open a raw HTTP/2 connection to it as web.
func h2TLSListener(t *testing.T, up *config.Cluster, with ...func(*Options)) func(t *testing.T) *http2.Framer {
	e := newMeshEnv(t, time.Second, with...)
	up.Name = "local_app"
	e.mustApply(runtime(map[string]*config.Cluster{"local_app": up},
		withTLS(httpListener(t, "public_listener", "127.0.0.1:0", prefixRoute("/", "local_app")), serverTLS("h2", "http/1.1"))))
	addr, cfg := e.addr("public_listener"), e.clientTLS(e.ca.Leaf(t, webID), "h2")
	return func(t *testing.T) *http2.Framer {
		c := tls.Client(dial(t, addr), cfg)
		if err := c.Handshake(); err != nil {
			t.Fatalf("mTLS handshake: %v", err)
		}
		if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Fatalf("ALPN chose %q, want h2", p)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(wait))
		return h2Start(t, c)
	}
}

// blockEncoder encodes header blocks of one connection: fields go into
// its HPACK table, as a client's would.
type blockEncoder struct {
	buf bytes.Buffer
	enc *hpack.Encoder
}

func newBlockEncoder() *blockEncoder {
	e := &blockEncoder{}
	e.enc = hpack.NewEncoder(&e.buf)
	return e
}

func (e *blockEncoder) block(fields ...[2]string) []byte {
	e.buf.Reset()
	for _, f := range fields {
		e.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return bytes.Clone(e.buf.Bytes())
}

// streamEnd sends a PING after the request frames written so far and
// reads frames until stream id ended: "RST_STREAM <code>" when it was
// reset (after a response or not; PROTOCOL_ERROR if any reset said so), "HEADERS :status <code>" when its
// response ended it, or the connection's GOAWAY. The server reads frames
// in order and queues a reset and a PING's ACK in order, so a reset the
// request's frames caused comes before the ACK: a response that ended
// before the ACK without a reset was not reset.
func streamEnd(fr *http2.Framer, id uint32) (string, error) {
	if fr.ReadMetaHeaders == nil {
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil) // the connection's, from its first stream on
	}
	ping := [8]byte{'s', 't', 'r', 'e', 'a', 'm', byte(id)}
	if err := fr.WritePing(false, ping); err != nil {
		return "", err
	}
	var status, rst string
	var ended, acked bool
	for {
		switch {
		case acked && rst != "":
			return "RST_STREAM " + rst, nil
		case acked && ended:
			return "HEADERS :status " + status, nil
		}
		f, err := fr.ReadFrame()
		if err != nil {
			return "", fmt.Errorf("stream %d: %w (status so far %q)", id, err, status)
		}
		if f.Header().StreamID == id && f.Header().Flags.Has(http2.FlagDataEndStream) {
			ended = true
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			// A stream whose handler answered before its body was read
			// may be reset with NO_ERROR first (RFC 9113 §8.1); a
			// PROTOCOL_ERROR reset after it is the one that counts.
			if f.StreamID == id && (rst == "" || f.ErrCode == http2.ErrCodeProtocol) {
				rst = f.ErrCode.String()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				status = f.PseudoValue("status")
			}
		case *http2.PingFrame:
			acked = acked || f.IsAck() && f.Data == ping
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

// TestHTTP2OverTLSIsHTTPS: HTTP/2 over TLS is served behind an h2Guard,
// whose server does not see the TLS; the listener gives requests their
// TLS state back, so a route matching :scheme "https" matches them (and
// HTTP/1.1 over the same listener alike).
func TestHTTP2OverTLSIsHTTPS(t *testing.T) {
	e := newMeshEnv(t, time.Second)
	app := staticCluster("local_app", backend(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	https := prefixRoute("/", "local_app")
	https.Match.Headers = []route.HeaderMatcher{{Name: ":scheme", Kind: route.HeaderString, String: match.MustString(match.Exact, "https", false)}}
	e.mustApply(runtime(map[string]*config.Cluster{"local_app": app},
		withTLS(httpListener(t, "public_listener", "127.0.0.1:0", https), serverTLS("h2", "http/1.1"))))
	cfg := e.clientTLS(e.ca.Leaf(t, webID), "h2", "http/1.1")
	for _, h2 := range []bool{true, false} {
		if code, _, _ := rawRequest(t, e.addr("public_listener"), cfg, "/", h2); code != http.StatusOK {
			t.Errorf("h2=%v: %d, want the route on :scheme https to match", h2, code)
		}
	}
}

// TestHTTP2ConnectionConformance (issue 14): how the HTTP/2 listeners —
// Go's HTTP/2 server behind the listener's guard — treat the connection
// preface, frame sizes and SETTINGS, with raw frames. Each case states
// what RFC 9113 asks; docs/reliability.md lists where Go's server differs
// (accepting frames larger than 16,384 bytes before the client can have
// seen its SETTINGS, answering several SETTINGS with fewer ACKs), which
// these cases pin, so a Go upgrade that changes them shows here.
func TestHTTP2ConnectionConformance(t *testing.T) {
	for _, srv := range h2Servers {
		t.Run(srv.name, func(t *testing.T) { hTTP2ConnectionConformance(t, srv.opts) })
	}
}

func hTTP2ConnectionConformance(t *testing.T, opts func(*Options)) {
	up := staticCluster("api", backend(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body); w.Write([]byte("ok")) }))
	e := newEnv(t, time.Second, opts)
	e.mustApply(runtime(map[string]*config.Cluster{"api": up}, httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))))
	addr := e.addr("l")
	get := func(id uint32) []byte {
		return newBlockEncoder().block([2]string{":method", "POST"}, [2]string{":scheme", "http"}, [2]string{":authority", "api"}, [2]string{":path", "/"})
	}
	settingsFrame := func(payload ...byte) []byte { return rawFrame(0x4, 0, 0, payload) }
	tests := []struct {
		name string
		// send is what the client writes, preface included.
		send func() []byte
		// want is how the connection ends or what it answers:
		// "GOAWAY <code>", "closed", or "stream 1 <status>".
		want string
	}{
		// §3.4: an invalid preface is a connection error, GOAWAY optional.
		// A cleartext listener serves both versions, so what is not the
		// HTTP/2 preface is read as HTTP/1.1: "PRI *" is no route.
		{"a client preface that is not one, in cleartext", func() []byte {
			return []byte("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + string(settingsFrame()))
		}, "HTTP/1.1 404, closed"},
		{"a first frame other than SETTINGS: PROTOCOL_ERROR (§3.4)", func() []byte {
			return append([]byte(http2.ClientPreface), rawFrame(0x6, 0, 0, make([]byte, 8))...)
		}, "GOAWAY PROTOCOL_ERROR"},
		{"SETTINGS of a length not a multiple of 6: FRAME_SIZE_ERROR (§6.5)", func() []byte {
			return append([]byte(http2.ClientPreface), settingsFrame(0, 3, 0, 0, 0)...)
		}, "GOAWAY FRAME_SIZE_ERROR"},
		{"SETTINGS ACK with a payload: FRAME_SIZE_ERROR (§6.5)", func() []byte {
			b := append([]byte(http2.ClientPreface), settingsFrame()...)
			return append(b, rawFrame(0x4, 0x1, 0, make([]byte, 6))...)
		}, "GOAWAY FRAME_SIZE_ERROR"},
		{"SETTINGS_ENABLE_PUSH 2: PROTOCOL_ERROR (§6.5.2)", func() []byte {
			return append([]byte(http2.ClientPreface), settingsFrame(0, 2, 0, 0, 0, 2)...)
		}, "GOAWAY PROTOCOL_ERROR"},
		{"SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1: FLOW_CONTROL_ERROR (§6.5.2)", func() []byte {
			return append([]byte(http2.ClientPreface), settingsFrame(0, 4, 0x80, 0, 0, 0)...)
		}, "GOAWAY FLOW_CONTROL_ERROR"},
		{"SETTINGS_MAX_FRAME_SIZE under 16,384: PROTOCOL_ERROR (§6.5.2)", func() []byte {
			return append([]byte(http2.ClientPreface), settingsFrame(0, 5, 0, 0, 0x3f, 0xff)...)
		}, "GOAWAY PROTOCOL_ERROR"},
		{"a frame over the server's SETTINGS_MAX_FRAME_SIZE: FRAME_SIZE_ERROR (§4.2)", func() []byte {
			b := append([]byte(http2.ClientPreface), settingsFrame()...)
			b = append(b, rawFrame(0x1, 0x4, 1, get(1))...)
			return append(b, rawFrame(0x0, 0x1, 1, make([]byte, 1<<20+1))...)
		}, "GOAWAY FRAME_SIZE_ERROR"},
		{"Go: a DATA frame over 16,384 bytes before the client saw the server's SETTINGS is accepted", func() []byte {
			b := append([]byte(http2.ClientPreface), settingsFrame()...)
			b = append(b, rawFrame(0x1, 0x4, 1, get(1))...)
			return append(b, rawFrame(0x0, 0x1, 1, make([]byte, 20000))...)
		}, "stream 1 200"},
		{"frames of an unknown type are ignored (§4.1)", func() []byte {
			b := append([]byte(http2.ClientPreface), settingsFrame()...)
			b = append(b, rawFrame(0xfa, 0, 0, []byte("ignore me"))...)
			return append(b, rawFrame(0x1, 0x4|0x1, 1, get(1))...)
		}, "stream 1 200"},
	}
	t.Run("the server's preface is a SETTINGS frame (§3.4)", func(t *testing.T) {
		c := dial(t, addr)
		c.SetDeadline(time.Now().Add(wait))
		c.Write(append([]byte(http2.ClientPreface), settingsFrame()...))
		f, err := http2.NewFramer(nil, c).ReadFrame()
		if err != nil || f.Header().Type != http2.FrameSettings || f.Header().Flags.Has(http2.FlagSettingsAck) {
			t.Errorf("first frame %v, %v; want a SETTINGS frame", f, err)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(wait))
			go c.Write(tt.send())
			if got := connectionOutcome(c); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}

	t.Run("a client preface that is not one, over TLS with h2 by ALPN: closed (§3.4)", func(t *testing.T) {
		e := newMeshEnv(t, time.Second, opts)
		e.mustApply(runtime(map[string]*config.Cluster{"local_app": staticCluster("local_app")},
			withTLS(httpListener(t, "public_listener", "127.0.0.1:0", prefixRoute("/", "local_app")), serverTLS("h2", "http/1.1"))))
		c := tls.Client(dial(t, e.addr("public_listener")), e.clientTLS(e.ca.Leaf(t, webID), "h2"))
		c.SetDeadline(time.Now().Add(wait))
		if err := c.Handshake(); err != nil || c.ConnectionState().NegotiatedProtocol != "h2" {
			t.Fatalf("handshake: %v, ALPN %q", err, c.ConnectionState().NegotiatedProtocol)
		}
		go io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"+string(settingsFrame()))
		if got := connectionOutcome(c); got != "closed" {
			t.Errorf("got %s, want the connection closed", got)
		}
	})

	// Go's server answers SETTINGS frames that arrive before it could
	// write an ACK with one ACK (§6.5.3 asks for one each): five SETTINGS
	// in one write get between one and five ACKs.
	t.Run("Go: SETTINGS ACKs may be coalesced", func(t *testing.T) {
		c := dial(t, addr)
		c.SetDeadline(time.Now().Add(wait))
		b := []byte(http2.ClientPreface)
		for range 5 {
			b = append(b, settingsFrame(0, 3, 0, 0, 0, 9)...)
		}
		b = append(b, rawFrame(0x6, 0, 0, []byte("finished"))...)
		c.Write(b)
		fr := http2.NewFramer(nil, c)
		acks := 0
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if f.Header().Type == http2.FrameSettings && f.Header().Flags.Has(http2.FlagSettingsAck) {
				acks++
			}
			if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
				break
			}
		}
		if acks < 1 || acks > 5 {
			t.Errorf("%d SETTINGS ACKs for 5 SETTINGS frames, want 1 to 5", acks)
		}
		t.Logf("%d SETTINGS ACKs for 5 SETTINGS frames", acks)
	})
}

// rawFrame is an HTTP/2 frame, built by hand so that it can break the
// rules a Framer enforces.
func rawFrame(typ, flags byte, stream uint32, payload []byte) []byte {
	n := len(payload)
	b := []byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags, byte(stream >> 24), byte(stream >> 16), byte(stream >> 8), byte(stream)}
	return append(b, payload...)
}

// connectionOutcome reads what the server sends on c: "GOAWAY <code>"
// when it ends the connection, "closed" when it closes without one,
// "stream 1 <status>" when it answers stream 1, or "HTTP/1.1 <status>,
// closed" when it took the bytes for HTTP/1.1.
func connectionOutcome(c net.Conn) string {
	br := bufio.NewReader(c)
	if b, err := br.Peek(9); err == nil && string(b) == "HTTP/1.1 " {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return "HTTP/1.1: " + err.Error()
		}
		io.Copy(io.Discard, resp.Body)
		if _, err := br.ReadByte(); err != io.EOF || !resp.Close {
			return fmt.Sprintf("HTTP/1.1 %d, left open", resp.StatusCode)
		}
		return fmt.Sprintf("HTTP/1.1 %d, closed", resp.StatusCode)
	}
	fr := http2.NewFramer(nil, br)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.SetMaxReadFrameSize(1 << 24)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return "no answer: " + err.Error()
			}
			return "closed"
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			return "GOAWAY " + f.ErrCode.String()
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 {
				return "stream 1 " + f.PseudoValue("status")
			}
		}
	}
}
