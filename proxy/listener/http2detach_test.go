package listener

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/weft-mesh/weft/internal/poll"
)

// detachedEcho is a handler that detaches its stream and returns at once;
// a goroutine of its own then echoes what the body's ReadyNotifier
// reports, and ends the stream at the body's end with the number of
// chunks echoed in a trailer, or aborts it after abortAfter chunks.
type detachedEcho struct {
	abortAfter int
	returned   chan struct{} // closed when ServeHTTP returned
	ended      chan error    // the body's end, as the stream saw it
}

func (h *detachedEcho) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer close(h.returned)
	end := w.(Detacher).Detach()
	body := r.Body.(interface {
		io.Reader
		ReadyNotifier
	})
	w.Header().Set("Trailer", "X-Chunks")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	ready := make(chan struct{}, 1)
	body.OnReady(func() {
		select {
		case ready <- struct{}{}:
		default:
		}
	})
	go func() {
		chunks := 0
		buf := make([]byte, 64)
		for {
			n, ended := body.Ready()
			if n == 0 && !ended {
				<-ready
				continue
			}
			m, err := body.Read(buf[:min(n, len(buf))])
			if err != nil {
				h.ended <- err
				w.Header().Set("X-Chunks", strconv.Itoa(chunks))
				end(false)
				return
			}
			w.Write(buf[:m])
			w.(http.Flusher).Flush()
			if chunks++; chunks == h.abortAfter {
				h.ended <- errors.New("aborted")
				end(true)
				return
			}
		}
	}()
}

// TestHTTP2ServerDetachedStreams: a handler that detaches its stream
// returns before the request body arrives; the stream stays open, its
// body says when it has more (OnReady, Ready), its response is written
// from another goroutine, and it ends when the handler's end says: with
// its trailers, or reset when aborted; a client's reset reaches the body.
func TestHTTP2ServerDetachedStreams(t *testing.T) {
	tests := []struct {
		name       string
		abortAfter int
		cancel     bool // the client resets the stream after the first echo
		wantErr    bool // the client's read of the response fails
		wantChunks string
	}{
		{name: "ends with the body", wantChunks: "2"},
		{name: "aborted", abortAfter: 1, wantErr: true},
		{name: "reset by the client", cancel: true, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &detachedEcho{abortAfter: tc.abortAfter, returned: make(chan struct{}), ended: make(chan error, 1)}
			s := startLeanH2(t, h, nil)
			pr, pw := io.Pipe()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+s.addr+"/echo", pr)
			resp, err := h2cClient(t).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			select {
			case <-h.returned:
			case <-time.After(wait):
				t.Fatal("the handler did not return before the body was sent")
			}
			echo := func(s string) error {
				if _, err := pw.Write([]byte(s)); err != nil {
					return err
				}
				got := make([]byte, len(s))
				if _, err := io.ReadFull(resp.Body, got); err != nil {
					return err
				}
				if string(got) != s {
					t.Fatalf("echo: %q, want %q", got, s)
				}
				return nil
			}
			if err := echo("first"); err != nil {
				t.Fatalf("first chunk: %v", err)
			}
			if tc.cancel {
				// The request body fails: Go's client resets the stream.
				pw.CloseWithError(errors.New("the client gives up"))
				cancel()
			}
			var readErr error
			if tc.abortAfter == 0 && !tc.cancel {
				if err := echo("second"); err != nil {
					t.Fatalf("second chunk: %v", err)
				}
				pw.Close()
			}
			_, readErr = io.ReadAll(resp.Body)
			if (readErr != nil) != tc.wantErr {
				t.Fatalf("reading the rest of the response: %v, want an error: %v", readErr, tc.wantErr)
			}
			var se http2.StreamError
			if tc.abortAfter > 0 && (!errors.As(readErr, &se) || se.Code != http2.ErrCodeInternal) {
				t.Errorf("aborted stream: %v, want RST_STREAM INTERNAL_ERROR", readErr)
			}
			select {
			case err := <-h.ended:
				if tc.cancel && err == io.EOF {
					t.Errorf("the body ended with io.EOF after the client's reset; want the reset")
				}
				if !tc.cancel && tc.abortAfter == 0 && err != io.EOF {
					t.Errorf("the body ended with %v, want io.EOF", err)
				}
			case <-time.After(wait):
				t.Fatal("the detached stream never saw its body end")
			}
			if got := resp.Trailer.Get("X-Chunks"); got != tc.wantChunks {
				t.Errorf("trailer X-Chunks %q, want %q", got, tc.wantChunks)
			}
		})
	}
}

