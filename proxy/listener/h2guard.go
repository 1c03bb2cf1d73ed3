package listener

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2/hpack"
)

// An HTTP/2 request carrying a connection-specific header field
// (Connection, Proxy-Connection, Keep-Alive, Transfer-Encoding, Upgrade)
// or a TE other than "trailers" is malformed, and RFC 9113 §8.2.2 asks
// for a stream error of type PROTOCOL_ERROR. Go's HTTP/2 server, which
// serves weft-proxy's HTTP/2 connections, refuses such a request before
// any handler runs, but by answering 400 and ending the stream normally
// (net/http's checkValidHTTP2RequestHeaders), and it has no hook to do
// otherwise.
//
// h2Guard is the connection the server reads: it passes the client's
// bytes through unchanged, reading the frames' headers as they go by and
// decoding each request's header block with an HPACK decoder of its own
// (fed the same bytes as the server's, so its dynamic table stays the
// same). After the last frame of a block that carries such a field it
// adds one frame of its own: a WINDOW_UPDATE of increment 0 on that
// stream, which RFC 9113 §6.9 makes a stream error of type
// PROTOCOL_ERROR. The server then resets the stream with PROTOCOL_ERROR,
// its handler's response is dropped (or, when the 400 was written
// first, followed by the reset, which §8.1.1 allows), and the connection
// and its other streams go on. Trailers are decoded, never judged: the
// server refuses connection-specific trailers with a stream error
// itself.
//
// The guard also bounds control-frame floods, which Go's server answers
// for as long as the client reads its ACKs: PING and SETTINGS frames
// (not ACKs) that arrive with no request or response progress since the
// previous one — no HEADERS, no DATA with a payload, either way — draw
// on a budget of controlBurst frames refilled at controlRate a second,
// so keepalive pings, and pings that follow data (gRPC's bandwidth
// probes), are never limited. A client past the budget gets, in place of
// the rest of its bytes, a WINDOW_UPDATE of increment 0 on the
// connection: a connection error, which the server answers with GOAWAY
// (PROTOCOL_ERROR) and closes.
//
// It costs about 0.3 µs per request and no allocation once the HPACK
// table holds a client's usual fields (BenchmarkH2Guard).
//
// The guard is a conformance measure, not the only defence: when its
// decoder fails where the server's might not (a table size it does not
// know, a string past its bound), it stops judging and the server's own
// check still refuses the request.
type h2Guard struct {
	net.Conn
	// preface is how many bytes of the client preface are still to go
	// by; frames follow it. A connection that does not start with the
	// preface is not HTTP/2: unless mustBeH2, the server serves it as
	// HTTP/1.x and the guard passes it through (notH2); with mustBeH2
	// (TLS whose ALPN chose h2, or cleartext the lean HTTP/1.x server
	// saw start with the preface) it is a connection error (RFC 9113
	// §3.4), and the guard ends the connection before the server can
	// take it for HTTP/1.x.
	preface  int
	notH2    bool
	mustBeH2 bool
	// hdr holds the current frame's header, hdrN bytes of it read; left
	// is how much of its payload is still to go by.
	hdr  [h2FrameHeaderLen]byte
	hdrN int
	left int
	// Of the current frame, when it carries a header block fragment:
	// whether the pad length byte is next, how many priority bytes are
	// still to skip, and how many bytes of padding end it.
	fragment bool
	needPad  bool
	prio     int
	padLen   int
	// Of the current header block: its stream, whether it opens a
	// request (rather than carrying trailers), whether a field makes it
	// malformed, and how many TE fields it has.
	stream  uint32
	request bool
	bad     bool
	te      int
	// maxStream is the highest stream a request was opened on.
	maxStream uint32
	dec       *hpack.Decoder
	// off stops judging header blocks (frames are still followed),
	// after the decoder failed or the frames broke the protocol, which
	// the server answers with a connection error.
	off bool
	// inject is the frame to hand the server next; unscanned, bytes read
	// from the client after the frame it follows.
	inject    []byte
	unscanned []byte

	// progress counts HEADERS frames and DATA frames with a payload,
	// both ways (the server's are counted by Write, on its writer's
	// goroutine); seen is its value at the last control frame.
	progress atomic.Uint64
	seen     uint64
	out      frameHeads
	// tokens is the control-frame budget, as of last; now is the clock.
	tokens float64
	last   time.Time
	now    func() time.Time
	// flooded is set when the budget ran out; ended once the frame that
	// ends the connection went to the server.
	flooded, ended bool
	// onFlood, if set, is called once when the budget runs out.
	onFlood func()
}

const (
	// controlBurst and controlRate bound PING and SETTINGS frames sent
	// without progress: 100 at once, 10 a second after that.
	controlBurst = 100
	controlRate  = 10
)

const (
	h2FrameHeaderLen  = 9
	h2FrameData       = 0x0
	h2FrameSettings   = 0x4
	h2FramePing       = 0x6
	h2FlagAck         = 0x1
	h2FrameHeaders    = 0x1
	h2FrameContinue   = 0x9
	h2FlagEndHeaders  = 0x4
	h2FlagPadded      = 0x8
	h2FlagPriority    = 0x20
	h2ClientPreface   = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	h2FrameWindowUpd  = 0x8
	h2DefaultHPACKMax = 4096
)

