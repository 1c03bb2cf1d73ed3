// Package accesslog writes weft-proxy's access log: one JSON line per
// request, written in batches by one goroutine through a bounded queue, so
// that a slow or blocked output never slows a request: when the queue is
// full, lines are dropped and counted (Dropped).
package accesslog

import (
	"bufio"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Entry is one access-log line. Every field is always written, empty when
// unknown, so that every line has the same shape.
type Entry struct {
	Time time.Time `json:"time"`
	// TraceID and SpanID are the sidecar's span; without one, TraceID is
	// the trace the request came with.
	TraceID TraceID `json:"trace_id"`
	SpanID  SpanID  `json:"span_id"`
	// Direction is "inbound" or "outbound".
	Direction string `json:"direction"`
	// Source is the calling service; SourceID its SPIFFE ID when known.
	Source   string `json:"source"`
	SourceID string `json:"source_id"`
	// Destination is the called service; DestinationID its SPIFFE ID:
	// the sidecar's own inbound, the upstream's verified certificate
	// outbound (empty for plaintext upstreams).
	Destination   string   `json:"destination"`
	DestinationID Identity `json:"destination_id"`
	// Route names what the request matched: the route configuration and
	// cluster, as the listener reports it.
	Route string `json:"route"`
	// UpstreamHost is the "address:port" of the last attempt.
	UpstreamHost string `json:"upstream_host"`
	Method       string `json:"method"`
	Path         string `json:"path"`
	// Protocol is "http", "http2" or "grpc".
	Protocol string `json:"protocol"`
	// Status is the HTTP status sent downstream; 0 when none was.
	Status     int     `json:"status"`
	GRPCStatus string  `json:"grpc_status"`
	DurationMS float64 `json:"duration_ms"`
	// BytesIn is the request body read from the downstream, BytesOut the
	// response body written to it.
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
	// WeftError is the response's x-weft-error reason.
	WeftError string `json:"weft_error"`
}

// Defaults of Options fields left zero.
const (
	DefaultQueue        = 1024
	DefaultCloseTimeout = 5 * time.Second
)

// Options configure a Logger.
type Options struct {
	// Queue bounds the lines waiting to be written (default 1024).
	Queue int
	// CloseTimeout bounds how long Close waits for the queued lines to be
	// written (default 5s): an output nobody reads must not hold up a
	// shutdown.
	CloseTimeout time.Duration
	// Logger receives write errors, at most one per minute (default
	// slog.Default()).
	Logger *slog.Logger
}

// Logger writes entries as JSON lines. Log may be called from any
// goroutine and never blocks; a nil *Logger logs nothing.
//
// Log does not wake the writer goroutine for each entry: a wake costs a
// futex call and a trip through the scheduler, as much as the rest of the
// logging. The writer sleeps until the first entry after an idle spell,
// then drains the queue every drainEvery until an interval brings
// nothing; a queue half full wakes it early.
type Logger struct {
	queue    chan Entry
	queued   atomic.Int64 // entries in queue; with sleeping, the writer's wake-up handshake
	sleeping atomic.Bool  // the writer is idle, waiting on wake
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	closed   atomic.Bool
	dropped  atomic.Uint64
	wakes    atomic.Uint64 // times the writer woke, for tests
	once     sync.Once
	wait     time.Duration
	log      *slog.Logger
}

// New starts a Logger writing to w. Close it to flush and stop.
func New(w io.Writer, opts Options) *Logger {
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = DefaultCloseTimeout
	}
	l := &Logger{
		wait:  opts.CloseTimeout,
		queue: make(chan Entry, opts.Queue),
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		log:   opts.Logger.With("component", "accesslog"),
	}
	go l.run(w)
	return l
}

