package main

import (
	"fmt"
	"math/rand/v2"

	"github.com/hashicorp/consul/api"
)

// change is one write (to Consul or the control plane) and the sidecars
// whose configuration it changes.
type change struct {
	what     string
	apply    func(*api.Client) error
	affected []string
	// types are the resource types that carry the change: only ACKs of
	// these count. Empty means any type.
	types []string
	// acks is how many such ACKs each affected client sends for the change
	// (a change made in steps pushes once per step); 0 means 1.
	acks int
	// done, when set, runs once the change is measured.
	done func()
}

// planChanges returns n changes cycling through: an instance turns
// critical, it turns passing again, a new instance is added to a service,
// and that instance is removed. Services are picked at random (seeded).
func planChanges(t topology, n int, seed uint64) []change {
	rng := rand.New(rand.NewPCG(seed, seed))
	var out []change
	var svc int
	for k := range n {
		switch k % 4 {
		case 0:
			svc = rng.IntN(t.services)
			out = append(out, change{what: fmt.Sprintf("%s critical", instanceID(svc, 0)),
				apply: txn(t.checkOp(svc, 0, api.HealthCritical)), affected: t.downstreams(svc)})
		case 1:
			out = append(out, change{what: fmt.Sprintf("%s passing", instanceID(svc, 0)),
				apply: txn(t.checkOp(svc, 0, api.HealthPassing)), affected: t.downstreams(svc)})
		case 2:
			svc = rng.IntN(t.services)
			out = append(out, change{what: fmt.Sprintf("%s added", instanceID(svc, t.instances)),
				apply: catalogRegister(t.instanceRegs(svc, t.instances, api.HealthPassing, 0)), affected: t.downstreams(svc)})
		case 3:
			out = append(out, change{what: fmt.Sprintf("%s removed", instanceID(svc, t.instances)),
				apply: txn(t.deregisterOps(svc, t.instances)...), affected: t.downstreams(svc)})
		}
	}
	return out
}

func txn(ops ...*api.TxnOp) func(*api.Client) error {
	return func(c *api.Client) error { return applyTxn(c, ops) }
}

func catalogRegister(regs []*api.CatalogRegistration) func(*api.Client) error {
	return func(c *api.Client) error { return registerAll(c, regs) }
}