// guardHTTP2 wraps a connection that may or, with mustBeH2, must speak
// HTTP/2, before its client preface is read, for a server whose HPACK
// decoder allows a dynamic table of tableSize bytes (0: the protocol's
// default) and strings of at most maxString bytes.
//
// Go's HTTP/2 server serves a guarded connection as it serves cleartext
// HTTP/2 by prior knowledge, even over TLS: it does not see the TLS
// underneath (a net.Conn with a ConnectionState method would make the
// http.Server take it for HTTP/1.1). So the listener sets requests' TLS
// field itself (bound.serveHTTP), and RFC 9113 §9.2's requirements on
// TLS, which the server would enforce, are checkH2TLS's.
func guardHTTP2(conn net.Conn, mustBeH2 bool, tableSize uint32, maxString int) *h2Guard {
	if tableSize == 0 {
		tableSize = h2DefaultHPACKMax
	}
	g := &h2Guard{Conn: conn, mustBeH2: mustBeH2, preface: len(h2ClientPreface), now: time.Now, tokens: controlBurst}
	g.last = g.now()
	g.dec = hpack.NewDecoder(tableSize, g.judge)
	g.dec.SetMaxStringLength(maxString)
	return g
}

// checkH2TLS applies RFC 9113 §9.2 to an HTTP/2 connection over TLS, as
// Go's HTTP/2 server does: TLS 1.2 or later, and in TLS 1.2 an ephemeral
// key exchange with an AEAD cipher (the suites Appendix A of RFC 7540
// does not prohibit). A connection that fails it must get a GOAWAY of
// type INADEQUATE_SECURITY (refuseH2).
func checkH2TLS(cs tls.ConnectionState) error {
	switch {
	case cs.Version < tls.VersionTLS12:
		return fmt.Errorf("HTTP/2 over %s: TLS 1.2 or later is required", tls.VersionName(cs.Version))
	case cs.Version == tls.VersionTLS12 && !slices.Contains(h2TLS12Suites, cs.CipherSuite):
		return fmt.Errorf("HTTP/2 over TLS 1.2 with %s, a cipher suite RFC 9113 §9.2.2 prohibits", tls.CipherSuiteName(cs.CipherSuite))
	}
	return nil
}

var h2TLS12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// refuseH2 ends an HTTP/2 connection that checkH2TLS refused: a GOAWAY
// of type INADEQUATE_SECURITY (last stream 0), then close.
func refuseH2(conn net.Conn) {
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	conn.Write([]byte{0, 0, 8, 0x7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc})
	conn.Close()
}

// Read hands the server the client's bytes, and after a malformed
// request's header block the frame that resets its stream.
func (g *h2Guard) Read(p []byte) (int, error) {
	if len(g.inject) > 0 {
		n := copy(p, g.inject)
		g.inject = g.inject[n:]
		g.ended = g.flooded && len(g.inject) == 0
		return n, nil
	}
	if g.ended {
		// Nothing more of a flooding client reaches the server, which
		// is ending the connection; reads end when it has.
		for {
			if _, err := g.Conn.Read(p); err != nil {
				return 0, err
			}
		}
	}
	var n int
	var err error
	if len(g.unscanned) > 0 {
		n = copy(p, g.unscanned)
		g.unscanned = g.unscanned[n:]
	} else {
		n, err = g.Conn.Read(p)
	}
	cut := g.scan(p[:n])
	if g.notH2 && g.mustBeH2 {
		g.Conn.Close()
		return 0, io.EOF
	}
	if cut >= 0 && g.flooded {
		g.unscanned = nil
		n = cut
	} else if cut >= 0 {
		// Bytes after the malformed block's last frame wait until the
		// reset frame went by; they are scanned then.
		g.unscanned = append(append([]byte(nil), p[cut:n]...), g.unscanned...)
		n = cut
	}
	return n, err
}

// scan follows the frames in b. It returns -1, or the offset just after
// the last frame of a malformed request's header block, having set
// inject to the reset frame.
func (g *h2Guard) scan(b []byte) int {
	for i := 0; i < len(b); {
		if g.notH2 {
			return -1
		}
		if g.preface > 0 {
			if b[i] != h2ClientPreface[len(h2ClientPreface)-g.preface] {
				g.notH2 = true
				return -1
			}
			g.preface--
			i++
			continue
		}
		if g.hdrN < h2FrameHeaderLen {
			n := copy(g.hdr[g.hdrN:], b[i:])
			g.hdrN += n
			i += n
			if g.hdrN < h2FrameHeaderLen {
				continue
			}
			g.startFrame()
		} else {
			n := min(len(b)-i, g.left)
			g.payload(b[i:i+n], g.left)
			g.left -= n
			i += n
		}
		if g.left == 0 && g.endFrame() {
			return i
		}
	}
	return -1
}

