package listener

import "time"

// The disconnect watch. net/http's server notices a client that goes
// away during a request with a read it starts in the background after
// every request's body, and stops (waking it with a deadline) when the
// handler returns: a goroutine wake-up and two deadline changes per
// request. The lean server starts that read only for an exchange still
// running watchDelay after it started, once its body is read: a timer
// per connection, reset per request, fires only for long exchanges
// (long polls, streams, slow upstreams), where the cost is lost in the
// wait. The read's byte, if the client sent one (a pipelined request),
// is put back in front of the stream; a failed read cancels the
// connection's context, which is the request's.

// startWatch arms the watch for the exchange starting.
func (hc *h1Conn) startWatch() {
	hc.watchMu.Lock()
	hc.running = true
	hc.watchMu.Unlock()
	hc.watch.Reset(watchDelay)
}

// watchFired runs on the timer's goroutine: it reads from the connection
// in the background until a byte arrives, the read fails, or stopWatch
// interrupts it.
func (hc *h1Conn) watchFired() {
	hc.watchMu.Lock()
	if !hc.running || hc.reading {
		hc.watchMu.Unlock()
		return
	}
	if b := hc.w.body; b != nil && !b.eof.Load() {
		// The handler still reads the body: a read now would take its
		// bytes. Look again later; a client gone meanwhile fails the
		// body's reads.
		hc.watch.Reset(watchDelay)
		hc.watchMu.Unlock()
		return
	}
	if len(hc.src.pending) > 0 {
		hc.watchMu.Unlock()
		return
	}
	hc.reading = true
	hc.watchMu.Unlock()

	n, err := hc.conn.Read(hc.oneByte[:])

	hc.watchMu.Lock()
	hc.reading = false
	if n > 0 {
		hc.src.pending = hc.oneByte[:n]
	}
	if err != nil && !hc.aborting {
		hc.cancel(errClientGone)
	}
	hc.watched.Broadcast()
	hc.watchMu.Unlock()
}

// aLongTimeAgo is a deadline in the past: it wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// stopWatch disarms the watch when the handler returns (or hijacks), and
// waits for a background read to end.
func (hc *h1Conn) stopWatch() {
	hc.watch.Stop()
	hc.watchMu.Lock()
	defer hc.watchMu.Unlock()
	hc.running = false
	if !hc.reading {
		return
	}
	hc.aborting = true
	hc.conn.SetReadDeadline(aLongTimeAgo)
	for hc.reading {
		hc.watched.Wait()
	}
	hc.aborting = false
	hc.conn.SetReadDeadline(time.Time{})
}
