package router

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/proxy/balancer"
	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/grpcwire"
	"github.com/weft-mesh/weft/proxy/localreply"
	"github.com/weft-mesh/weft/proxy/outlier"
	"github.com/weft-mesh/weft/proxy/retry"
	"github.com/weft-mesh/weft/proxy/route"
)

// Causes of cancelling an exchange or an attempt.
var (
	errRouteTimeout  = errors.New("route timeout")
	errIdleTimeout   = errors.New("stream idle timeout")
	errPerTryTimeout = errors.New("per-try timeout")
	errSuperseded    = errors.New("attempt superseded by a retry")
)

// maxTried bounds the hosts a request remembers to avoid on retries.
const maxTried = 8

// exchange is one downstream request's journey to an upstream host.
type exchange struct {
	rt          *Router
	route       *route.Route
	action      *route.Action
	target      *route.WeightedCluster
	cluster     *cluster.Cluster // the route's: attempts pick from it
	clusterName string
	// upstream is the cluster of the latest attempt's host: cluster, or
	// the child an aggregate cluster chose. Its settings apply.
	upstream *cluster.Cluster
	// counted is the cluster whose max_requests counts the request: the
	// route's, or the child of an aggregate's latest attempt.
	counted *cluster.Cluster

	respHeaders route.Mutations

	down      context.Context // the server's request context: the client
	ctx       context.Context // down, plus the route and idle timeouts
	cancel    context.CancelCauseFunc
	timer     *time.Timer // the route and idle timeouts (nil: neither)
	finished  atomic.Bool // the timer must not re-arm
	idle      *idleTimer  // &idleState, or nil: no idle timeout
	idleState idleTimer
	deadline  time.Time // zero: none
	grpc      bool      // propagate the deadline in grpc-timeout
	downH2    bool

	header http.Header // what every attempt sends (retries clone it)
	url    url.URL     // the request's URL, its query cleaned

	hash      balancer.PickInfo
	setCookie *http.Cookie
	retry     *retry.Policy // what the attempts follow (retryPolicy); nil: no retries
	body      *replayBody   // nil: no body, or no retries
	sent      *noCloseBody  // the request body as sent, when not replayable
	attempts  int
	tried     [maxTried]*Host
	ntried    int
	first     attemptDone      // the first attempt's, saving an allocation
	last      *attemptDone     // the latest attempt's
	retrying  *cluster.Cluster // whose retry budget counts the retry in flight; nil: none
	info      informational
}

// Host is an alias kept short for the tried list.
type Host = cluster.Host

func newExchange(rt *Router, r *http.Request, req Request) *exchange {
	a := &req.Route.Action
	ex := &exchange{rt: rt, route: req.Route, action: a, target: a.PickCluster(), down: r.Context(), downH2: r.ProtoMajor == 2}
	ex.clusterName = ex.target.Name
	ex.respHeaders = req.Route.ResponseMutations(ex.target)
	ex.cluster = rt.clusters.Get(ex.clusterName)
	ex.ctx, ex.cancel = context.WithCancelCause(r.Context())
	ex.startTimers(r, req)
	if ex.cluster != nil && ex.cluster.NeedsHash() && len(a.Hash) > 0 {
		h := route.ComputeHash(a.Hash, r, req.SourceIP)
		ex.hash = balancer.PickInfo{Hash: h.Hash, HasHash: h.OK}
		ex.setCookie = h.SetCookie
	}
	return ex
}

