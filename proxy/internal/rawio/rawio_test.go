package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/testnet"
)

// pair returns the two ends of a loopback TCP connection: a, wrapped when
// raw, and b, a plain *net.TCPConn.
func pair(t *testing.T, raw bool) (a net.Conn, b *net.TCPConn) {
	t.Helper()
	dialed, accepted := testnet.TCPPair(t)
	a = dialed
	if raw {
		a = Wrap(dialed)
		if _, ok := a.(*Conn); !ok {
			t.Fatalf("Wrap(%T) = %T, want *rawio.Conn", dialed, a)
		}
	}
	return a, accepted
}

// outcome is what a test sees of an I/O error: what callers of net.Conn
// branch on.
type outcome struct {
	n         int
	eof       bool
	op        string
	timeout   bool
	closed    bool
	reset     bool
	errString bool // the error says something
}

func outcomeOf(n int, err error) outcome {
	o := outcome{n: n, eof: err == io.EOF}
	var oe *net.OpError
	if errors.As(err, &oe) {
		o.op = oe.Op
	}
	var ne net.Error
	o.timeout = errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
	o.closed = errors.Is(err, net.ErrClosed)
	o.reset = errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	o.errString = err != nil && err.Error() != ""
	return o
}

// TestConnBehavesAsNetConn runs each scenario on a plain *net.TCPConn and
// on a rawio.Conn, and wants the same outcome: bytes, io.EOF, the
// *net.OpError's Op, timeouts, net.ErrClosed, resets.
func TestConnBehavesAsNetConn(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, a net.Conn, b *net.TCPConn) outcome
		want outcome
	}{
		{"read what the peer wrote", func(t *testing.T, a net.Conn, b *net.TCPConn) outcome {
			b.Write([]byte("hello"))
			buf := make([]byte, 16)
			n, err := io.ReadAtLeast(a, buf, 5)
			if string(buf[:n]) != "hello" {
				t.Errorf("read %q, want hello", buf[:n])
			}
			return outcomeOf(n, err)
		}, outcome{n: 5}},
		{"zero-length read", func(t *testing.T, a net.Conn, b *net.TCPConn) outcome {
			return outcomeOf(a.Read(nil))
		}, outcome{}},
		{"read at the peer's close", func(t *testing.T, a net.Conn, b *net.TCPConn) outcome {
			b.Close()
			return outcomeOf(a.Read(make([]byte, 8)))
		}, outcome{eof: true, errString: true}},
		{"read past its deadline", func(t *testing.T, a net.Conn, b *net.TCPConn) outcome {
			a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			return outcomeOf(a.Read(make([]byte, 8)))
		}, outcome{op: "read", timeout: true, errString: true}},
		{"read of a closed connection", func(t *testing.T, a net.Conn, b *net.TCPConn) outcome {
			a.Close()
			return outcomeOf(a.Read(make([]byte, 8)))
		}, outcome{op: "read", closed: true, errString: true}},
		{"read blocked when the connection is closed", func(t *testing.T, a net.Conn, b *net.TCPConn) outcome {
			// Whether Close comes before the read or while it waits on
			// the poller, the read ends with net.ErrClosed.
			go a.Close()
			_, err := a.Read(make([]byte, 8))
			return outcomeOf(0, err)
		}, outcome{op: "read", closed: true, errString: true}},
		{"read after the peer reset", func(t *testing.T, a net.Conn, b *net.TCPConn) outcome {
			b.SetLinger(0)
			b.Close()
			return outcomeOf(a.Read(make([]byte, 8)))
		}, outcome{op: "read", reset: true, errString: true}},
		{"write of a closed connection", func(t *testing.T, a net.Conn, b *net.TCPConn) outcome {
			a.Close()
			return outcomeOf(a.Write([]byte("x")))
		}, outcome{op: "write", closed: true, errString: true}},
		{"write past its deadline to a peer that does not read", func(t *testing.T, a net.Conn, b *net.TCPConn) outcome {
			a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			chunk := make([]byte, 1<<20)
			for {
				if _, err := a.Write(chunk); err != nil {
					return outcomeOf(0, err)
				}
			}
		}, outcome{op: "write", timeout: true, errString: true}},
		{"write after the peer reset", func(t *testing.T, a net.Conn, b *net.TCPConn) outcome {
			b.SetLinger(0)
			b.Close()
			// The first write may land before the RST is seen.
			for range 100 {
				if _, err := a.Write([]byte("x")); err != nil {
					return outcomeOf(0, err)
				}
				a.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
				a.Read(make([]byte, 1)) // lets the RST arrive
			}
			t.Error("writes after the peer's reset kept succeeding")
			return outcome{}
		}, outcome{op: "write", reset: true, errString: true}},
	} {
		for _, raw := range []bool{false, true} {
			name := tc.name + map[bool]string{false: "/net.Conn", true: "/rawio"}[raw]
			t.Run(name, func(t *testing.T) {
				a, b := pair(t, raw)
				if got := tc.run(t, a, b); got != tc.want {
					t.Errorf("outcome %+v, want %+v", got, tc.want)
				}
			})
		}
	}
}

