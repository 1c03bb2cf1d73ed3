package router

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/weft-mesh/weft/proxy/internal/ready"
)

var errNotReplayable = errors.New("request body exceeded the retry buffer and cannot be replayed")

// replayBody lets a request body be sent again on a retry: what the
// client sent is kept, up to a limit, while the first attempt streams it
// upstream; a retry replays that and then continues with the rest. A
// body that outgrows the limit can no longer be replayed, so the request
// is not retried. Attempts run one after the other; a superseded
// attempt's reader stops at its next read.
type replayBody struct {
	src   io.ReadCloser
	limit int64
	idle  *idleTimer

	mu       sync.Mutex // serializes reads of src between attempts of this request
	buf      []byte
	total    int64 // bytes read from src
	overflow bool
	err      error // src's terminal error (io.EOF when complete)
	current  atomic.Pointer[attemptBody]
}

func newReplayBody(src io.ReadCloser, limit int64, idle *idleTimer) *replayBody {
	return &replayBody{src: src, limit: limit, idle: idle}
}

func (b *replayBody) replayable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.overflow
}

// reader returns the next attempt's body, superseding the previous one.
func (b *replayBody) reader() io.ReadCloser {
	r := &attemptBody{b: b}
	b.current.Store(r)
	return r
}

// getBody is http.Request.GetBody, for the transport's own retries.
func (b *replayBody) getBody() (io.ReadCloser, error) {
	if !b.replayable() {
		return nil, errNotReplayable
	}
	return b.reader(), nil
}

type attemptBody struct {
	b   *replayBody
	off int64
}

func (r *attemptBody) Read(p []byte) (int, error) {
	b := r.b
	if b.current.Load() != r {
		return 0, errSuperseded
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.off < b.total {
		if b.overflow || r.off >= int64(len(b.buf)) {
			return 0, errNotReplayable
		}
		n := copy(p, b.buf[r.off:])
		r.off += int64(n)
		return n, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.src.Read(p)
	if n > 0 {
		b.idle.touch()
		b.total += int64(n)
		r.off += int64(n)
		if !b.overflow && int64(len(b.buf)+n) <= b.limit {
			b.buf = append(b.buf, p[:n]...)
		} else {
			b.overflow, b.buf = true, nil
		}
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// Ready reports what a Read would give without blocking
// (ready.Reporter): the replay buffer's bytes this attempt has not read,
// then what the source has buffered. While another attempt's read holds
// the source, nothing is known.
func (r *attemptBody) Ready() (int, bool) {
	b := r.b
	if b.current.Load() != r {
		return 0, true
	}
	if !b.mu.TryLock() {
		return 0, false
	}
	defer b.mu.Unlock()
	replay := 0
	if r.off < b.total {
		if b.overflow || r.off >= int64(len(b.buf)) {
			return 0, true
		}
		replay = int(b.total - r.off)
	}
	if b.err != nil {
		return replay, true
	}
	n, end := ready.Of(b.src)
	return replay + n, end
}

// Close does not close the source: a retry may still need it. The
// server closes it when the request ends.
func (r *attemptBody) Close() error { return nil }

// touchBody counts request body reads as stream activity.
type touchBody struct {
	io.ReadCloser
	idle *idleTimer
}

func (b *touchBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.idle.touch()
	}
	return n, err
}

// Ready reports what the body has buffered (ready.Reporter).
func (b *touchBody) Ready() (int, bool) { return ready.Of(b.ReadCloser) }

// endBody stops transport goroutines that outlive the exchange from
// reading the downstream request body, which the server recycles once
// the handler returns.
func (ex *exchange) endBody() {
	if ex.sent != nil {
		ex.sent.Close()
	}
	if ex.body != nil {
		ex.body.current.Store(nil) // supersedes every attempt's reader
	}
}
