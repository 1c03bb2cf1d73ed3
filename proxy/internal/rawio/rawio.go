// Package rawio gives weft-proxy's TCP connections reads and writes that
// do not wake the Go runtime's system monitor.
//
// Every read or write of a net.Conn is a system call made through
// syscall.Syscall, which tells the scheduler the goroutine may block
// (entersyscall). When the process was idle, its system monitor (sysmon)
// sleeps, and entersyscall wakes it with a futex; sysmon then polls every
// 20 µs (nanosleep) until the process is idle again, and goes back to
// sleep. A sidecar at a moderate request rate is idle between most
// requests, so each request paid a futex wake, about two nanosleeps and
// four context switches of sysmon: over half of the sidecar's context
// switches at 1,000 requests/s (README, "Performance").
//
// A socket the runtime polls is non-blocking, so its read and write
// return at once: data or EAGAIN. Conn makes them with syscall.RawSyscall,
// which does not enter the scheduler's syscall state, through the
// connection's syscall.RawConn, which keeps the runtime's poller, its
// deadlines and its close semantics: EAGAIN parks the goroutine on the
// poller, exactly as net.Conn does.
package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
)

// Wrap returns c with raw reads and writes when c is a *net.TCPConn on a
// platform that has them (Linux), and c unchanged otherwise.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok || !supported {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	conn := &Conn{TCPConn: tc, raw: rc}
	conn.rd.call, conn.wr.call = conn.rd.read, conn.wr.write
	return conn
}

// Conn is a TCP connection whose Read and Write make raw system calls.
// Every other method is the *net.TCPConn's (SetDeadline, CloseWrite,
// SyscallConn, ReadFrom and so on).
//
// As for a net.Conn, Read, Write and the other methods may be called from
// several goroutines at once. A Read that finds another Read in progress
// (and so a Write) uses the *net.TCPConn's instead: its state cannot be
// shared, and the connection's own lock would serialise the two anyway.
type Conn struct {
	*net.TCPConn
	raw syscall.RawConn
	rd  op
	wr  op
}

// op is the state of one read or write: the buffer and what the raw call
// did with it. call is the method value passed to the RawConn, made once
// per connection so that no call allocates.
type op struct {
	busy  atomic.Bool
	buf   []byte
	n     int
	errno syscall.Errno
	call  func(fd uintptr) bool
}

// Read reads as net.Conn's Read does: at most len(p) bytes, io.EOF at the
// end of the stream, and errors as *net.OpError (Op "read").
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err, ok := c.do(&c.rd, p, false)
	switch {
	case !ok:
		return c.TCPConn.Read(p)
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p, as net.Conn's Write does, waiting on the poller
// while the socket's send buffer is full.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err, ok := c.do(&c.wr, p, true)
	if !ok {
		return c.TCPConn.Write(p)
	}
	return n, err
}

// do runs one raw read or write of p with o's state: the bytes moved and
// the error as net.Conn's methods give it. ok is false, nothing done,
// when another read (write) is in progress.
func (c *Conn) do(o *op, p []byte, write bool) (n int, err error, ok bool) {
	if !o.busy.CompareAndSwap(false, true) {
		return 0, nil, false
	}
	o.buf, o.n, o.errno = p, 0, 0
	name := "read"
	if write {
		name = "write"
		err = c.raw.Write(o.call)
	} else {
		err = c.raw.Read(o.call)
	}
	n, errno := o.n, o.errno
	o.buf = nil
	o.busy.Store(false)
	switch {
	case err != nil:
		err = c.opError(name, unwrapRaw(err))
	case errno != 0:
		err = c.opError(name, os.NewSyscallError(name, errno))
	}
	return n, err, true
}

// opError wraps err as net.Conn's methods do.
func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// unwrapRaw takes the poller's error (a deadline passed, the connection
// was closed) out of the *net.OpError a RawConn wraps it in (Op
// "raw-read" or "raw-write").
func unwrapRaw(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Err
	}
	return err
}
