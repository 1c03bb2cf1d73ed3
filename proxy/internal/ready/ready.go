// Package ready lets a body say, without blocking, what its next reads
// would give, so that whoever moves it on can write a message and its
// end together instead of flushing each part: a request whose body
// already arrived whole goes upstream with its header in one write, and
// a response is flushed downstream only when no more of it is waiting.
package ready

import "io"

// Reporter is a body that knows what has arrived of it. Ready reports
// how many bytes Read would return without blocking, and whether the
// body ends after them (Read then returns io.EOF or the error that ended
// it without blocking). It must not block, and is safe to call
// concurrently with Read.
type Reporter interface {
	Ready() (buffered int, end bool)
}

// Of reports what r would give without blocking: its Ready when it is a
// Reporter, else nothing known (0, false).
func Of(r io.Reader) (buffered int, end bool) {
	if rr, ok := r.(Reporter); ok {
		return rr.Ready()
	}
	return 0, false
}
