package listener

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// guardInput builds a client's bytes: the preface, SETTINGS, and the
// frames write adds.
func guardInput(t testing.TB, write func(fr *http2.Framer, enc *blockEncoder) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&buf, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	if err := write(fr, newBlockEncoder()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// chunkConn is a connection whose reads return at most chunk bytes of in.
type chunkConn struct {
	net.Conn
	in    []byte
	chunk int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.chunk)], c.in)
	c.in = c.in[n:]
	return n, nil
}

// readGuarded reads everything g hands on, in reads of size bytes, and
// returns it with the frames the guard added taken out, and those frames.
func readGuarded(g *h2Guard, size int) (client, added []byte, err error) {
	p := make([]byte, size)
	for {
		injecting := len(g.inject) > 0
		n, err := g.Read(p)
		if injecting {
			added = append(added, p[:n]...)
		} else {
			client = append(client, p[:n]...)
		}
		if errors.Is(err, io.EOF) {
			return client, added, nil
		}
		if err != nil {
			return client, added, err
		}
	}
}

// TestH2GuardPassesClientBytes: whatever the reads' sizes, the guard hands
// the server the client's bytes unchanged and in order, adding a
// WINDOW_UPDATE of increment 0 (a stream error, RFC 9113 §6.9) right
// after the last frame of each malformed request's header block, and
// nothing else.
func TestH2GuardPassesClientBytes(t *testing.T) {
	get := [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "api"}, {":path", "/"}}
	with := func(f ...[2]string) [][2]string { return append(append([][2]string(nil), get...), f...) }
	tests := []struct {
		name  string
		write func(fr *http2.Framer, enc *blockEncoder) error
		// resets are the streams that must get a WINDOW_UPDATE 0, in order.
		resets []uint32
	}{
		{"well-formed", func(fr *http2.Framer, enc *blockEncoder) error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc.block(get...), EndStream: true, EndHeaders: true})
		}, nil},
		{"connection field, then a request from the table", func(fr *http2.Framer, enc *blockEncoder) error {
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc.block(with([2]string{"connection", "close"})...), EndHeaders: true}); err != nil {
				return err
			}
			if err := fr.WriteData(1, true, []byte("body")); err != nil {
				return err
			}
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: enc.block(with([2]string{"connection", "close"})...), EndStream: true, EndHeaders: true})
		}, []uint32{1, 3}},
		{"padded, priority, CONTINUATIONs", func(fr *http2.Framer, enc *blockEncoder) error {
			b := enc.block(with([2]string{"x-long", strings.Repeat("v", 300)}, [2]string{"te", "gzip"})...)
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: b[:1], PadLength: 4, Priority: http2.PriorityParam{Weight: 3}}); err != nil {
				return err
			}
			if err := fr.WriteContinuation(5, false, b[1:100]); err != nil {
				return err
			}
			return fr.WriteContinuation(5, true, b[100:])
		}, []uint32{5}},
		{"trailers are not judged", func(fr *http2.Framer, enc *blockEncoder) error {
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc.block(get...), EndHeaders: true}); err != nil {
				return err
			}
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc.block([2]string{"connection", "x"}), EndStream: true, EndHeaders: true})
		}, nil},
		{"te: trailers, once", func(fr *http2.Framer, enc *blockEncoder) error {
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc.block(with([2]string{"te", "trailers"})...), EndStream: true, EndHeaders: true}); err != nil {
				return err
			}
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: enc.block(with([2]string{"te", "trailers"}, [2]string{"te", "trailers"})...), EndStream: true, EndHeaders: true})
		}, []uint32{3}},
		{"other frames between requests", func(fr *http2.Framer, enc *blockEncoder) error {
			fr.WritePing(false, [8]byte{})
			fr.WriteWindowUpdate(0, 5)
			fr.WritePriority(7, http2.PriorityParam{Weight: 1})
			fr.WriteRawFrame(0xfa, 0, 0, []byte("unknown frame type"))
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 9, BlockFragment: enc.block(with([2]string{"upgrade", "h2c"})...), EndStream: true, EndHeaders: true})
		}, []uint32{9}},
	}
	for _, tt := range tests {
		in := guardInput(t, tt.write)
		for _, chunk := range []int{1, 2, 9, 13, 100, 1 << 16} {
			g := guardHTTP2(&chunkConn{in: bytes.Clone(in), chunk: chunk}, false, 0, 1<<20)
			client, added, err := readGuarded(g, 4096)
			if err != nil {
				t.Fatalf("%s, reads of %d: %v", tt.name, chunk, err)
			}
			if !bytes.Equal(client, in) {
				t.Errorf("%s, reads of %d: the server got other bytes than the client sent", tt.name, chunk)
			}
			var want []byte
			for _, id := range tt.resets {
				want = append(want, 0, 0, 4, 0x8, 0, byte(id>>24), byte(id>>16), byte(id>>8), byte(id), 0, 0, 0, 0)
			}
			if !bytes.Equal(added, want) {
				t.Errorf("%s, reads of %d: added % x, want % x (WINDOW_UPDATE 0 on streams %v)", tt.name, chunk, added, want, tt.resets)
			}
		}
	}
}