// effectiveTimeout is the route timeout of r, capped by its grpc-timeout
// and max_stream_duration (0: none). propagate reports whether r carries
// a grpc-timeout to pass on, reduced, upstream.
func effectiveTimeout(a *route.Action, r *http.Request) (timeout time.Duration, propagate bool) {
	timeout = a.Timeout
	g, hasGRPCTimeout := grpcTimeout(r)
	switch {
	case a.HasMaxGRPCTimeout && grpcwire.IsRequest(r):
		// Envoy's max_grpc_timeout: the request's grpc-timeout (none:
		// infinite) replaces the route timeout, capped and offset.
		timeout = g
		if a.MaxGRPCTimeout > 0 && (timeout == 0 || timeout > a.MaxGRPCTimeout) {
			timeout = a.MaxGRPCTimeout
		}
		if a.GRPCTimeoutOffset > 0 && timeout > a.GRPCTimeoutOffset {
			timeout -= a.GRPCTimeoutOffset
		}
	case hasGRPCTimeout && g > 0 && (timeout == 0 || g < timeout):
		// Weft: the client's deadline always caps the route timeout.
		timeout = g
	}
	if d := a.MaxStreamDuration; d > 0 && (timeout == 0 || d < timeout) {
		timeout = d
	}
	return timeout, hasGRPCTimeout
}

// prepare applies the request header changes, rewrites and body
// handling before the request is forwarded.
func (ex *exchange) prepare(r *http.Request) {
	ms := ex.route.RequestMutations(ex.target)
	ms.Apply(r.Header)
	if h := ex.target.HostRewrite; h != "" {
		r.Host = h
	} else if h := ex.action.HostRewrite; h != "" {
		r.Host = h
	}
	if esc := r.URL.EscapedPath(); ex.action.HasPrefixRewrite || ex.action.RegexRewrite != nil {
		rewritten := ex.action.RewritePath(&ex.route.Match.Path, esc)
		if p, err := url.PathUnescape(rewritten); err == nil {
			r.URL.Path, r.URL.RawPath = p, rewritten
		}
	}
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	if p := ex.action.Retry; p != nil && p.NumRetries > 0 {
		ex.body = newReplayBody(r.Body, ex.action.BufferLimit, ex.idle)
	} else if ex.idle != nil {
		r.Body = &touchBody{ReadCloser: r.Body, idle: ex.idle}
	}
}

// finish stops the exchange's timers and gives back its retry budget.
func (ex *exchange) finish() {
	ex.stopTimers()
	ex.cancel(nil)
	ex.endBody()
	ex.releaseRetry()
}

// releaseRetry ends the retry in flight, if any.
func (ex *exchange) releaseRetry() {
	if ex.retrying != nil {
		ex.retrying.EndRetry()
		ex.retrying = nil
	}
}

// countRequest counts the request in flight to c (max_requests), moving
// the count from the cluster it was counted in, if another: the
// attempts of an aggregate cluster's request may go to different
// children. It reports false, changing nothing, when c is at its limit.
func (ex *exchange) countRequest(c *cluster.Cluster) bool {
	if ex.counted == c {
		return true
	}
	if !c.AcquireRequest() {
		return false
	}
	ex.releaseRequest()
	ex.counted = c
	return true
}

// releaseRequest ends the count of countRequest, if any.
func (ex *exchange) releaseRequest() {
	if ex.counted != nil {
		ex.counted.ReleaseRequest()
		ex.counted = nil
	}
}

// upstreamName names the cluster of the latest attempt: the route's, or
// an aggregate's child; "" before any.
func (ex *exchange) upstreamName() string {
	if ex.upstream == nil {
		return ""
	}
	return ex.upstream.Name()
}

func (ex *exchange) downstreamGone() bool { return ex.down.Err() != nil }

// decorate applies the response header changes to a response's headers.
func (ex *exchange) decorate(h http.Header) {
	ex.respHeaders.Apply(h)
	if ex.setCookie != nil {
		h.Add("Set-Cookie", ex.setCookie.String())
	}
	if ex.action.AttemptCountInResponse && ex.attempts > 0 {
		h.Set("X-Envoy-Attempt-Count", strconv.Itoa(ex.attempts))
	}
}

// reply sends a local reply, with the route's response header changes.
func (ex *exchange) reply(w http.ResponseWriter, r *http.Request, reason localreply.Reason) {
	ex.respHeaders.Apply(w.Header())
	localreply.Write(w, r, reason, ex.clusterName)
}

// localError is an exchange that ended without a usable response.
type localError struct {
	reason localreply.Reason
	err    error
}

