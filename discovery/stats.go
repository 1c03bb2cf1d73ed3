package discovery

import (
	"sync/atomic"
	"time"
)

// Stats are counters of a Watcher for monitoring.
type Stats struct {
	// WatchErrors counts failed Consul requests since the Watcher was made.
	WatchErrors uint64
	// LastSuccess is when a Consul request last succeeded; zero if never.
	LastSuccess time.Time
	// Watches is the number of blocking queries running now.
	Watches int
	// Version is the version of the latest published snapshot; 0 if none.
	Version uint64
	// Pending is the number of watches that have not answered yet; a
	// snapshot is first published when it reaches 0.
	Pending int
	// RemovalsHeld counts the removals the endpoint panic guard held
	// (Config.RemovalShare).
	RemovalsHeld uint64
	// HeldServices is the number of services whose removals are held now,
	// by the panic guard or through a Consul resync.
	HeldServices int
}

// stats holds a Watcher's counters; it is safe for concurrent use.
type stats struct {
	errors      atomic.Uint64
	lastSuccess atomic.Int64 // UnixNano; 0 if never
	watches     atomic.Int64
	version     atomic.Uint64
	pending     atomic.Int64
	// removalsHeld and held are written by the coordinator goroutine.
	removalsHeld atomic.Uint64
	held         atomic.Int64
}

func (s *stats) recordError() { s.errors.Add(1) }

func (s *stats) recordSuccess() { s.lastSuccess.Store(time.Now().UnixNano()) }

func (s *stats) snapshot() Stats {
	out := Stats{
		WatchErrors: s.errors.Load(),
		Watches:     int(s.watches.Load()),
		Version:     s.version.Load(),
		Pending:     int(s.pending.Load()),

		RemovalsHeld: s.removalsHeld.Load(),
		HeldServices: int(s.held.Load()),
	}
	if ns := s.lastSuccess.Load(); ns != 0 {
		out.LastSuccess = time.Unix(0, ns)
	}
	return out
}