// TestH2GuardPassesHTTP1: a connection that is not HTTP/2 goes through
// untouched, unless it must be HTTP/2 (h2 by ALPN): then the server gets
// none of it, and the connection is closed (RFC 9113 §3.4), so that no
// HTTP/1.1 server reads it.
func TestH2GuardPassesHTTP1(t *testing.T) {
	in := []byte("GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
	g := guardHTTP2(&chunkConn{in: bytes.Clone(in), chunk: 3}, false, 0, 1<<20)
	client, added, err := readGuarded(g, 4096)
	if err != nil || !bytes.Equal(client, in) || len(added) != 0 {
		t.Errorf("got %q, added %q, %v; want the request unchanged", client, added, err)
	}
	for _, in := range []string{"GET / HTTP/1.1\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"} {
		closed := &closeConn{}
		g = guardHTTP2(&chunkConn{Conn: closed, in: []byte(in), chunk: 4}, true, 0, 1<<20)
		client, added, err = readGuarded(g, 4096)
		if err != nil || !bytes.HasPrefix([]byte(h2ClientPreface), client) || len(added) != 0 || !closed.closed {
			t.Errorf("h2 by ALPN, %q: the server got %q, added %q, %v, closed %v; want at most a prefix of the preface, then the connection closed", in, client, added, err, closed.closed)
		}
	}
}

// closeConn is a connection that notes its closing.
type closeConn struct {
	net.Conn
	closed bool
}

func (c *closeConn) Close() error { c.closed = true; return nil }

// TestH2GuardControlBudget: PING and SETTINGS frames sent with no
// request or response progress in between draw on a budget of
// controlBurst, refilled at controlRate a second; past it the server
// gets a connection error (WINDOW_UPDATE 0 on stream 0) and nothing more
// of the client's. Keepalives at the refill rate, pings after requests
// or after the server's data (gRPC's bandwidth probes), and ACKs never
// run it out.
func TestH2GuardControlBudget(t *testing.T) {
	ping := func(fr *http2.Framer, _ *blockEncoder) error { return fr.WritePing(false, [8]byte{7}) }
	tests := []struct {
		name string
		n    int
		// each writes one round of the client's frames; serverData
		// makes the server write a DATA frame before each round.
		each       func(fr *http2.Framer, enc *blockEncoder, i int) error
		serverData bool
		// tick is how far the clock moves between rounds.
		tick    time.Duration
		flooded bool
	}{
		{"the burst of PINGs", controlBurst, func(fr *http2.Framer, enc *blockEncoder, _ int) error { return ping(fr, enc) }, false, 0, false},
		{"one PING past the burst", controlBurst + 1, func(fr *http2.Framer, enc *blockEncoder, _ int) error { return ping(fr, enc) }, false, 0, true},
		{"SETTINGS past the burst", controlBurst + 1, func(fr *http2.Framer, _ *blockEncoder, _ int) error { return fr.WriteSettings() }, false, 0, true},
		{"ACKs", 10 * controlBurst, func(fr *http2.Framer, _ *blockEncoder, _ int) error {
			if err := fr.WritePing(true, [8]byte{}); err != nil {
				return err
			}
			return fr.WriteSettingsAck()
		}, false, 0, false},
		{"keepalives at the refill rate", 10 * controlBurst, func(fr *http2.Framer, enc *blockEncoder, _ int) error { return ping(fr, enc) }, false, time.Second / controlRate, false},
		{"a PING after each request", 10 * controlBurst, func(fr *http2.Framer, enc *blockEncoder, i int) error {
			get := enc.block([2]string{":method", "GET"}, [2]string{":scheme", "http"}, [2]string{":authority", "api"}, [2]string{":path", "/"})
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: get, EndStream: true, EndHeaders: true}); err != nil {
				return err
			}
			return ping(fr, enc)
		}, false, 0, false},
		{"empty DATA frames are no progress", controlBurst + 1, func(fr *http2.Framer, enc *blockEncoder, _ int) error {
			if err := fr.WriteData(1, false, nil); err != nil {
				return err
			}
			return ping(fr, enc)
		}, false, 0, true},
		{"a PING after each response's data", 10 * controlBurst, func(fr *http2.Framer, enc *blockEncoder, _ int) error { return ping(fr, enc) }, true, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in bytes.Buffer
			in.WriteString(http2.ClientPreface)
			fr := http2.NewFramer(&in, nil)
			enc := newBlockEncoder()
			var rounds []int // where each round's bytes end
			for i := range tt.n {
				if err := tt.each(fr, enc, i); err != nil {
					t.Fatal(err)
				}
				rounds = append(rounds, in.Len())
			}
			var server bytes.Buffer
			g := guardHTTP2(&chunkConn{Conn: writeConn{&server}, in: in.Bytes(), chunk: 1 << 20}, true, 0, 1<<20)
			clock := time.Unix(1000, 0)
			g.now = func() time.Time { return clock }
			g.last = clock
			var client, added []byte
			p := make([]byte, 1<<16)
			for i := 0; ; {
				injecting := len(g.inject) > 0
				n, err := g.Read(p[:min(len(p), nextRoundEnd(rounds, len(client))-len(client))])
				if injecting {
					added = append(added, p[:n]...)
				} else {
					client = append(client, p[:n]...)
				}
				if err != nil {
					break
				}
				for i < len(rounds) && len(client) >= rounds[i] {
					i++
					clock = clock.Add(tt.tick)
					if tt.serverData {
						http2.NewFramer(g, nil).WriteData(1, false, []byte("response data"))
					}
				}
			}
			if g.flooded != tt.flooded {
				t.Fatalf("flooded = %v, want %v", g.flooded, tt.flooded)
			}
			if !tt.flooded {
				if !bytes.Equal(client, in.Bytes()) || len(added) != 0 {
					t.Errorf("the server got %d of the client's %d bytes and %d added, want them all and nothing added", len(client), in.Len(), len(added))
				}
				return
			}
			if want := []byte{0, 0, 4, 0x8, 0, 0, 0, 0, 0, 0, 0, 0, 0}; !bytes.Equal(added, want) {
				t.Errorf("added % x, want a WINDOW_UPDATE 0 on the connection (% x)", added, want)
			}
			if !bytes.Equal(client, in.Bytes()[:rounds[controlBurst]]) {
				t.Errorf("the server got %d bytes of the client's, want exactly up to the frame past the budget (%d)", len(client), rounds[controlBurst])
			}
		})
	}
}