func (g *h2Guard) startFrame() {
	h := g.hdr[:]
	g.left = int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	typ, flags, stream := h[3], h[4], binary.BigEndian.Uint32(h[5:])&(1<<31-1)
	g.fragment, g.needPad, g.prio, g.padLen = false, false, 0, 0
	switch {
	case typ == h2FrameHeaders && !g.inBlock():
		g.fragment = true
		g.needPad = flags&h2FlagPadded != 0
		if flags&h2FlagPriority != 0 {
			g.prio = 5
		}
		g.stream, g.bad, g.te = stream, false, 0
		g.request = stream%2 == 1 && stream > g.maxStream
		if g.request {
			g.maxStream = stream
		}
	case typ == h2FrameContinue && g.inBlock() && stream == g.stream:
		g.fragment = true
	case g.inBlock(), typ == h2FrameContinue:
		// A header block interrupted, or a CONTINUATION out of one:
		// the server ends the connection (RFC 9113 §6.10).
		g.off = true
	case (typ == h2FramePing || typ == h2FrameSettings) && flags&h2FlagAck == 0:
		g.control()
	}
	if typ == h2FrameHeaders || typ == h2FrameData && g.left > 0 {
		g.progress.Add(1)
	}
}

// control takes a control frame from the budget, unless requests or
// responses progressed since the last one; past the budget, the
// connection is flooded.
func (g *h2Guard) control() {
	if p := g.progress.Load(); p != g.seen {
		g.seen = p
		return
	}
	now := g.now()
	g.tokens = min(controlBurst, g.tokens+now.Sub(g.last).Seconds()*controlRate)
	g.last = now
	if g.tokens >= 1 {
		g.tokens--
		return
	}
	if !g.flooded {
		g.flooded = true
		if g.onFlood != nil {
			g.onFlood()
		}
	}
}

// Write sends the server's bytes, counting its HEADERS and DATA frames
// as progress.
func (g *h2Guard) Write(p []byte) (int, error) {
	g.out.scan(p, func(typ byte, length int) {
		if typ == h2FrameHeaders || typ == h2FrameData && length > 0 {
			g.progress.Add(1)
		}
	})
	return g.Conn.Write(p)
}

// frameHeads follows the frame boundaries of a byte stream that starts
// with a frame.
type frameHeads struct {
	hdr  [h2FrameHeaderLen]byte
	n    int
	skip int // payload bytes still to skip
}

// scan calls frame with each frame header b completes.
func (f *frameHeads) scan(b []byte, frame func(typ byte, length int)) {
	for len(b) > 0 {
		if f.skip > 0 {
			n := min(f.skip, len(b))
			f.skip -= n
			b = b[n:]
			continue
		}
		n := copy(f.hdr[f.n:], b)
		f.n += n
		b = b[n:]
		if f.n == h2FrameHeaderLen {
			f.n = 0
			f.skip = int(f.hdr[0])<<16 | int(f.hdr[1])<<8 | int(f.hdr[2])
			frame(f.hdr[3], f.skip)
		}
	}
}

// inBlock reports whether a header block is open: its last frame so far
// had no END_HEADERS.
func (g *h2Guard) inBlock() bool { return g.stream != 0 }

// payload takes the next bytes of the current frame's payload; left
// counts the payload's bytes from p's first on.
func (g *h2Guard) payload(p []byte, left int) {
	if !g.fragment || g.off {
		return
	}
	for len(p) > 0 {
		switch {
		case g.needPad:
			g.needPad, g.padLen = false, int(p[0])
			p, left = p[1:], left-1
			if g.padLen > left-g.prio {
				g.off = true // the server ends the connection
				return
			}
		case g.prio > 0:
			n := min(g.prio, len(p))
			g.prio -= n
			p, left = p[n:], left-n
		default:
			if n := min(len(p), left-g.padLen); n > 0 {
				if _, err := g.dec.Write(p[:n]); err != nil {
					g.off = true
				}
			}
			return
		}
	}
}

// endFrame ends the current frame; it reports whether a malformed
// request's header block ended with it, the reset frame then set to
// follow.
func (g *h2Guard) endFrame() bool {
	g.hdrN = 0
	if g.flooded {
		g.inject = []byte{0, 0, 4, h2FrameWindowUpd, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		return true
	}
	if !g.fragment || g.hdr[4]&h2FlagEndHeaders == 0 {
		return false
	}
	stream, malformed := g.stream, g.request && g.bad
	g.stream = 0
	if g.off {
		return false
	}
	if err := g.dec.Close(); err != nil {
		g.off = true
		return false
	}
	if !malformed {
		return false
	}
	g.inject = binary.BigEndian.AppendUint32([]byte{0, 0, 4, h2FrameWindowUpd, 0}, stream)
	g.inject = append(g.inject, 0, 0, 0, 0)
	return true
}

// judge sees each field of a header block, as the server's decoder will.
func (g *h2Guard) judge(f hpack.HeaderField) {
	if !g.request {
		return
	}
	switch f.Name {
	case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
		g.bad = true
	case "te":
		// As net/http's check: one TE field, "trailers" or empty.
		g.te++
		if g.te > 1 || (f.Value != "trailers" && f.Value != "") {
			g.bad = true
		}
	}
}
