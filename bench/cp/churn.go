package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/hashicorp/consul/api"
)

// The churn scenario: churnShare of all instances re-registered, evenly
// spread over churnWindow.
const (
	churnShare  = 0.05
	churnWindow = 10 * time.Second
)

// churnWrite is one re-registration: instance j of service svc, whose new
// registration was sent at at.
type churnWrite struct {
	svc, j int
	at     time.Time
}

// pickChurn picks the instances to re-register: churnShare of all,
// at least one, distinct, at random (seeded).
func pickChurn(t topology, seed uint64) [][2]int {
	total := t.services * t.instances
	n := max(1, int(float64(total)*churnShare+0.5))
	rng := rand.New(rand.NewPCG(seed, seed^0x6368_7572_6e))
	var out [][2]int
	for _, k := range rng.Perm(total)[:n] {
		out = append(out, [2]int{k / t.instances, k % t.instances})
	}
	return out
}

// churnAffected maps every sidecar whose configuration names a
// re-registered service to the time of the last re-registration among its
// upstreams: from then on its endpoints (EDS) must change once more.
// The re-registered instances' own sidecars are not in it: their own
// upstreams did not change.
func churnAffected(t topology, writes []churnWrite) map[string]time.Time {
	out := map[string]time.Time{}
	for _, w := range writes {
		for _, id := range t.downstreams(w.svc) {
			if w.at.After(out[id]) {
				out[id] = w.at
			}
		}
	}
	return out
}

// churn re-registers the picked instances like a rolling deploy: each is
// deregistered and registered again on another port, one every
// churnWindow/n. It then waits, as measure does, until every affected
// sidecar has ACKed endpoints after its last upstream's re-registration.
// A sidecar's convergence is from that re-registration to its last
// endpoints ACK; the result's converged is the slowest sidecar's. The
// re-registered instances' own sidecars, whose registration changed, are
// neither affected nor counted as unaffected clients pushed.
func (b *bench) churn() (result, error) {
	t := b.flags.topo
	picked := pickChurn(t, b.flags.seed)
	ch := change{what: fmt.Sprintf("%d instances re-registered in %v", len(picked), churnWindow), types: []string{resourcev3.EndpointType}}
	r := result{change: ch}
	before, err := b.lg.status()
	if err != nil {
		return r, err
	}
	start := time.Now()
	writes, err := b.reregister(picked)
	if err != nil {
		return r, err
	}
	r.consulWrite = time.Since(start)
	refs := churnAffected(t, writes)
	for id := range refs {
		r.change.affected = append(r.change.affected, id)
	}
	acks, err := b.waitChurn(start, refs)
	if err != nil {
		return r, err
	}
	after, err := b.lg.status()
	if err != nil {
		return r, err
	}
	r.bytes = after.Bytes - before.Bytes
	r.typesACKed = countTypes(acks, r.change.affected)
	for id, ref := range refs {
		at, ok := converged(acksAfter(acks[id], ref), ch.types, 1)
		if !ok {
			r.missing = append(r.missing, id)
			continue
		}
		d := time.Unix(0, at).Sub(ref)
		r.perClient = append(r.perClient, d)
		r.converged = max(r.converged, d)
	}
	own := map[string]bool{}
	for _, p := range picked {
		own[sidecarID(p[0], p[1])] = true
	}
	for id := range acks {
		if _, ok := refs[id]; !ok && !own[id] {
			r.unaffected++
		}
	}
	if len(r.missing) > 0 {
		r.converged = convergeTimeout
	}
	printResult(1, r)
	return r, nil
}

// reregister deregisters and registers each picked instance, paced evenly
// over churnWindow, and returns when each registration was sent.
func (b *bench) reregister(picked [][2]int) ([]churnWrite, error) {
	t := b.flags.topo
	every := churnWindow / time.Duration(len(picked))
	start := time.Now()
	var writes []churnWrite
	for k, p := range picked {
		if d := time.Until(start.Add(time.Duration(k) * every)); d > 0 {
			time.Sleep(d) // pacing the deploy, not synchronisation
		}
		if err := applyTxn(b.consul, t.deregisterOps(p[0], p[1])); err != nil {
			return writes, err
		}
		at := time.Now()
		if err := registerAll(b.consul, t.instanceRegs(p[0], p[1], api.HealthPassing, 1)); err != nil {
			return writes, err
		}
		writes = append(writes, churnWrite{svc: p[0], j: p[1], at: at})
	}
	return writes, nil
}

// waitChurn polls the ACKs since start until every affected sidecar has
// ACKed endpoints after its reference time and the ACKs have been quiet
// for quietPeriod, or convergeTimeout after the last write.
func (b *bench) waitChurn(start time.Time, refs map[string]time.Time) (map[string][]lgACK, error) {
	deadline := time.Now().Add(convergeTimeout)
	events, lastGrowth := 0, time.Now()
	types := []string{resourcev3.EndpointType}
	for {
		acks, err := b.lg.acksSince(start)
		if err != nil {
			return nil, err
		}
		if n := countACKs(acks); n != events {
			events, lastGrowth = n, time.Now()
		}
		allIn := true
		for id, ref := range refs {
			if _, ok := converged(acksAfter(acks[id], ref), types, 1); !ok {
				allIn = false
				break
			}
		}
		if allIn && time.Since(lastGrowth) >= quietPeriod || time.Now().After(deadline) {
			return acks, nil
		}
		time.Sleep(ackPoll) // polling interval, not synchronisation
	}
}

// acksAfter returns the ACKs sent after t.
func acksAfter(acks []lgACK, t time.Time) []lgACK {
	var out []lgACK
	for _, a := range acks {
		if a.At > t.UnixNano() {
			out = append(out, a)
		}
	}
	return out
}
