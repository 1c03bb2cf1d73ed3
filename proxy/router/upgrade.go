package router

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/weft-mesh/weft/proxy/internal/relay"
	"github.com/weft-mesh/weft/proxy/localreply"
)

// upgrade completes a protocol switch the upstream accepted (101): it
// hijacks the downstream connection, writes the 101 and copies bytes
// both ways (relay.Pipe) until both directions end, either fails, or the
// exchange is cancelled.
func (ex *exchange) upgrade(w http.ResponseWriter, r *http.Request, resp *http.Response, reqType string) {
	defer resp.Body.Close()
	resType := upgradeType(resp.Header)
	switch {
	case !isPrint(resType):
		ex.fail(w, r, &localError{reason: localreply.UpstreamReset, err: fmt.Errorf("upstream tried to switch to invalid protocol %q", resType)})
		return
	case !strings.EqualFold(reqType, resType):
		ex.fail(w, r, &localError{reason: localreply.UpstreamReset, err: fmt.Errorf("upstream switched to protocol %q when %q was requested", resType, reqType)})
		return
	}
	back, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		ex.fail(w, r, &localError{reason: localreply.UpstreamReset, err: errors.New("101 response with a body that cannot be written")})
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		ex.fail(w, r, &localError{reason: localreply.UpstreamReset, err: fmt.Errorf("hijack for protocol switch: %w", err)})
		return
	}
	defer conn.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the exchange's end (client gone, timeout) closes the upstream side
		select {
		case <-ex.ctx.Done():
		case <-stop:
		}
		back.Close()
	}()
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = append(h[k], vv...)
	}
	resp.Header, resp.Body = h, nil // write the status line and headers only
	if err := resp.Write(brw); err != nil {
		ex.rt.log.Debug("protocol switch: write response", "cluster", ex.clusterName, "error", err)
		return
	}
	if err := brw.Flush(); err != nil {
		ex.rt.log.Debug("protocol switch: flush response", "cluster", ex.clusterName, "error", err)
		return
	}
	relay.Pipe(conn, back)
}