// Log queues e for writing, or drops and counts it when the queue is full
// or the Logger is closed. It copies e.
func (l *Logger) Log(e *Entry) {
	if l == nil {
		return
	}
	if l.closed.Load() {
		l.dropped.Add(1)
		return
	}
	select {
	case l.queue <- *e:
	default:
		l.dropped.Add(1)
		return
	}
	n := l.queued.Add(1)
	if l.sleeping.CompareAndSwap(true, false) || int(n) >= cap(l.queue)/2 {
		l.kick()
	}
}

// kick wakes the writer, or leaves a wake-up it will find.
func (l *Logger) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Dropped returns how many entries were not written: dropped on a full
// queue or after Close, or lost to a write error.
func (l *Logger) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Close stops the Logger: it writes the queued entries, flushes, and
// returns once the writer goroutine has ended, or after CloseTimeout if
// the output blocks (the goroutine then ends with its write). It is
// idempotent. It does not close the writer.
func (l *Logger) Close() {
	if l == nil {
		return
	}
	l.once.Do(func() {
		l.closed.Store(true)
		close(l.stop)
	})
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case <-l.done:
	case <-t.C:
		l.log.Warn("access log output blocked; closing without flushing", "timeout", l.wait)
	}
}

// drainEvery is how often a busy writer drains the queue: a line waits at
// most this long (plus the write) before it reaches the output, and under
// load lines go out in batches, one write per interval instead of one
// per request.
const drainEvery = 20 * time.Millisecond

// run is the writer goroutine.
func (l *Logger) run(w io.Writer) {
	defer close(l.done)
	out := &lineWriter{w: w, bw: bufio.NewWriterSize(w, 32<<10), logger: l}
	defer l.drain(out)
	tick := time.NewTimer(drainEvery)
	tick.Stop()
	for {
		if !l.idle() {
			return
		}
		for {
			tick.Reset(drainEvery)
			select {
			case <-tick.C:
			case <-l.wake:
				l.wakes.Add(1)
			case <-l.stop:
				return
			}
			if l.drain(out) == 0 {
				break
			}
		}
	}
}

// idle waits for an entry once the queue is empty, and reports false when
// the Logger is stopped instead. The handshake with Log: the writer says
// it sleeps, then looks at the queue; Log queues, then looks at whether
// the writer sleeps. One of them sees the other.
func (l *Logger) idle() bool {
	l.sleeping.Store(true)
	if l.queued.Load() > 0 {
		l.sleeping.Store(false)
		return true
	}
	select {
	case <-l.wake:
		l.wakes.Add(1)
		return true
	case <-l.stop:
		return false
	}
}

// drain writes the queued entries and flushes them, returning how many it
// wrote.
func (l *Logger) drain(out *lineWriter) int {
	n := 0
	for {
		select {
		case e := <-l.queue:
			l.queued.Add(-1)
			out.write(&e)
			n++
		default:
			if n > 0 {
				out.flush()
			}
			return n
		}
	}
}

// warnEvery spaces the warnings about write errors.
const warnEvery = time.Minute

// lineWriter encodes entries into a buffer and counts what a failed write
// loses. It is used by the writer goroutine only.
type lineWriter struct {
	w        io.Writer
	bw       *bufio.Writer
	line     []byte // reused for every entry
	pending  uint64 // entries buffered since the last flush
	logger   *Logger
	lastWarn time.Time
}

func (w *lineWriter) write(e *Entry) {
	w.pending++
	w.line = e.AppendJSON(w.line[:0])
	if _, err := w.bw.Write(w.line); err != nil {
		w.failed(err)
	}
}

func (w *lineWriter) flush() {
	if err := w.bw.Flush(); err != nil {
		w.failed(err)
	}
	w.pending = 0
}

// failed counts the buffered entries as lost and starts afresh: a
// bufio.Writer keeps failing after an error.
func (w *lineWriter) failed(err error) {
	w.logger.dropped.Add(w.pending)
	w.pending = 0
	w.bw.Reset(w.w)
	if now := time.Now(); now.Sub(w.lastWarn) >= warnEvery {
		w.lastWarn = now
		w.logger.log.Warn("access log write failed; lines dropped", "error", err)
	}
}
