package consultest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// WaitTimeout bounds the waits of this package's helpers. It is longer than
// the 10 s interval of the "Connect Sidecar Listening" check Consul adds to
// every sidecar_service, since that check must run once before a sidecar
// counts as passing.
const WaitTimeout = 60 * time.Second

// WaitForPassing waits until exactly n sidecar (or connect-native) instances
// of service pass all their checks, per /v1/health/connect/<service>?passing,
// and returns them. It fails the test after WaitTimeout.
//
// It waits with Consul blocking queries, so it returns as soon as health
// changes. Use it to wait for a sidecar to become ready, or, with a smaller
// n, for a failed instance to drop out.
func WaitForPassing(t testing.TB, client *api.Client, service string, n int) []*api.ServiceEntry {
	t.Helper()
	var got []*api.ServiceEntry
	err := waitFor(func(q *api.QueryOptions) (uint64, bool, error) {
		entries, meta, err := client.Health().Connect(service, "", true, q)
		if err != nil {
			return 0, false, err
		}
		got = entries
		return meta.LastIndex, len(entries) == n, nil
	})
	if err != nil {
		t.Fatalf("consultest: waiting for %d passing instances of %q (have %d): %v%s",
			n, service, len(got), err, notPassing(client, service))
	}
	return got
}

// notPassing describes every check of service's sidecar instances that is
// not passing, for the message of a failed wait.
func notPassing(client *api.Client, service string) string {
	entries, _, err := client.Health().Connect(service, "", false, nil)
	if err != nil {
		return fmt.Sprintf("\n(listing checks: %v)", err)
	}
	var b strings.Builder
	for _, e := range entries {
		for _, c := range e.Checks {
			if c.Status != api.HealthPassing {
				fmt.Fprintf(&b, "\n  %s on %s: %s %q: %s", e.Service.ID, c.Node, c.Status, c.Name, c.Output)
			}
		}
	}
	if b.Len() == 0 {
		return "\n(every check listed passes now)"
	}
	return "\nchecks not passing:" + b.String()
}

// waitFor runs a blocking query until it reports done, an error persists
// until the deadline, or WaitTimeout passes. query receives the options to
// use and returns the response's index and whether the wait is over.
func waitFor(query func(q *api.QueryOptions) (index uint64, done bool, err error)) error {
	deadline := time.Now().Add(WaitTimeout)
	var index uint64
	var lastErr error
	for {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			if lastErr != nil {
				return fmt.Errorf("timed out after %v: %w", WaitTimeout, lastErr)
			}
			return fmt.Errorf("timed out after %v", WaitTimeout)
		}
		q := &api.QueryOptions{WaitIndex: index, WaitTime: min(remaining, 5*time.Second)}
		next, done, err := query(q)
		switch {
		case err != nil:
			lastErr = err
			index = 0
			retryPause(deadline)
		case done:
			return nil
		case next < index:
			index = 0 // the agent restarted; start over
		default:
			index = next
		}
	}
}

// retryPause waits a moment before a failed query is retried, never past
// the deadline.
func retryPause(deadline time.Time) {
	timer := time.NewTimer(max(min(100*time.Millisecond, time.Until(deadline)), 0))
	defer timer.Stop()
	<-timer.C
}
