package router

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/weft-mesh/weft/proxy/internal/ready"
	"github.com/weft-mesh/weft/proxy/internal/relay"
	"github.com/weft-mesh/weft/proxy/localreply"
)

// forward sends r upstream through the attempt loop and copies the
// response — headers once, the body through a pooled buffer, trailers —
// or a local reply to w. It replaces httputil.ReverseProxy with what a
// mesh hop needs and nothing that costs a request copy or a goroutine:
// the upstream header is built once, without hop-by-hop and client
// forwarding headers; each attempt is one shallow copy of r; 1xx
// responses are relayed while the attempts run.
func (ex *exchange) forward(w http.ResponseWriter, r *http.Request) {
	upType, err := ex.prepareUpstream(r)
	if err != nil {
		ex.fail(w, r, err)
		return
	}
	ex.ctx = ex.info.watch(ex.ctx, w)
	resp, err := ex.roundTrip(r)
	ex.info.stop()
	if err != nil {
		ex.fail(w, r, err)
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		ex.decorate(resp.Header)
		ex.upgrade(w, r, resp, upType)
		return
	}
	removeHopByHop(resp.Header)
	ex.decorate(resp.Header)
	ex.writeResponse(w, r, resp)
}

// prepareUpstream prepares what every attempt sends: the header without
// hop-by-hop and client forwarding headers (plus Te: trailers and the
// upgrade, when asked for) and the URL with unparsable query parameters
// re-encoded. It returns the requested upgrade protocol, if any.
func (ex *exchange) prepareUpstream(r *http.Request) (string, error) {
	upType := upgradeType(r.Header)
	if !isPrint(upType) {
		return "", &localError{reason: localreply.UpstreamReset, err: fmt.Errorf("client tried to switch to invalid protocol %q", upType)}
	}
	ex.header = upstreamHeader(r.Header, upType)
	ex.url = *r.URL
	ex.url.RawQuery = cleanQuery(r.URL.RawQuery)
	return upType, nil
}

// fail answers a request no attempt could complete.
func (ex *exchange) fail(w http.ResponseWriter, r *http.Request, err error) {
	if ex.downstreamGone() {
		return
	}
	reason := localreply.UpstreamReset
	var le *localError
	if errors.As(err, &le) {
		reason = le.reason
	}
	ex.rt.log.Debug("upstream request failed", "cluster", ex.clusterName, "upstream_cluster", ex.upstreamName(), "reason", reason, "attempts", ex.attempts, "error", err)
	ex.reply(w, r, reason)
}

// writeResponse copies resp to w. A stream — no Content-Length (gRPC,
// chunked) or text/event-stream — is flushed after every write; a
// response of known length goes out as the buffer fills or the handler
// returns. A failed copy aborts the downstream response
// (http.ErrAbortHandler), as the client must not take a truncated body
// for a whole one.
func (ex *exchange) writeResponse(w http.ResponseWriter, r *http.Request, resp *http.Response) {
	h := w.Header()
	for k, vv := range resp.Header {
		if prev, ok := h[k]; ok {
			h[k] = append(prev, vv...)
		} else {
			h[k] = vv
		}
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(resp.StatusCode)
	var flush func() error
	if resp.ContentLength == -1 || isEventStream(resp.Header["Content-Type"]) {
		flush = http.NewResponseController(w).Flush
	}
	if err := ex.copyBody(w, resp.Body, flush); err != nil {
		resp.Body.Close()
		ex.observeTimeout(ex.last.ctx, ex.attempts)
		ex.rt.log.Debug("response copy failed", "cluster", ex.clusterName, "error", err)
		if r.Context().Value(http.ServerContextKey) != nil {
			panic(http.ErrAbortHandler)
		}
		return
	}
	resp.Body.Close() // ends the attempt and fills resp.Trailer
	copyTrailers(w, resp.Trailer, announced, r.ProtoMajor == 2)
}

// copyBody copies src to dst through a pooled buffer, calling flush (if
// not nil) after every write that leaves src with nothing more to give
// at once: when src says (ready.Reporter) that more of it, or its end,
// has arrived, the next write goes out with this one. A read error other
// than io.EOF, or a write error, is returned.
func (ex *exchange) copyBody(dst io.Writer, src io.Reader, flush func() error) error {
	bp := relay.GetBuffer()
	defer relay.PutBuffer(bp)
	buf := *bp
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
			if flush != nil && rerr == nil && !moreReady(src) {
				if ferr := flush(); ferr != nil {
					return ferr
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// moreReady reports whether src said (ready.Reporter) that more of it,
// or its end, has arrived.
func moreReady(src io.Reader) bool {
	n, end := ready.Of(src)
	return n > 0 || end
}

// copyTrailers sends the upstream's trailers: announced ones as they
// are, others with http.TrailerPrefix. Over HTTP/1.1 a response with
// trailers is flushed first, so that it is chunked even when its body is
// short; over HTTP/2 the trailers go out with what is left of the
// response when the handler returns.
func copyTrailers(w http.ResponseWriter, trailer http.Header, announced int, h2 bool) {
	if len(trailer) == 0 {
		return
	}
	if !h2 {
		http.NewResponseController(w).Flush()
	}
	h := w.Header()
	for k, vv := range trailer {
		if len(trailer) != announced {
			k = trailerKey(k)
		}
		if len(h[k]) == 0 {
			// The upstream's response is done with its trailers: they
			// are handed on, not copied.
			h[k] = vv
			continue
		}
		h[k] = append(h[k], vv...)
	}
}

// trailerKey is k with http.TrailerPrefix, without allocating for gRPC's
// trailers.
func trailerKey(k string) string {
	switch k {
	case "Grpc-Status":
		return http.TrailerPrefix + "Grpc-Status"
	case "Grpc-Message":
		return http.TrailerPrefix + "Grpc-Message"
	case "Grpc-Status-Details-Bin":
		return http.TrailerPrefix + "Grpc-Status-Details-Bin"
	}
	return http.TrailerPrefix + k
}

// isEventStream reports whether a Content-Type is text/event-stream,
// with or without parameters.
func isEventStream(ct []string) bool {
	if len(ct) == 0 {
		return false
	}
	const es = "text/event-stream"
	v := strings.TrimLeft(ct[0], " \t")
	if len(v) < len(es) || !strings.EqualFold(v[:len(es)], es) {
		return false
	}
	rest := strings.TrimLeft(v[len(es):], " \t")
	return rest == "" || rest[0] == ';'
}