// TestHTTP2ServerWorkersAreTheServers: the workers that run handlers are
// the server's, bounded by maxIdleWorkers however many connections it
// serves. A control plane's thousands of clients each open one stream on
// a connection of their own; workers kept per connection would leave one
// waiting per client. A round of streams that run at once on more
// connections than that starts a worker for each; the next round finds
// maxIdleWorkers waiting and starts workers only for the rest.
func TestHTTP2ServerWorkersAreTheServers(t *testing.T) {
	const conns = maxIdleWorkers + 16
	var arrived atomic.Int32
	all := make(chan struct{})
	var round atomic.Pointer[chan struct{}]
	round.Store(&all)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch := *round.Load()
		if arrived.Add(1)%conns == 0 {
			close(ch)
		}
		<-ch // every stream of the round runs at once
	})
	s := startLeanH2(t, h, nil)
	clients := make([]*http.Transport, conns) // a connection each
	for i := range clients {
		clients[i] = h2cClient(t)
	}
	runRound := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, conns)
		for _, c := range clients {
			wg.Go(func() {
				req, _ := http.NewRequest("GET", "http://"+s.addr+"/", nil)
				resp, err := c.RoundTrip(req)
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	idleAfter := func(want int) {
		t.Helper()
		poll.Until(t, wait, "workers waiting", func() error {
			if got := s.s.workers.Idle(); got != want {
				return fmt.Errorf("%d workers wait, want %d", got, want)
			}
			return nil
		})
	}
	runRound()
	idleAfter(maxIdleWorkers)
	if got := s.s.workers.Started(); got != conns {
		t.Fatalf("first round started %d workers, want %d", got, conns)
	}
	next := make(chan struct{})
	round.Store(&next)
	runRound()
	idleAfter(maxIdleWorkers)
	if got, want := s.s.workers.Started(), int64(conns+conns-maxIdleWorkers); got != want {
		t.Fatalf("after the second round %d workers started, want %d", got, want)
	}
}

// TestHTTP2ServerParksIdleReaders: with ParkIdleReaders, a connection
// with nothing to read is waited on by a goroutine that only waits for
// its socket, and its reader ends; what arrives later is read and served
// as before — new requests, and the body of a request whose handler
// waits for it — and a connection that ends while parked ends as any
// other: Go's done is called once.
func TestHTTP2ServerParksIdleReaders(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		buf := make([]byte, 64)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				w.Write(buf[:n])
				w.(http.Flusher).Flush()
			}
			if err != nil {
				return
			}
		}
	})
	srv := NewHTTP2Server(h, HTTP2Options{ParkIdleReaders: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{}, 2)
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		srv.Go(c, func() { ended <- struct{}{} })
	}()
	t.Cleanup(func() { ln.Close(); srv.CloseAll() })
	// parked waits for the connection's reader to be parked, or, when
	// not want, to be gone.
	parked := func(want bool) {
		t.Helper()
		poll.Until(t, wait, "parked reader", func() error {
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 2)
			stacks := b.String()
			waiting := strings.Count(stacks, "listener.(*h2sConn).resume(")
			reading := strings.Count(stacks, "listener.(*h2sConn).readFrames(")
			if want && (waiting != 1 || reading != 0) || !want && waiting+reading != 0 {
				return fmt.Errorf("%d readers parked, %d reading; want parked: %v", waiting, reading, want)
			}
			return nil
		})
	}
	client := h2cClient(t)
	post := func(body io.Reader) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/", body)
		resp, err := client.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i := range 3 {
		resp := post(strings.NewReader(fmt.Sprint("request ", i)))
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(got) != fmt.Sprint("request ", i) {
			t.Fatalf("request %d: %q, %v", i, got, err)
		}
		parked(true)
	}
	// A body that arrives while the reader is parked.
	pr, pw := io.Pipe()
	resp := post(pr)
	for _, chunk := range []string{"first", "second"} {
		parked(true)
		if _, err := pw.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(chunk))
		if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != chunk {
			t.Fatalf("echo of %q: %q, %v", chunk, got, err)
		}
	}
	pw.Close()
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Fatalf("the rest of the echo: %q, %v", rest, err)
	}
	resp.Body.Close()
	parked(true)
	client.CloseIdleConnections() // ends the connection while parked
	select {
	case <-ended:
	case <-time.After(wait):
		t.Fatal("done was not called after the client closed the parked connection")
	}
	parked(false)
	<-accepted
	select {
	case <-ended:
		t.Fatal("done was called twice")
	default:
	}
}
