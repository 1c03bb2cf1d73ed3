package http1client

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// readResponse reads the response to req from br as http.ReadResponse
// does. The common response — HTTP/1.1, a final status, a head already
// whole in br's buffer, plain fields, one Content-Length (or none, for
// 204 and 304) — is parsed here from the buffered bytes, without
// textproto's line reader, per-line copies and framing maps; any other
// (1xx, chunked or close-delimited bodies, trailers, folded or odd
// fields, Pragma, a HEAD request, a head still arriving) goes to
// http.ReadResponse itself. Both yield the same response and leave br at
// the same byte (TestReadResponseMatchesNetHTTP, FuzzReadResponse).
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	if resp, ok := readPlainResponse(br, req); ok {
		return resp, nil
	}
	return http.ReadResponse(br, req)
}

// readPlainResponse parses the response at the start of br when it is a
// common one (readResponse); ok is false, with nothing consumed, when it
// is not, or when reading failed (http.ReadResponse then reports it).
func readPlainResponse(br *bufio.Reader, req *http.Request) (resp *http.Response, ok bool) {
	if req.Method == http.MethodHead {
		return nil, false
	}
	if _, err := br.Peek(1); err != nil {
		return nil, false
	}
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, false
	}
	head := buf[:end+2] // every line with its CRLF
	line, rest := cutCRLF(head)
	code, ok := plainStatusLine(line)
	if !ok {
		return nil, false
	}
	status, h, ok := plainFields(line[len("HTTP/1.1 "):], rest)
	if !ok {
		return nil, false
	}
	length, ok := plainLength(code, h["Content-Length"])
	if !ok {
		return nil, false
	}
	resp = &http.Response{
		Status: status, StatusCode: code, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: length, Request: req, Body: http.NoBody,
	}
	// As http.ReadResponse: Connection: close is consumed into Close.
	if conn, ok := h["Connection"]; ok && httpguts.HeaderValuesContainsToken(conn, "close") {
		resp.Close = true
		delete(h, "Connection")
	}
	br.Discard(end + 4)
	if length > 0 {
		resp.Body = &lengthBody{r: br, left: length}
	}
	return resp, true
}

// plainStatusLine parses "HTTP/1.1 DDD reason" with a final status (200
// to 999); the Status http.ReadResponse gives is what follows the
// protocol ("DDD reason").
func plainStatusLine(line []byte) (code int, ok bool) {
	const proto = "HTTP/1.1 "
	if len(line) < len(proto)+3 || string(line[:len(proto)]) != proto {
		return 0, false
	}
	d := line[len(proto) : len(proto)+3]
	if d[0] < '2' || d[0] > '9' || d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9' {
		return 0, false
	}
	if len(line) > len(proto)+3 && line[len(proto)+3] != ' ' {
		return 0, false
	}
	for _, c := range line {
		if c < ' ' && c != '\t' || c == 0x7f {
			return 0, false
		}
	}
	return int(d[0]-'0')*100 + int(d[1]-'0')*10 + int(d[2]-'0'), true
}

// maxPlainFields bounds the fields of a response readPlainResponse
// parses; one with more goes to http.ReadResponse.
const maxPlainFields = 32

// plainFields parses field lines, each ending in CRLF, into a header as
// textproto does; ok is false for anything but plain "Name: value"
// lines (folding, bare CR or LF, bytes textproto refuses), for more than
// maxPlainFields, and for the fields whose handling is
// http.ReadResponse's alone: Transfer-Encoding, Trailer and Pragma. The
// status, then every value, are copied into one string, and the values'
// slices share one array, so that the header costs a handful of
// allocations whatever its size.
func plainFields(status []byte, lines []byte) (string, http.Header, bool) {
	type field struct {
		key   string
		value []byte // trimmed, in the reader's buffer
	}
	var fields [maxPlainFields]field
	var key [64]byte
	n, size := 0, len(status)
	for rest := lines; len(rest) > 0; n++ {
		var line []byte
		line, rest = cutCRLF(rest)
		colon := bytes.IndexByte(line, ':')
		if n == maxPlainFields || colon <= 0 || colon > len(key) {
			return "", nil, false
		}
		name, ok := canonicalToken(key[:0], line[:colon])
		if !ok {
			return "", nil, false
		}
		value := line[colon+1:]
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return "", nil, false // CR, LF and other controls
			}
		}
		k := commonKey(name)
		switch k {
		case "Transfer-Encoding", "Trailer", "Pragma":
			return "", nil, false
		case "":
			k = string(name)
		}
		fields[n] = field{k, bytes.Trim(value, " \t")}
		size += len(fields[n].value)
	}
	var b strings.Builder
	b.Grow(size)
	b.Write(status)
	for _, f := range fields[:n] {
		b.Write(f.value)
	}
	all := b.String()
	h := make(http.Header, n)
	strs := make([]string, n)
	at := len(status)
	for i, f := range fields[:n] {
		strs[i] = all[at : at+len(f.value)]
		at += len(f.value)
		if vv := h[f.key]; vv != nil {
			h[f.key] = append(vv, strs[i])
		} else {
			h[f.key] = strs[i : i+1 : i+1]
		}
	}
	return all[:len(status)], h, true
}

// plainLength is the body length of a response of code with those
// Content-Length values, when it is plain: 0 for 204 and 304 (whose
// Content-Length, if any, must still be one number, as net/http checks
// it), else the one value given; ok is false otherwise (none, several,
// not a number).
func plainLength(code int, values []string) (int64, bool) {
	bodyless := code == http.StatusNoContent || code == http.StatusNotModified
	if bodyless && len(values) == 0 {
		return 0, true
	}
	if len(values) != 1 || values[0] == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(values[0], 10, 63)
	if bodyless {
		n = 0
	}
	return int64(n), err == nil
}

// cutCRLF cuts b after its first CRLF, which every line of a head
// checked by readPlainResponse ends with.
func cutCRLF(b []byte) (line, rest []byte) {
	i := bytes.Index(b, []byte("\r\n"))
	return b[:i], b[i+2:]
}

// canonicalToken appends to dst name in the canonical form textproto
// gives it ("content-type" → "Content-Type"); ok is false when name is
// not a token.
func canonicalToken(dst, name []byte) ([]byte, bool) {
	upper := true
	for _, c := range name {
		if !httpguts.IsTokenRune(rune(c)) {
			return nil, false
		}
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
		upper = c == '-'
	}
	return dst, true
}

// commonKey returns the canonical key name as a constant string when it
// is a common response field, so that parsing it allocates nothing; ""
// otherwise.
func commonKey(name []byte) string {
	return commonKeys[string(name)]
}

var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept-Ranges", "Age", "Cache-Control", "Connection", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Type", "Date", "Etag", "Expires", "Keep-Alive", "Last-Modified",
		"Location", "Pragma", "Server", "Set-Cookie", "Strict-Transport-Security", "Trailer",
		"Transfer-Encoding", "Vary", "Via", "X-Content-Type-Options", "X-Request-Id",
		"Access-Control-Allow-Origin", "Grpc-Status", "Grpc-Message", "Traceparent",
	} {
		m[k] = k
	}
	return m
}()

// lengthBody is a body of a known length read from the connection's
// reader: io.EOF with its last bytes, io.ErrUnexpectedEOF when the
// connection ends before them, as net/http's body of a fixed length.
type lengthBody struct {
	r      *bufio.Reader
	left   int64
	closed bool
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	switch {
	case b.left == 0:
		return n, io.EOF
	case err == io.EOF:
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *lengthBody) Close() error {
	b.closed = true
	return nil
}
