// Package accesslog writes weft-proxy's access log: one JSON line per
// request, written by one goroutine through a bounded queue, so that a slow
// or blocked output never slows a request: when the queue is full, lines
// are dropped and counted (Dropped).
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
type Logger struct {
	queue   chan Entry
	stop    chan struct{}
	done    chan struct{}
	closed  atomic.Bool
	dropped atomic.Uint64
	once    sync.Once
	wait    time.Duration
	log     *slog.Logger
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

// flushDelay is how long a written line may wait in the buffer for more
// to share its write: under load, lines go out in batches (or when the
// buffer is full), one write per flushDelay instead of one per request.
const flushDelay = 50 * time.Millisecond

// run is the writer goroutine. Once the queue is empty it flushes within
// flushDelay, so lines appear promptly when idle and are batched under
// load.
func (l *Logger) run(w io.Writer) {
	defer close(l.done)
	out := &lineWriter{w: w, bw: bufio.NewWriterSize(w, 32<<10), logger: l}
	flush := time.NewTimer(flushDelay)
	flush.Stop()
	armed := false
	for {
		select {
		case e := <-l.queue:
			out.write(&e)
			if !armed && len(l.queue) == 0 {
				flush.Reset(flushDelay)
				armed = true
			}
		case <-flush.C:
			armed = false
			out.flush()
		case <-l.stop:
			for {
				select {
				case e := <-l.queue:
					out.write(&e)
				default:
					out.flush()
					return
				}
			}
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
