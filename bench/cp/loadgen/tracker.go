package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// typeCount is how many resource types a client must ACK to be synced:
// listeners, clusters, endpoints, routes and secrets.
const typeCount = 5

// client is what the load generator knows of one simulated proxy. Its
// stream goroutine writes it; the HTTP API reads it.
type client struct {
	id string

	mu     sync.Mutex
	acked  map[string]string // version last ACKed, by type URL
	recent []ackEvent        // the last maxRecent ACKs, oldest first
	acks   int
}

// ackEvent is one ACK the client sent.
type ackEvent struct {
	at      time.Time
	typeURL string
	version string
}

const maxRecent = 64

func newClient(id string) *client {
	return &client{id: id, acked: make(map[string]string, typeCount)}
}

// ack records that the client ACKed version of typeURL at at.
func (c *client) ack(typeURL, version string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acked[typeURL] = version
	c.acks++
	if len(c.recent) == maxRecent {
		copy(c.recent, c.recent[1:])
		c.recent = c.recent[:maxRecent-1]
	}
	c.recent = append(c.recent, ackEvent{at: at, typeURL: typeURL, version: version})
}

// synced reports whether every resource type has been ACKed at least once.
func (c *client) synced() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.acked) == typeCount
}

// since returns the ACKs sent after t, oldest first.
func (c *client) since(t time.Time) []ackEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ackEvent
	for _, e := range c.recent {
		if e.at.After(t) {
			out = append(out, e)
		}
	}
	return out
}

// versions returns a copy of the ACKed versions by type URL.
func (c *client) versions() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.acked))
	for k, v := range c.acked {
		out[k] = v
	}
	return out
}

// totals are the load generator's counters over every client.
type totals struct {
	responses  atomic.Int64
	bytes      atomic.Int64 // wire bytes of responses received
	streamErrs atomic.Int64 // streams that failed and were reopened
}
