package h2wire

// Inflow is a receive window (RFC 9113 §5.2, §6.9): how much the peer
// may still send, and what was read but not yet given back. Bytes are
// given back, with a WINDOW_UPDATE, once half the window was read: a
// window update per message would cost as much as the message. The zero
// value has no window; callers guard it with their own lock.
type Inflow struct {
	window, avail, unread int32
}

// NewInflow returns a receive window of size bytes.
func NewInflow(size int32) Inflow { return Inflow{window: size, avail: size} }

// Take counts a received frame of n bytes (padding included); it
// reports false, taking nothing, when the frame is past the window: a
// flow-control error.
func (f *Inflow) Take(n int32) bool {
	if n > f.avail {
		return false
	}
	f.avail -= n
	return true
}

// Consumed counts n bytes read (or dropped) and returns the increment of
// the WINDOW_UPDATE to send now, or 0.
func (f *Inflow) Consumed(n int) uint32 {
	f.unread += int32(n)
	if f.unread < f.window/2 {
		return 0
	}
	inc := f.unread
	f.avail += inc
	f.unread = 0
	return uint32(inc)
}
