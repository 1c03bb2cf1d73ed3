package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/bench/internal/procs"
)

// Measurement windows: how long a change may take before it counts as
// lost, and how long the ACKs must stay quiet before a change is done.
const (
	convergeTimeout = 15 * time.Second
	quietPeriod     = 500 * time.Millisecond
	ackPoll         = 20 * time.Millisecond
)

// result is what one change measured.
type result struct {
	change      change
	converged   time.Duration   // write → last affected client's last ACK
	perClient   []time.Duration // write → each affected client's last ACK
	missing     []string        // affected clients that ACKed nothing
	unaffected  int             // other clients that ACKed something
	typesACKed  map[string]int  // the affected clients' ACKs in the window, by type URL
	bytes       int64           // bytes the load generator received
	consulWrite time.Duration
}

// measure applies one change and waits until every affected client has
// ACKed it (converged) and the ACKs have stopped.
func measure(c *api.Client, lg *loadgenAPI, ch change) (result, error) {
	r := result{change: ch}
	before, err := lg.status()
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	if err := ch.apply(c); err != nil {
		return r, fmt.Errorf("%s: %w", ch.what, err)
	}
	r.consulWrite = time.Since(t0)
	if ch.done != nil {
		defer ch.done()
	}

	var acks map[string][]lgACK
	deadline := t0.Add(convergeTimeout)
	events, lastGrowth := 0, time.Now()
	for {
		if acks, err = lg.acksSince(t0); err != nil {
			return r, err
		}
		n := countACKs(acks)
		if n != events {
			events, lastGrowth = n, time.Now()
		}
		allIn := !slices.ContainsFunc(ch.affected, func(id string) bool {
			_, ok := converged(acks[id], ch.types, ch.acks)
			return !ok
		})
		if allIn && time.Since(lastGrowth) >= quietPeriod || time.Now().After(deadline) {
			break
		}
		time.Sleep(ackPoll) // polling interval, not synchronisation
	}
	after, err := lg.status()
	if err != nil {
		return r, err
	}
	r.bytes = after.Bytes - before.Bytes
	affected := map[string]bool{}
	r.typesACKed = countTypes(acks, ch.affected)
	for _, id := range ch.affected {
		affected[id] = true
		at, ok := converged(acks[id], ch.types, ch.acks)
		if !ok {
			r.missing = append(r.missing, id)
			continue
		}
		d := time.Unix(0, at).Sub(t0)
		r.perClient = append(r.perClient, d)
		r.converged = max(r.converged, d)
	}
	for id := range acks {
		if !affected[id] {
			r.unaffected++
		}
	}
	if len(r.missing) > 0 {
		r.converged = convergeTimeout
	}
	return r, nil
}

// converged returns when a client last ACKed a resource of one of types
// (any type when types is empty), given its ACKs since a change, and
// whether it sent at least need (at least 1) such ACKs: the time the
// client has the change.
func converged(acks []lgACK, types []string, need int) (last int64, ok bool) {
	n := 0
	for _, a := range acks {
		if len(types) == 0 || slices.Contains(types, a.Type) {
			n++
			last = max(last, a.At)
		}
	}
	return last, n >= max(need, 1)
}

// countTypes counts the ACKs of the given clients by type URL.
func countTypes(acks map[string][]lgACK, clients []string) map[string]int {
	out := map[string]int{}
	for _, id := range clients {
		for _, a := range acks[id] {
			out[a.Type]++
		}
	}
	return out
}

func countACKs(acks map[string][]lgACK) int {
	n := 0
	for _, a := range acks {
		n += len(a)
	}
	return n
}

// idleWindow is how long the control plane's CPU use is measured with
// every client synced and nothing changing.
const idleWindow = 5 * time.Second

// idleCPURate measures the control plane's CPU use, in CPU seconds per
// second, while nothing changes: the keepalives and blocking queries of a
// synced mesh. The CPU of a change is what it uses above this rate.
func idleCPURate(cp *procs.Proc) (float64, error) {
	before, err := cp.CPUSeconds()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	time.Sleep(idleWindow) // the measurement window, not synchronisation
	after, err := cp.CPUSeconds()
	if err != nil {
		return 0, err
	}
	return (after - before) / time.Since(start).Seconds(), nil
}

// percentile returns the p-th percentile (0–100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}
