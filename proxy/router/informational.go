package router

import (
	"context"
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
	h := in.w.Header()
	for k, vv := range header {
		h[k] = append(h[k], vv...)
	}
	in.w.WriteHeader(code)
	clear(h) // a 1xx's headers are its own, not the final response's
	return nil
}

// stop ends relaying: the final response (or a local reply) owns w now.
func (in *informational) stop() {
	in.mu.Lock()
	in.done = true
	in.mu.Unlock()
}
