package router

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/internal/ready"
	"github.com/weft-mesh/weft/proxy/localreply"
	"github.com/weft-mesh/weft/proxy/outlier"
	"github.com/weft-mesh/weft/proxy/retry"
)

// try sends one attempt of r to the picked host: a shallow copy of r
// with the exchange's upstream header and URL. The response it returns
// has a body whose Close ends the attempt; an error ends it at once.
func (ex *exchange) try(r *http.Request, att cluster.Attempt) result {
	ex.attempts++
	done := ex.newAttempt(att)
	ex.last = done
	req := r.WithContext(done.ctx)
	u := &ex.url // the first attempt's; later ones copy it, as an earlier one may still read it
	if ex.attempts > 1 {
		c := ex.url
		u = &c
	}
	u.Scheme, u.Host = att.Cluster.Scheme(), att.Host.Address()
	req.URL, req.Header, req.RequestURI, req.Close = u, ex.header, "", false
	ex.setAttemptHeaders(req)
	switch {
	case ex.body != nil:
		req.Body, req.GetBody = ex.body.reader(), ex.body.getBody
	case r.ContentLength == 0:
		req.Body = nil // lets the transport retry a request on a stale connection
	default:
		ex.sent = &noCloseBody{r: r.Body}
		req.Body = ex.sent
	}
	var rtp http.RoundTripper = att.Cluster.Transport(ex.downH2)
	if wrap := ex.rt.hooks.Attempt; wrap != nil {
		rtp = wrap(rtp)
	}
	resp, err := rtp.RoundTrip(req)
	if err != nil {
		failure, reason, res := ex.classify(err, done.ctx, att.Cluster)
		ejected := att.Report(res)
		ex.attemptEnded(att, Event{Status: 0, GRPCStatus: -1, Failure: reason}, ejected)
		ex.observeTimeout(done.ctx, ex.attempts)
		done.end(!done.shared)
		return result{err: &localError{reason: reason, err: err}, outcome: retry.Outcome{Failure: failure, GRPCStatus: -1}}
	}
	grpc := grpcStatusOf(resp.Header)
	ejected := att.Report(outlierResult(resp.StatusCode, grpc))
	ex.attemptEnded(att, Event{Status: resp.StatusCode, GRPCStatus: grpc}, ejected)
	resp.Body = done.wrapBody(resp, ex.idle)
	return result{resp: resp, outcome: retry.Outcome{Status: resp.StatusCode, GRPCStatus: grpc}}
}

// attemptEnded reports the end of the current attempt att, whose result
// e holds, and the breaker it opened, if it did.
func (ex *exchange) attemptEnded(att cluster.Attempt, e Event, ejected bool) {
	if ex.rt.hooks.Observe == nil {
		return
	}
	e.Kind, e.Attempt, e.Host, e.Cluster = AttemptEnded, ex.attempts, att.Host, att.Cluster
	ex.observe(e)
	if ejected {
		ex.observe(Event{Kind: BreakerOpened, Attempt: ex.attempts, Host: att.Host})
	}
}

// setAttemptHeaders sets the per-attempt headers: the remaining deadline
// in grpc-timeout and x-envoy-attempt-count. The first attempt owns
// the exchange's upstream header; retries get a copy, as an earlier
// attempt's transport may still hold it.
func (ex *exchange) setAttemptHeaders(req *http.Request) {
	grpcDeadline := ex.grpc && (!ex.deadline.IsZero() || ex.perTryTimeout() > 0)
	if !grpcDeadline && !ex.action.AttemptCount {
		return
	}
	if ex.attempts > 1 {
		req.Header = ex.header.Clone()
	}
	if grpcDeadline {
		remaining := ex.perTryTimeout()
		if !ex.deadline.IsZero() {
			if left := time.Until(ex.deadline); remaining == 0 || left < remaining {
				remaining = left
			}
		}
		req.Header.Set("Grpc-Timeout", encodeGRPCTimeout(remaining))
	}
	if ex.action.AttemptCount {
		req.Header.Set("X-Envoy-Attempt-Count", strconv.Itoa(ex.attempts))
	}
}

func (ex *exchange) perTryTimeout() time.Duration {
	if p := ex.retry; p != nil {
		return p.PerTryTimeout
	}
	return 0
}

// classify maps an attempt's error to its retry outcome, the local reply
// reason and what it says about the host. A connect failure's reason is
// the one c, the attempt's cluster, gives it (peer_unreachable for a
// peer's service, say).
func (ex *exchange) classify(err error, actx context.Context, c *cluster.Cluster) (retry.Failure, localreply.Reason, outlier.Result) {
	if ex.downstreamGone() {
		return retry.NoFailure, localreply.UpstreamReset, outlier.Ignored
	}
	switch cause := context.Cause(actx); {
	case errors.Is(cause, errPerTryTimeout), errors.Is(cause, errRouteTimeout), errors.Is(cause, errIdleTimeout):
		return retry.Timeout, localreply.UpstreamTimeout, outlier.GatewayFailure
	}
	if errors.Is(err, cluster.ErrOverflow) {
		return retry.NoFailure, localreply.Overflow, outlier.Ignored
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return retry.ConnectFailure, c.ConnectFailureReason(err), outlier.GatewayFailure
	}
	if strings.Contains(err.Error(), "REFUSED_STREAM") {
		return retry.RefusedStream, localreply.UpstreamReset, outlier.GatewayFailure
	}
	return retry.Reset, localreply.UpstreamReset, outlier.GatewayFailure
}

