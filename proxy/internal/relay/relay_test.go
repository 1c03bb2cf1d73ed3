package relay

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/weft-mesh/weft/internal/testnet"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	c, a := testnet.TCPPair(t)
	return c, a
}

// TestPipeHalfCloses: the downstream's end of its request reaches the
// upstream as EOF while the response still flows back; both counts are
// returned once both directions are done.
func TestPipeHalfCloses(t *testing.T) {
	app, down := tcpPair(t)   // the client and the proxy's downstream side
	up, backend := tcpPair(t) // the proxy's upstream side and the server
	result := make(chan [2]int64, 1)
	go func() {
		in, out := Pipe(down, up)
		result <- [2]int64{in, out}
	}()

	go func() { // the backend answers once it has the whole request
		req, _ := io.ReadAll(backend)
		backend.Write(append([]byte("re: "), req...))
		backend.Close()
	}()
	app.Write([]byte("ping"))
	app.(*net.TCPConn).CloseWrite()
	resp, err := io.ReadAll(app)
	if err != nil || string(resp) != "re: ping" {
		t.Fatalf("response %q, %v; want %q", resp, err, "re: ping")
	}
	if got := <-result; got != [2]int64{4, 8} {
		t.Errorf("Pipe returned in %d, out %d; want 4, 8", got[0], got[1])
	}
}

// TestPipeErrorClosesBoth: a failing side ends the pipe and closes the
// other side.
func TestPipeErrorClosesBoth(t *testing.T) {
	app, down := tcpPair(t)
	up := &failing{closed: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		Pipe(down, up)
		close(done)
	}()
	if _, err := io.ReadAll(app); err != nil {
		t.Fatalf("reading the downstream side: %v, want it closed (EOF)", err)
	}
	<-up.closed
	<-done
}

// failing is an upstream whose reads fail and whose writes wait until it
// is closed.
type failing struct {
	once   sync.Once
	closed chan struct{}
}

func (f *failing) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func (f *failing) Write([]byte) (int, error) {
	<-f.closed
	return 0, net.ErrClosed
}

func (f *failing) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}
