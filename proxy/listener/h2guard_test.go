package listener

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

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
			g := guardHTTP2(&chunkConn{in: bytes.Clone(in), chunk: chunk}, 0, 1<<20)
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
// untouched.
func TestH2GuardPassesHTTP1(t *testing.T) {
	in := []byte("GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
	g := guardHTTP2(&chunkConn{in: bytes.Clone(in), chunk: 3}, 0, 1<<20)
	client, added, err := readGuarded(g, 4096)
	if err != nil || !bytes.Equal(client, in) || len(added) != 0 {
		t.Errorf("got %q, added %q, %v; want the request unchanged", client, added, err)
	}
}

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
		g := guardHTTP2(&chunkConn{in: bytes.Clone(in), chunk: chunk}, 0, 1<<12)
		client, added, err := readGuarded(g, 64)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(client, in) {
			t.Fatalf("the server got other bytes than the client sent")
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
