package xds

import (
	"maps"
	"sync"
	"time"
)

// Status is the client's connection state, for admin and metrics.
type Status struct {
	// Connected reports whether an ADS stream is currently open.
	Connected bool `json:"connected"`
	// Server is the address of the current (or last) management server.
	Server string `json:"server,omitempty"`
	// Since is when Connected last changed.
	Since time.Time `json:"since"`
	// LastError is why the last stream ended, if it did.
	LastError string `json:"last_error,omitempty"`
	// Types holds per type URL the accepted version and last ACK/NACK.
	Types map[string]TypeStatus `json:"types"`
}

// TypeStatus is the ACK/NACK history of one resource type.
type TypeStatus struct {
	// Version is the last ACKed version.
	Version string `json:"version"`
	// Subscribed lists the subscribed names; empty for wildcard types.
	Subscribed []string `json:"subscribed,omitempty"`
	LastAck    *Event   `json:"last_ack,omitempty"`
	LastNack   *Event   `json:"last_nack,omitempty"`
}

// Event records one ACK or NACK sent to the management server.
type Event struct {
	Version string    `json:"version"`
	Nonce   string    `json:"nonce"`
	Error   string    `json:"error,omitempty"`
	Time    time.Time `json:"time"`
}

// statusBoard guards Status. It is written by the client goroutine and
// read by admin handlers; Events are replaced, never modified.
type statusBoard struct {
	mu sync.Mutex
	s  Status
}

func (b *statusBoard) snapshot() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.s
	s.Types = maps.Clone(b.s.Types)
	return s
}

func (b *statusBoard) setConnected(server string, connected bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.s.Connected != connected || b.s.Since.IsZero() {
		b.s.Since = time.Now()
	}
	b.s.Connected, b.s.Server = connected, server
	if err != nil {
		b.s.LastError = err.Error()
	}
}

func (b *statusBoard) update(typeURL string, fn func(*TypeStatus)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.s.Types == nil {
		b.s.Types = make(map[string]TypeStatus)
	}
	ts := b.s.Types[typeURL]
	fn(&ts)
	b.s.Types[typeURL] = ts
}

func (b *statusBoard) ack(typeURL, version, nonce string) {
	b.update(typeURL, func(ts *TypeStatus) {
		ts.Version = version
		ts.LastAck = &Event{Version: version, Nonce: nonce, Time: time.Now()}
	})
}

func (b *statusBoard) nack(typeURL, version, nonce, reason string) {
	b.update(typeURL, func(ts *TypeStatus) {
		ts.LastNack = &Event{Version: version, Nonce: nonce, Error: reason, Time: time.Now()}
	})
}

func (b *statusBoard) subscribed(typeURL string, names []string) {
	b.update(typeURL, func(ts *TypeStatus) { ts.Subscribed = names })
}
