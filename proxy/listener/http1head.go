package listener

import (
	"bufio"
	"bytes"
	"errors"

	"golang.org/x/net/http/httpguts"
)

// The lean HTTP/1.1 server (http1server.go) parses requests with
// http.ReadRequest, net/http's own parser, so that it frames requests
// exactly as net/http's server does; the common bodyless request is
// parsed by a fast path that makes exactly what http.ReadRequest would
// (http1fast.go). Two of the server's rules need the
// header block as the client sent it, which http.ReadRequest does not
// keep: it drops Content-Length when Transfer-Encoding is present, and
// the Host field when the target is in absolute form. So before parsing,
// the server scans the header block's raw lines (headScan):
//
//   - A request with both Content-Length and Transfer-Encoding is refused
//     (400, connection closed), as Envoy refuses it by default: a peer
//     that framed it by Content-Length would read its body as the next
//     request (RELIABILITY #12). net/http serves it, chunked.
//   - Host fields are counted, and validated when the request line names
//     the authority, as net/http's server validates them.
//
// The scan reads the block in place from the connection's read buffer
// (no copy) when it fits, which is every request of normal size. A block
// larger than the buffer is copied out line by line, up to the read
// bound, and put back in front of the stream (connSource) for
// http.ReadRequest to parse; the bound's 431 is answered from there.
// The scan splits lines as net/textproto does: at LF, with an optional
// CR before it; a line starting with a space or tab continues the
// previous field (obs-fold).

// headScan is what the scan learned of one request's header block.
type headScan struct {
	contentLength    bool // a Content-Length field line
	transferEncoding bool // a Transfer-Encoding field line
	hosts            int  // Host field lines
	badHost          bool // a Host value net/http's server would refuse
	// size is the length of the header block, its final empty line
	// included, once complete.
	size int

	lines        int
	hostInTarget bool // the target names the authority: the Host field is not req.Host
	inHost       bool // the last field is a Host field, its value in hostValue
	hostValue    []byte
	done         bool
}

// errHeaderTooLarge is a header block over the server's read bound.
var errHeaderTooLarge = errors.New("http1: request header block too large")

// reset prepares s for the next block, keeping its buffer.
func (s *headScan) reset() { *s = headScan{hostValue: s.hostValue[:0]} }

// line classifies one complete line of the block: without its LF, with
// the CR before it if there was one.
func (s *headScan) line(l []byte) {
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	s.lines++
	if s.lines == 1 {
		s.hostInTarget = targetHasAuthority(l)
		return
	}
	if len(l) > 0 && (l[0] == ' ' || l[0] == '\t') {
		// obs-fold: net/textproto joins the line, trimmed, to the
		// previous value with a space.
		if s.inHost {
			s.hostValue = append(append(s.hostValue, ' '), trimOWS(l)...)
		}
		return
	}
	s.endHost()
	if len(l) == 0 {
		s.done = true
		return
	}
	name, value, ok := bytes.Cut(l, []byte{':'})
	if !ok {
		return // http.ReadRequest refuses the line
	}
	switch {
	case equalFoldASCII(name, "content-length"):
		s.contentLength = true
	case equalFoldASCII(name, "transfer-encoding"):
		s.transferEncoding = true
	case equalFoldASCII(name, "host"):
		s.hosts++
		if s.hostInTarget {
			s.inHost = true
			s.hostValue = append(s.hostValue[:0], trimOWS(value)...)
		}
	}
}

// endHost validates a Host field the request line makes no use of, as
// net/http's server validates it, once its value is complete.
func (s *headScan) endHost() {
	if !s.inHost {
		return
	}
	s.inHost = false
	if !httpguts.ValidHostHeader(string(trimOWS(s.hostValue))) {
		s.badHost = true
	}
}

// targetHasAuthority reports whether a request line's target is not in
// origin form ("/path") or asterisk form ("*"): then http.ReadRequest
// takes the request's Host from the target, and the Host field must be
// validated from the raw block.
func targetHasAuthority(requestLine []byte) bool {
	_, rest, ok := bytes.Cut(requestLine, []byte{' '})
	if !ok || len(rest) == 0 {
		return false
	}
	return rest[0] != '/' && rest[0] != '*'
}

func equalFoldASCII(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// trimOWS trims spaces and tabs, as net/textproto trims values.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// scanHead scans the header block at the start of br, leaving it unread.
// A read error is returned as is, with the block incomplete: the caller
// lets http.ReadRequest read the same bytes and meet the same error, so
// that it is answered as net/http answers it.
func (hc *h1Conn) scanHead() error {
	s := &hc.scan
	s.reset()
	br := hc.br
	lineStart, searchFrom := 0, 0
	for {
		buf, _ := br.Peek(br.Buffered())
		for {
			i := bytes.IndexByte(buf[searchFrom:], '\n')
			if i < 0 {
				searchFrom = len(buf)
				break
			}
			end := searchFrom + i
			s.line(buf[lineStart:end])
			lineStart, searchFrom = end+1, end+1
			if s.done {
				s.size = lineStart
				if s.size > hc.s.headerReadBound() {
					return errHeaderTooLarge
				}
				return nil
			}
		}
		if len(buf) == br.Size() {
			return hc.scanLargeHead()
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return err
		}
	}
}

// scanLargeHead scans a header block larger than the read buffer: it
// reads the block out of br, up to the read bound, and puts it back in
// front of the stream.
func (hc *h1Conn) scanLargeHead() error {
	s := &hc.scan
	s.reset()
	limit := hc.s.headerReadBound()
	var block []byte
	lineStart := 0
	var err error
	for !s.done {
		var chunk []byte
		chunk, err = hc.br.ReadSlice('\n')
		block = append(block, chunk...)
		if len(block) > limit {
			return errHeaderTooLarge // the connection is closed: nothing to put back
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			break
		}
		s.line(block[lineStart : len(block)-1])
		lineStart = len(block)
	}
	s.size = len(block)
	hc.unread(block)
	return err
}

// unread puts b back in front of what is left to read.
func (hc *h1Conn) unread(b []byte) {
	buffered, _ := hc.br.Peek(hc.br.Buffered())
	b = append(b, buffered...)
	hc.src.pending = append(b, hc.src.pending...)
	hc.br.Reset(&hc.src)
}

// connSource is what a connection's read buffer reads from: bytes put
// back in front of the stream first (a large header block, a byte the
// disconnect watch read), then the connection. A failed read from the
// connection means the client is gone or too slow: it cancels the
// connection's context, as net/http's server cancels a request's.
type connSource struct {
	hc      *h1Conn
	pending []byte
}

func (s *connSource) Read(p []byte) (int, error) {
	if len(s.pending) > 0 {
		n := copy(p, s.pending)
		s.pending = s.pending[n:]
		if len(s.pending) == 0 {
			s.pending = nil
		}
		return n, nil
	}
	n, err := s.hc.conn.Read(p)
	if err != nil {
		s.hc.cancel(errClientGone)
	}
	return n, err
}

// errClientGone is the cause of a connection context cancelled because
// reading from (or writing to) the client failed.
var errClientGone = errors.New("http1: client connection ended")
