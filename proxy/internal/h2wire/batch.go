package h2wire

import "bufio"

// frameHeaderLen is the length of an HTTP/2 frame header (RFC 9113 §4.1).
const frameHeaderLen = 9

// NextFrameBuffered reports whether br already holds the whole of the
// next frame, so that reading it will not block. A reader handles every
// frame that arrived together before it wakes the goroutines they
// concern — a request's handler, a response's caller — so that they see
// a message and its end at once (a request's HEADERS, DATA and
// END_STREAM, a response's trailers) and can write what they pass on in
// one go, as an event loop does; it never waits for bytes to do so.
func NextFrameBuffered(br *bufio.Reader) bool {
	n := br.Buffered()
	if n < frameHeaderLen {
		return false
	}
	h, err := br.Peek(frameHeaderLen)
	if err != nil {
		return false
	}
	length := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	return n >= frameHeaderLen+length
}