// nextRoundEnd returns the first round end after read bytes, so that the
// guard reads one round at a time and the test's clock moves between
// rounds.
func nextRoundEnd(rounds []int, read int) int {
	for _, r := range rounds {
		if r > read {
			return r
		}
	}
	return read + 1<<16
}

// writeConn is a connection whose writes go to w.
type writeConn struct{ w io.Writer }

func (c writeConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (c writeConn) Write(p []byte) (int, error)      { return c.w.Write(p) }
func (c writeConn) Close() error                     { return nil }
func (c writeConn) LocalAddr() net.Addr              { return nil }
func (c writeConn) RemoteAddr() net.Addr             { return nil }
func (c writeConn) SetDeadline(time.Time) error      { return nil }
func (c writeConn) SetReadDeadline(time.Time) error  { return nil }
func (c writeConn) SetWriteDeadline(time.Time) error { return nil }

// TestCheckH2TLS: HTTP/2 over TLS needs TLS 1.2 or later, and in TLS 1.2
// an ephemeral key exchange with an AEAD cipher (RFC 9113 §9.2), which
// Go's HTTP/2 server checked itself before the guard hid the TLS.
func TestCheckH2TLS(t *testing.T) {
	tests := []struct {
		version, suite uint16
		ok             bool
	}{
		{tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256, true},
		{tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, true},
		{tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
		{tls.VersionTLS12, tls.TLS_RSA_WITH_AES_128_GCM_SHA256, false},
		{tls.VersionTLS11, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
	}
	for _, tt := range tests {
		err := checkH2TLS(tls.ConnectionState{Version: tt.version, CipherSuite: tt.suite})
		if (err == nil) != tt.ok {
			t.Errorf("%s with %s: %v, want ok=%v", tls.VersionName(tt.version), tls.CipherSuiteName(tt.suite), err, tt.ok)
		}
	}
}

// FuzzH2Guard: the guard faces the client's raw bytes. Whatever they
// are, it does not panic, hands them on unchanged, and adds only whole
// 13-byte WINDOW_UPDATE frames of increment 0.
func FuzzH2Guard(f *testing.F) {
	get := [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "api"}, {":path", "/"}, {"connection", "x"}}
	f.Add(guardInput(f, func(fr *http2.Framer, enc *blockEncoder) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc.block(get...), EndStream: true, EndHeaders: true})
	}), 7)
	f.Add(guardInput(f, func(fr *http2.Framer, enc *blockEncoder) error {
		b := enc.block(get...)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: b[:3], PadLength: 2, Priority: http2.PriorityParam{Weight: 1}})
		return fr.WriteContinuation(3, true, b[3:])
	}), 1)
	f.Add([]byte(http2.ClientPreface+"\x00\x00\x00\x01\x0c\x00\x00\x00\x01"), 5)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), 4)
	f.Fuzz(func(t *testing.T, in []byte, chunk int) {
		chunk = 1 + abs(chunk)%64
		g := guardHTTP2(&chunkConn{in: bytes.Clone(in), chunk: chunk}, false, 0, 1<<12)
		client, added, err := readGuarded(g, 64)
		if err != nil {
			t.Fatal(err)
		}
		if g.flooded && !bytes.HasPrefix(in, client) || !g.flooded && !bytes.Equal(client, in) {
			t.Fatalf("the server got other bytes than the client sent (flooded: %v)", g.flooded)
		}
		for ; len(added) > 0; added = added[13:] {
			if len(added) < 13 || !bytes.Equal(added[:5], []byte{0, 0, 4, 0x8, 0}) || !bytes.Equal(added[9:13], []byte{0, 0, 0, 0}) {
				t.Fatalf("added % x, not WINDOW_UPDATE 0 frames", added)
			}
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// BenchmarkH2Guard: what the guard adds per gRPC-like request (a HEADERS
// frame of a typical gRPC call's fields, from the HPACK table after the
// first, and a DATA frame), reads of 4 KiB as the server's.
func BenchmarkH2Guard(b *testing.B) {
	fields := [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "api:8080"}, {":path", "/grpc.testing.TestService/UnaryCall"},
		{"content-type", "application/grpc"}, {"te", "trailers"}, {"grpc-timeout", "999m"}, {"user-agent", "grpc-go/1.78.0"},
		{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
	const requests = 1000
	in := guardInput(b, func(fr *http2.Framer, enc *blockEncoder) error {
		for i := range requests {
			id := uint32(2*i + 1)
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: enc.block(fields...), EndHeaders: true}); err != nil {
				return err
			}
			if err := fr.WriteData(id, true, make([]byte, 64)); err != nil {
				return err
			}
		}
		return nil
	})
	p := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		g := guardHTTP2(&chunkConn{in: in, chunk: 1 << 20}, true, 0, 1<<20)
		for {
			if _, err := g.Read(p); err != nil {
				break
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*requests), "ns/request")
}
