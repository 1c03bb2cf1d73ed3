package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/internal/poll"
)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 30 * time.Second

// startWatcher runs a Watcher for cfg until the test ends, logging to t.
func startWatcher(t *testing.T, cfg Config) *Watcher {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if !drainedAndClosed(w.Snapshots()) {
			t.Error("Snapshots channel still open after Run returned")
		}
	})
	return w
}

// drainedAndClosed reports whether ch is closed, after discarding the one
// snapshot it may still hold. It never blocks.
func drainedAndClosed(ch <-chan *catalog.Snapshot) bool {
	for range 2 {
		select {
		case _, open := <-ch:
			if !open {
				return true
			}
		default:
			return false
		}
	}
	return false
}

// fastConfig is a Config with short delays, for tests.
func fastConfig(cfg Config) Config {
	cfg.Debounce = time.Millisecond
	cfg.DebounceMax = 10 * time.Millisecond
	cfg.BackoffBase = time.Millisecond
	cfg.BackoffMax = 20 * time.Millisecond
	if cfg.RemovalGrace == 0 {
		// The endpoint panic guard has tests of its own; elsewhere
		// removals apply at once.
		cfg.RemovalGrace = -1
	}
	return cfg
}

// waitSnapshot receives snapshots until one satisfies ok and returns it,
// failing the test after waitTimeout. It checks that versions increase.
func waitSnapshot(t *testing.T, w *Watcher, what string, ok func(*catalog.Snapshot) bool) *catalog.Snapshot {
	t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	var last *catalog.Snapshot
	for {
		select {
		case snap, open := <-w.Snapshots():
			if !open {
				t.Fatalf("waiting for a snapshot with %s: channel closed", what)
			}
			if last != nil && snap.Version <= last.Version {
				t.Fatalf("snapshot version %d after %d", snap.Version, last.Version)
			}
			if cur := w.Current(); cur == nil || cur.Version < snap.Version {
				t.Fatalf("Current() = %v, behind the received snapshot %d", cur, snap.Version)
			}
			last = snap
			if ok(snap) {
				return snap
			}
		case <-timeout.C:
			t.Fatalf("no snapshot with %s within %v; last: %s", what, waitTimeout, describe(last))
		}
	}
}

// expectNoSnapshot fails the test if a snapshot is waiting on the channel.
func expectNoSnapshot(t *testing.T, w *Watcher) {
	t.Helper()
	select {
	case snap := <-w.Snapshots():
		t.Fatalf("unexpected snapshot: %s", describe(snap))
	default:
	}
}

// waitErrors waits until the watcher has counted n more failed requests.
func waitErrors(t *testing.T, w *Watcher, n uint64) {
	t.Helper()
	want := w.Stats().WatchErrors + n
	poll.UntilTrue(t, waitTimeout, "watch errors", func() bool { return w.Stats().WatchErrors >= want })
}

func describe(s *catalog.Snapshot) string {
	if s == nil {
		return "none"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version %d, proxies %v, endpoints {", s.Version, slices.Sorted(maps.Keys(s.Proxies)))
	for _, name := range slices.Sorted(maps.Keys(s.Endpoints)) {
		fmt.Fprintf(&b, " %s:", name)
		for _, e := range s.Endpoints[name] {
			fmt.Fprintf(&b, " %s=%v", e.ProxyID, e.Health)
		}
	}
	fmt.Fprintf(&b, " }, service-defaults %d, proxy-defaults %+v", len(s.ServiceDefaults), s.ProxyDefaults)
	return b.String()
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
