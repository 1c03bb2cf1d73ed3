package router

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
)

// informational relays an upstream's 1xx responses (103 Early Hints, a
// 100 Continue the upstream sent) to the client while the attempt loop
// runs, as a proxy must (RFC 9110 §15.2). The transport reports them on
// its own goroutine; once the loop returned, later ones are dropped.
type informational struct {
	mu    sync.Mutex // orders relaying against the end of the round trip
	w     http.ResponseWriter
	done  bool
	trace httptrace.ClientTrace
}

// watch returns ctx with a trace that relays 1xx responses to w.
func (in *informational) watch(ctx context.Context, w http.ResponseWriter) context.Context {
	in.w = w
	in.trace.Got1xxResponse = in.relay
	return httptrace.WithClientTrace(ctx, &in.trace)
}

func (in *informational) relay(code int, header textproto.MIMEHeader) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.done {
		return nil
	}
	// A 1xx's headers are its own: the ones already set for the final
	// response (the listener's Connection: close, say) are neither sent
	// with it nor lost to it.
	h := in.w.Header()
	var final http.Header
	if len(h) > 0 {
		final = maps.Clone(h)
		clear(h)
	}
	for k, vv := range header {
		h[k] = vv
	}
	in.w.WriteHeader(code)
	clear(h)
	maps.Copy(h, final)
	return nil
}

// stop ends relaying: the final response (or a local reply) owns w now.
func (in *informational) stop() {
	in.mu.Lock()
	in.done = true
	in.mu.Unlock()
}
