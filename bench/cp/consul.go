package main

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/bench/internal/procs"
	"github.com/weft-mesh/weft/internal/poll"
)

// consulLimits raises the agent's per-client HTTP connection limit (200 by
// default): the control plane keeps one blocking query, so one
// connection, open per watched service. use_streaming_backend = false
// avoids a Consul 1.14 panic (README, "Consul versions").
const consulLimits = `limits { http_max_conns_per_client = 8192 }
use_streaming_backend = %t`

// startConsul runs a Consul dev agent on free loopback ports; streaming
// turns on its streaming backend for the control plane's health queries.
func startConsul(dir, bin string, streaming bool) (*procs.Proc, *api.Client, string, error) {
	httpPort := freePort()
	addr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	p, err := procs.Start(procs.Spec{Dir: dir, Name: "consul", Args: []string{bin, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-http-port", fmt.Sprint(httpPort), "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-serf-lan-port", fmt.Sprint(freePort()), "-serf-wan-port", fmt.Sprint(freePort()), "-server-port", fmt.Sprint(freePort()),
		"-hcl", fmt.Sprintf(consulLimits, streaming), "-data-dir", filepath.Join(dir, "consul-data")}})
	if err != nil {
		return nil, nil, "", err
	}
	cfg := api.DefaultConfig()
	cfg.Address = addr
	client, err := api.NewClient(cfg)
	if err != nil {
		return p, nil, "", err
	}
	err = poll.Wait(60*time.Second, "consul leader", func() error {
		leader, err := client.Status().Leader()
		if err == nil && leader == "" {
			err = fmt.Errorf("no leader yet")
		}
		return err
	})
	return p, client, addr, err
}

// txnBatch is how many operations one Consul transaction carries (Consul
// accepts at most 128).
const txnBatch = 120

// applyOps writes ops to the catalog in transactions of txnBatch.
func applyOps(c *api.Client, ops api.TxnOps) error {
	for len(ops) > 0 {
		n := min(len(ops), txnBatch)
		if err := applyTxn(c, ops[:n]); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

func applyTxn(c *api.Client, ops api.TxnOps) error {
	ok, resp, _, err := c.Txn().Txn(ops, nil)
	if err != nil {
		return fmt.Errorf("consul txn: %w", err)
	}
	if !ok {
		var msgs []string
		for _, e := range resp.Errors {
			msgs = append(msgs, fmt.Sprintf("op %d: %s", e.OpIndex, e.What))
		}
		return fmt.Errorf("consul txn rolled back: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// registerWorkers is how many catalog registrations run at once.
const registerWorkers = 16

// register writes the mesh-wide proxy-defaults (protocol http, so every
// sidecar has routes), the nodes, the hot service and every instance of
// the topology.
func register(c *api.Client, t topology) error {
	if _, _, err := c.ConfigEntries().Set(&api.ProxyConfigEntry{Kind: api.ProxyDefaults, Name: api.ProxyConfigGlobal,
		Config: map[string]any{"protocol": "http"}}, nil); err != nil {
		return fmt.Errorf("write proxy-defaults: %w", err)
	}
	if err := applyOps(c, t.nodeOps()); err != nil {
		return err
	}
	for j := range t.instances {
		if err := registerAll(c, t.hotRegs(j, api.HealthPassing)); err != nil {
			return err
		}
	}
	work := make(chan [2]int)
	errs := make(chan error, registerWorkers)
	var wg sync.WaitGroup
	for range registerWorkers {
		wg.Go(func() {
			for ij := range work {
				if err := registerAll(c, t.instanceRegs(ij[0], ij[1], api.HealthPassing, 0)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var err error
feed:
	for i := range t.services {
		for j := range t.instances {
			select {
			case work <- [2]int{i, j}:
			case err = <-errs:
				break feed
			}
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	return errors.Join(err, <-errs)
}

// registerAll writes registrations in order.
func registerAll(c *api.Client, regs []*api.CatalogRegistration) error {
	for _, r := range regs {
		if _, err := c.Catalog().Register(r, nil); err != nil {
			return fmt.Errorf("register %s: %w", r.Service.ID, err)
		}
	}
	return nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
