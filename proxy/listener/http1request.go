package listener

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"time"

	"golang.org/x/net/http/httpguts"
)

// readRequest reads and validates a request, as net/http's server does
// (server.go, conn.readRequest), and refuses ambiguous framing.
func (hc *h1Conn) readRequest() (*http.Request, error) {
	if hc.lastMethod == http.MethodPost {
		// RFC 9112 §2.2: tolerate the CRLF old clients send after a body.
		peek, _ := hc.br.Peek(4)
		hc.br.Discard(numLeadingCRorLF(peek))
	}
	scanErr := hc.scanHead()
	if errors.Is(scanErr, errHeaderTooLarge) {
		return nil, scanErr
	}
	if scanErr == nil && hc.scan.contentLength && hc.scan.transferEncoding {
		return nil, errAmbiguousLength
	}
	p := hc.parseFast(scanErr)
	if p == nil {
		// On a read error the parse meets it again, on the same bytes,
		// and fails as net/http's server fails.
		var err error
		if p, err = http.ReadRequest(hc.br); err != nil {
			return nil, err
		}
	}
	if scanErr != nil {
		return nil, scanErr // never serve a request whose block was not scanned
	}
	hc.conn.SetReadDeadline(time.Time{}) // bodies are read without a deadline
	if !http1ServerSupportsRequest(p) {
		return nil, statusError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	}
	hc.lastMethod = p.Method
	if err := checkHost(p, &hc.scan); err != nil {
		return nil, err
	}
	for k, vv := range p.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, statusError{http.StatusBadRequest, "invalid header name"}
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, statusError{http.StatusBadRequest, "invalid header value"}
			}
		}
	}
	return hc.adopt(p), nil
}

// parseFast parses the request whose header block the scan found, when
// the block is whole in the read buffer and the fast path takes it
// (http1fast.go); nil otherwise, reading nothing.
func (hc *h1Conn) parseFast(scanErr error) *http.Request {
	if scanErr != nil {
		return nil
	}
	block, err := hc.br.Peek(hc.scan.size)
	if err != nil || !parseFastRequest(block, &hc.fast) {
		return nil
	}
	hc.br.Discard(hc.scan.size)
	return &hc.fast
}

// errAmbiguousLength is a request with both Content-Length and
// Transfer-Encoding.
var errAmbiguousLength = statusError{http.StatusBadRequest, "both Content-Length and Transfer-Encoding"}

// statusError is a refusal with its status and reason, written as
// net/http's server writes its own.
type statusError struct {
	code int
	text string
}

func (e statusError) Error() string { return http.StatusText(e.code) + ": " + e.text }

// http1ServerSupportsRequest reports whether the request's version is
// served: HTTP/1.x, and the HTTP/2 preface as a request (net/http's rule).
func http1ServerSupportsRequest(r *http.Request) bool {
	if r.ProtoMajor == 1 {
		return true
	}
	return r.ProtoMajor == 2 && r.ProtoMinor == 0 && r.Method == "PRI" && r.RequestURI == "*"
}

// isH2Upgrade reports whether r is the HTTP/2 preface read as a request.
func isH2Upgrade(r *http.Request) bool {
	return r.Method == "PRI" && len(r.Header) == 0 && r.URL.Path == "*" && r.Proto == "HTTP/2.0"
}

// checkHost applies net/http's server's Host rules: HTTP/1.1 requires
// one (except CONNECT and the HTTP/2 preface), and a Host must be valid.
// More than one was refused by http.ReadRequest.
func checkHost(r *http.Request, s *headScan) error {
	if r.ProtoAtLeast(1, 1) && s.hosts == 0 && !isH2Upgrade(r) && r.Method != http.MethodConnect {
		return statusError{http.StatusBadRequest, "missing required Host header"}
	}
	if s.hosts == 1 && (s.badHost || !s.hostInTarget && !httpguts.ValidHostHeader(r.Host)) {
		return statusError{http.StatusBadRequest, "malformed Host header"}
	}
	return nil
}

// adopt copies the fields of p, as http.ReadRequest parsed them, into the
// connection's request, whose context was set once; http1_test.go checks
// that every exported field of http.Request is copied.
func (hc *h1Conn) adopt(p *http.Request) *http.Request {
	r := hc.req
	r.Method, r.URL, r.RequestURI = p.Method, p.URL, p.RequestURI
	r.Proto, r.ProtoMajor, r.ProtoMinor = p.Proto, p.ProtoMajor, p.ProtoMinor
	r.Header, r.Body, r.GetBody = p.Header, p.Body, p.GetBody
	r.ContentLength, r.TransferEncoding, r.Close = p.ContentLength, p.TransferEncoding, p.Close
	r.Host, r.Trailer = p.Host, p.Trailer
	r.Form, r.PostForm, r.MultipartForm = p.Form, p.PostForm, p.MultipartForm
	r.Cancel, r.Response, r.Pattern = p.Cancel, p.Response, p.Pattern
	r.RemoteAddr, r.TLS = hc.remoteAddr, hc.tlsState
	return r
}

// refuse answers a request that could not be read, as net/http's server
// answers it, and lets the connection close.
func (hc *h1Conn) refuse(err error) {
	const errorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	var se statusError
	switch {
	case errors.Is(err, errHeaderTooLarge):
		const publicErr = "431 Request Header Fields Too Large"
		hc.bw.WriteString("HTTP/1.1 " + publicErr + errorHeaders + publicErr)
	case isUnsupportedTEError(err):
		fmt.Fprintf(hc.bw, "HTTP/1.1 %d %s%sUnsupported transfer encoding", http.StatusNotImplemented, http.StatusText(http.StatusNotImplemented), errorHeaders)
	case isCommonNetReadError(err):
		return
	case errors.As(err, &se):
		fmt.Fprintf(hc.bw, "HTTP/1.1 %d %s: %s%s%d %s: %s", se.code, http.StatusText(se.code), se.text, errorHeaders, se.code, http.StatusText(se.code), se.text)
	default:
		const publicErr = "400 Bad Request"
		hc.bw.WriteString("HTTP/1.1 " + publicErr + errorHeaders + publicErr)
	}
	hc.s.log.Debug("http1: request refused", "remote", hc.remoteAddr, "error", err)
	hc.linger()
}

// linger sends what is buffered, half-closes the connection and reads
// what the client still sends for a while, so that the close does not
// reset the last response away before the client read it.
func (hc *h1Conn) linger() {
	hc.bw.Flush()
	if cw, ok := hc.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	hc.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.Copy(io.Discard, hc.conn)
}

// isUnsupportedTEError reports whether http.ReadRequest refused a
// transfer coding it does not implement; its error type is unexported.
func isUnsupportedTEError(err error) bool {
	return reflect.TypeOf(err).String() == "*http.unsupportedTEError"
}

// isCommonNetReadError reports errors net/http's server does not answer:
// the client closed, was too slow, or the read failed.
func isCommonNetReadError(err error) bool {
	if err == io.EOF {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "read"
}

func numLeadingCRorLF(v []byte) (n int) {
	for _, b := range v {
		if b != '\r' && b != '\n' {
			break
		}
		n++
	}
	return n
}