// outlierResult classifies a response for outlier detection; a gRPC
// status in the headers counts as its HTTP equivalent, as in Envoy.
func outlierResult(status, grpc int) outlier.Result {
	if grpc >= 0 {
		status = grpcToHTTP(grpc)
	}
	switch {
	case status == 502 || status == 503 || status == 504:
		return outlier.GatewayFailure
	case status >= 500:
		return outlier.Failure
	}
	return outlier.Success
}

// grpcToHTTP maps gRPC status codes to HTTP statuses (Envoy's
// Grpc::Utility::grpcToHttpStatus).
func grpcToHTTP(code int) int {
	switch code {
	case 0:
		return 200
	case 1:
		return 499
	case 3, 9, 11:
		return 400
	case 4:
		return 504
	case 5:
		return 404
	case 6, 10:
		return 409
	case 7:
		return 403
	case 8:
		return 429
	case 12:
		return 501
	case 14:
		return 503
	case 16:
		return 401
	}
	return 500
}

// grpcStatusOf returns the grpc-status response header, or -1.
func grpcStatusOf(h http.Header) int {
	v := h.Get("Grpc-Status")
	if v == "" {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

// attemptDone ends an attempt once: its per-try timer, its context and
// its host's in-flight count. It holds the attempt's response body.
type attemptDone struct {
	att    cluster.Attempt
	ctx    context.Context
	cancel context.CancelCauseFunc
	// shared: ctx is the exchange's, which only an attempt that produced
	// a response ends (closing its body); a failed one may be retried.
	shared bool
	perTry *time.Timer
	once   sync.Once
	body   upstreamBody
}

// newAttempt starts an attempt on att. An attempt that may be followed
// by another after it produced a response — the route retries, or has a
// per-try timeout — gets a context of its own. Otherwise the attempt
// uses the exchange's: it is the only one, or, under connectRetry, one
// that failed to connect and so ended without a response or a byte
// sent.
func (ex *exchange) newAttempt(att cluster.Attempt) *attemptDone {
	done := &ex.first
	if ex.attempts > 1 {
		done = &attemptDone{}
	}
	done.att = att
	p := ex.retry
	if p == nil || p == connectRetry || p.NumRetries == 0 && p.PerTryTimeout <= 0 {
		done.ctx, done.cancel, done.shared = ex.ctx, ex.cancel, true
		return done
	}
	done.ctx, done.cancel = context.WithCancelCause(ex.ctx)
	if p.PerTryTimeout > 0 {
		cancel := done.cancel
		done.perTry = time.AfterFunc(p.PerTryTimeout, func() { cancel(errPerTryTimeout) })
	}
	return done
}

// release ends the attempt, cancelling its context.
func (d *attemptDone) release() { d.end(true) }

// end ends the attempt, cancelling its context if cancel is set.
func (d *attemptDone) end(cancel bool) {
	d.once.Do(func() {
		if d.perTry != nil {
			d.perTry.Stop()
		}
		if cancel {
			d.cancel(nil)
		}
		d.att.Release()
	})
}

// upstreamBody is a response body that ends its attempt when closed and
// counts reads as stream activity.
type upstreamBody struct {
	io.ReadCloser
	done *attemptDone
	idle *idleTimer
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.idle.touch()
	}
	return n, err
}

// Ready reports what the upstream's body has buffered (ready.Reporter).
func (b *upstreamBody) Ready() (int, bool) { return ready.Of(b.ReadCloser) }

// Close ends the attempt before closing the body: its context must be
// cancelled first, because closing an HTTP/2 response body waits for
// the request body to finish, and a stream's request body may still be
// open (the upstream ended a bidirectional stream first): the transport
// may not close the downstream body (noCloseBody), so only the
// cancellation ends that wait.
func (b *upstreamBody) Close() error {
	b.done.release()
	return b.ReadCloser.Close()
}

// upgradeBody is the body of a 101 response: the upgrade pipe writes to
// it.
type upgradeBody struct {
	upstreamBody
	w io.Writer
}

func (b *upgradeBody) Write(p []byte) (int, error) {
	n, err := b.w.Write(p)
	if n > 0 {
		b.idle.touch()
	}
	return n, err
}

// wrapBody wraps resp's body: closing it ends the attempt, reading it
// (or, for a 101, writing to it) is stream activity.
func (d *attemptDone) wrapBody(resp *http.Response, idle *idleTimer) io.ReadCloser {
	d.body = upstreamBody{ReadCloser: resp.Body, done: d, idle: idle}
	if w, ok := resp.Body.(io.Writer); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		return &upgradeBody{upstreamBody: d.body, w: w}
	}
	return &d.body
}

// noCloseBody is the downstream request body as an attempt sends it:
// the transport closes its request body when the attempt ends, which
// must not close the downstream body (the server does, when the handler
// returns) nor let a late read in a transport goroutine reach it.
type noCloseBody struct {
	r      io.ReadCloser
	closed atomic.Bool
}

var errBodyClosed = errors.New("read of a request body after its attempt ended")

func (b *noCloseBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errBodyClosed
	}
	return b.r.Read(p)
}

// Ready reports what the downstream body has buffered (ready.Reporter).
func (b *noCloseBody) Ready() (int, bool) {
	if b.closed.Load() {
		return 0, true
	}
	return ready.Of(b.r)
}

func (b *noCloseBody) Close() error {
	b.closed.Store(true)
	return nil
}
