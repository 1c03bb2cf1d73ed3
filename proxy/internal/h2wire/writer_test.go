package h2wire

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

// blockingConn records writes; the first one waits for release.
type blockingConn struct {
	mu      sync.Mutex
	writes  [][]byte
	entered chan struct{}
	release chan struct{}
	err     error
}

func (c *blockingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	first := len(c.writes) == 0
	c.writes = append(c.writes, bytes.Clone(p))
	c.mu.Unlock()
	if first && c.release != nil {
		close(c.entered)
		<-c.release
	}
	return len(p), c.err
}

// TestWriterGroupCommit: flushes that come while a write is in progress
// join the next write; nothing is lost or reordered.
func TestWriterGroupCommit(t *testing.T) {
	c := &blockingConn{entered: make(chan struct{}), release: make(chan struct{})}
	w := NewWriter(c)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Lock()
		w.Write([]byte("a"))
		w.FlushLocked() // writes "a", waits in the connection
		w.Unlock()
	}()
	<-c.entered
	for _, s := range []string{"b", "c", "d"} {
		w.Lock()
		w.Write([]byte(s))
		if err := w.FlushLocked(); err != nil { // joins the flush in progress
			t.Fatal(err)
		}
		w.Unlock()
	}
	close(c.release)
	<-done
	var got []string
	for _, p := range c.writes {
		got = append(got, string(p))
	}
	if len(got) != 2 || got[0] != "a" || got[1] != "bcd" {
		t.Errorf("writes %q, want [a bcd]", got)
	}
}

func TestWriterFlushesLargeBuffersAndKeepsErrors(t *testing.T) {
	boom := errors.New("boom")
	c := &blockingConn{}
	w := NewWriter(c)
	w.Lock()
	w.Write(make([]byte, flushAt)) // past flushAt: written at once, the lock held
	if len(c.writes) != 1 {
		t.Errorf("%d writes after appending %d bytes, want 1", len(c.writes), flushAt)
	}
	c.err = boom
	w.Write([]byte("x"))
	if err := w.FlushLocked(); !errors.Is(err, boom) {
		t.Errorf("FlushLocked = %v, want the write error", err)
	}
	if _, err := w.Write([]byte("y")); !errors.Is(err, boom) {
		t.Errorf("after a failed write: Write = %v; want the error kept", err)
	}
	if err := w.FlushLocked(); !errors.Is(err, boom) {
		t.Errorf("after a failed write: FlushLocked = %v; want the error kept", err)
	}
	w.Unlock()
}

// TestWriterSyncWaitsForTheFlushInProgress: frames that joined another
// goroutine's flush are on the connection when SyncLocked returns, where
// FlushLocked returns at once.
func TestWriterSyncWaitsForTheFlushInProgress(t *testing.T) {
	c := &blockingConn{entered: make(chan struct{}), release: make(chan struct{})}
	w := NewWriter(c)
	go func() {
		w.Lock()
		w.Write([]byte("goaway"))
		w.FlushLocked() // waits in the connection until released
		w.Unlock()
	}()
	<-c.entered
	synced := make(chan []string)
	go func() {
		w.Lock()
		w.Write([]byte("last frames"))
		w.FlushLocked() // joins the flush in progress
		w.SyncLocked()
		w.Unlock()
		c.mu.Lock()
		defer c.mu.Unlock()
		var got []string
		for _, p := range c.writes {
			got = append(got, string(p))
		}
		synced <- got
	}()
	select {
	case got := <-synced:
		t.Fatalf("SyncLocked returned while the flush holding its frames was still writing (writes %q)", got)
	case <-time.After(50 * time.Millisecond): // it must still be waiting: nothing can release it but us
	}
	close(c.release)
	if got := <-synced; len(got) != 2 || got[1] != "last frames" {
		t.Errorf("writes when SyncLocked returned: %q, want [goaway, last frames]", got)
	}
}
