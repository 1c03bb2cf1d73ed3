package main

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// chunkSize is the TCP workload's unit: 64 KiB.
const chunkSize = 64 << 10

// stream measures TCP streaming throughput: on conns connections to the
// echo service at addr, a writer sends 64 KiB chunks back to back while a
// reader takes the echo back, for d. Fortio's TCP load waits for each
// echo before the next write, which measures round trips, not streaming.
// The rate is the chunks echoed per second within d; a connection that
// fails or is closed by the other side before d ends counts as one
// failed unit.
func stream(addr string, conns int, d time.Duration) (loadResult, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		echoed, failed atomic.Int64
		wg             sync.WaitGroup
		dialer         net.Dialer
	)
	chunk := make([]byte, chunkSize)
	start := time.Now()
	for range conns {
		c, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return loadResult{}, err
		}
		context.AfterFunc(ctx, func() { c.Close() })
		var once sync.Once
		fail := func(err error) {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				once.Do(func() { failed.Add(1) })
			}
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := c.Write(chunk); err != nil {
					fail(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			_, err := io.Copy(countWriter{&echoed}, c) // nil at EOF: the peer hung up
			fail(err)
		}()
	}
	time.Sleep(d) // the run's length, not synchronisation
	bytes := echoed.Load()
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	chunks := bytes / chunkSize
	return loadResult{Rate: float64(chunks) / elapsed.Seconds(), OK: chunks, All: chunks + failed.Load()}, nil
}

// countWriter discards what it is given and counts the bytes.
type countWriter struct{ n *atomic.Int64 }

func (w countWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return len(p), nil
}