func (e *localError) Error() string { return string(e.reason) + ": " + e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// result is what one attempt produced.
type result struct {
	resp    *http.Response
	err     error
	outcome retry.Outcome
}

// roundTrip runs the attempts: pick a host, send, and retry what the
// policy, the budget and the body allow, before any response byte goes
// downstream.
func (ex *exchange) roundTrip(r *http.Request) (*http.Response, error) {
	ex.retry = ex.retryPolicy(r)
	policy := ex.retry
	att, err := ex.pick(0, policy)
	if err != nil {
		return nil, err
	}
	res := ex.try(r, att)
	for retries := uint32(0); ; {
		if !policy.Retriable(res.outcome) || retries >= policy.NumRetries || !ex.replayable() || ex.ctx.Err() != nil {
			return res.resp, res.err
		}
		ex.releaseRetry() // the previous retry is over
		// The retry budget of the cluster whose attempt failed: for an
		// aggregate cluster, that child's.
		budget := ex.upstream
		if !budget.CanRetry() {
			return res.resp, res.err
		}
		retries++
		next, err := ex.pick(retries, policy)
		if err != nil {
			return res.resp, res.err
		}
		discard(res.resp)
		if !ex.backoff(policy.Backoff(int(retries))) {
			next.Report(outlier.Ignored)
			next.Release()
			ex.observeTimeout(ex.ctx, ex.attempts)
			return nil, &localError{reason: localreply.UpstreamTimeout, err: context.Cause(ex.ctx)}
		}
		if hook := ex.rt.hooks.Retry; hook != nil {
			hook(budget.Name())
		}
		budget.StartRetry()
		ex.retrying = budget
		res = ex.try(r, next)
	}
}

// connectRetry is the retry policy of a route that has none, for a
// request without a body: an attempt that could not connect sent no
// byte, so trying another host once is safe for any method (linkerd2-proxy
// does the same). A host that is restarting, or gone while the control
// plane has not said so yet (or cannot, being down), then costs a retry
// instead of a failed request. A route's own policy, even one of 0
// retries, replaces it; a request with a body is not buffered for it.
var connectRetry = &retry.Policy{On: retry.OnConnectFailure, NumRetries: 1, HostSelectionAttempts: 1}

// retryPolicy is the policy the exchange's attempts follow, nil: none.
func (ex *exchange) retryPolicy(r *http.Request) *retry.Policy {
	if p := ex.action.Retry; p != nil {
		return p
	}
	if r.ContentLength == 0 {
		return connectRetry
	}
	return nil
}

// pick chooses a host, avoiding those tried for up to the policy's host
// selection attempts, and counts the request in its cluster.
func (ex *exchange) pick(retries uint32, policy *retry.Policy) (cluster.Attempt, error) {
	info := ex.hash
	info.Attempt = retries
	avoid := 0
	if policy != nil && retries > 0 {
		avoid = int(policy.HostSelectionAttempts)
	}
	att, err := ex.cluster.Pick(info, ex.tried[:ex.ntried], avoid)
	ex.observePick(ex.attempts+1, att)
	if err != nil {
		reason := localreply.NoHealthyUpstream
		if errors.Is(err, cluster.ErrCircuitOpen) {
			reason = localreply.CircuitOpen
		}
		return att, &localError{reason: reason, err: err}
	}
	if !ex.countRequest(att.Cluster) {
		att.Report(outlier.Ignored)
		att.Release()
		return cluster.Attempt{}, &localError{reason: localreply.Overflow, err: cluster.ErrOverflow}
	}
	ex.upstream = att.Cluster
	if ex.ntried < maxTried {
		ex.tried[ex.ntried] = att.Host
		ex.ntried++
	}
	return att, nil
}

func (ex *exchange) replayable() bool { return ex.body == nil || ex.body.replayable() }

// backoff waits d unless the exchange ends first.
func (ex *exchange) backoff(d time.Duration) bool {
	if d <= 0 {
		return ex.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ex.ctx.Done():
		return false
	}
}

// discard drains a little of a response that will be retried, so that
// its connection can be reused, and closes it.
func discard(resp *http.Response) {
	if resp == nil {
		return
	}
	io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
}