// TestConnMovesLargeWritesBothWays writes more than the socket buffers
// hold in each direction at once, so that writes wait on the poller
// (EAGAIN) and resume where they stopped, while reads run concurrently.
func TestConnMovesLargeWritesBothWays(t *testing.T) {
	a, b := pair(t, true)
	out := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB: more than the socket buffers hold
	in := bytes.Repeat([]byte("fedcba9876543210"), 1<<20)
	var wg sync.WaitGroup
	var fromA, fromB []byte
	wg.Add(4)
	go func() { defer wg.Done(); mustWrite(t, a, out) }()
	go func() { defer wg.Done(); mustWrite(t, b, in) }()
	go func() { defer wg.Done(); fromA = readN(t, b, len(out)) }()
	go func() { defer wg.Done(); fromB = readN(t, a, len(in)) }()
	wg.Wait()
	if !bytes.Equal(fromA, out) || !bytes.Equal(fromB, in) {
		t.Fatal("bytes differ from what was written")
	}
}

// TestConnConcurrentReads lets two goroutines read one connection at
// once, as net.Conn allows: one of them falls back to net.Conn's Read.
// Every byte is read once.
func TestConnConcurrentReads(t *testing.T) {
	a, b := pair(t, true)
	const total = 1 << 20
	go mustWrite(t, b, bytes.Repeat([]byte{'x'}, total))
	var mu sync.Mutex
	got := 0
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1000)
			for {
				mu.Lock()
				done := got == total
				mu.Unlock()
				if done {
					b.Close()
					return
				}
				n, err := a.Read(buf)
				mu.Lock()
				got += n
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if got != total {
		t.Fatalf("read %d bytes, want %d", got, total)
	}
}

// TestConnDoesNotAllocate: a read and a write of a ready socket allocate
// nothing.
func TestConnDoesNotAllocate(t *testing.T) {
	a, b := pair(t, true)
	msg, buf := []byte("ping"), make([]byte, 4)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(b, buf); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(a, buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a write and a read allocate %v times, want 0", allocs)
	}
}

func TestWrapLeavesOtherConnectionsAlone(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	if got := Wrap(c1); got != c1 {
		t.Fatalf("Wrap(net.Pipe()) = %T, want the pipe unchanged", got)
	}
}

func mustWrite(t *testing.T, w io.Writer, p []byte) {
	if n, err := w.Write(p); err != nil || n != len(p) {
		t.Errorf("write: %d of %d bytes, %v", n, len(p), err)
	}
}

func readN(t *testing.T, r io.Reader, n int) []byte {
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Errorf("read: %v", err)
	}
	return buf
}
