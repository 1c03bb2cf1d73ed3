package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/hashicorp/consul/api"
)

// fanOutFlips is how many health flips of the hot service's instances the
// fan-out scenario measures.
const fanOutFlips = 8

// planFanOut flips the health of the hot service's instances in turn:
// instance 0 critical, passing, instance 1 critical, passing, … Every
// sidecar has the hot service as an upstream, so every one is affected; it
// has the change when it ACKs new endpoints (EDS).
func planFanOut(t topology, clients []string) []change {
	var out []change
	for k := range fanOutFlips {
		j, status := k/2%t.instances, api.HealthCritical
		if k%2 == 1 {
			status = api.HealthPassing
		}
		out = append(out, change{what: fmt.Sprintf("%s %s", hotInstanceID(j), status),
			apply: txn(t.hotCheckOp(j, status)), affected: clients, types: []string{resourcev3.EndpointType}})
	}
	return out
}

// planMeshWide is a CA root rotation through the control plane's admin API
// (what `weft ca rotate` calls), then a wildcard deny intention (* → *)
// added and removed. Every sidecar is affected by each.
//
// The rotation's first request adds the new root to every trust bundle,
// waits for every sidecar to ACK it, then switches signing to the new
// root, which reorders the bundle: two pushes of the roots secret (SDS),
// so a sidecar has the change at its second secret ACK. The control plane
// then waits for every sidecar to fetch a leaf under the new root, which
// the load generator's clients never do; the benchmark ends that request
// and sends another, which resumes the rotation: the old root leaves every
// bundle, one more secret push. An intention changes the RBAC of every
// sidecar's inbound listener; any ACK after it counts.
func planMeshWide(adminAddr string, clients []string) []change {
	var first, second *rotation
	secret := []string{resourcev3.SecretType}
	wildcard := &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: "*",
		Sources: []*api.SourceIntention{{Name: "*", Action: api.IntentionActionDeny}}}
	return []change{
		{what: "CA root added, then signing", affected: clients, types: secret, acks: 2,
			apply: func(*api.Client) (err error) {
				first, err = startRotation(adminAddr)
				if err == nil {
					err = first.waitLine("signing with the new root")
				}
				return err
			},
			done: func() { first.stop() }},
		{what: "CA old root retired", affected: clients, types: secret,
			apply: func(*api.Client) (err error) {
				second, err = startRotation(adminAddr)
				if err == nil {
					err = second.waitLine("retiring the old root")
				}
				return err
			},
			done: func() { second.stop() }},
		{what: "intention * → * deny added", affected: clients,
			apply: func(c *api.Client) error {
				_, _, err := c.ConfigEntries().Set(wildcard, nil)
				return err
			}},
		{what: "intention * → * deny removed", affected: clients,
			apply: func(c *api.Client) error {
				_, err := c.ConfigEntries().Delete(api.ServiceIntentions, "*", nil)
				return err
			}},
	}
}

// rotation is one POST /ca/rotate, whose answer streams a line per step.
type rotation struct {
	cancel context.CancelFunc
	lines  chan string
}

// rotationStepTimeout bounds the wait for one step's progress line.
const rotationStepTimeout = convergeTimeout

func startRotation(adminAddr string) (*rotation, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+adminAddr+"/ca/rotate?timeout=10m", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("rotate: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("rotate: %s", resp.Status)
	}
	r := &rotation{cancel: cancel, lines: make(chan string)}
	go func() {
		defer resp.Body.Close()
		defer close(r.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case r.lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	return r, nil
}

// waitLine waits for a progress line starting with prefix.
func (r *rotation) waitLine(prefix string) error {
	timeout := time.After(rotationStepTimeout)
	for {
		select {
		case line, ok := <-r.lines:
			switch {
			case !ok:
				return fmt.Errorf("rotate: the answer ended before %q", prefix)
			case strings.HasPrefix(line, "error:"):
				return fmt.Errorf("rotate: %s", line)
			case strings.HasPrefix(line, prefix):
				return nil
			}
		case <-timeout:
			return fmt.Errorf("rotate: no %q after %v", prefix, rotationStepTimeout)
		}
	}
}

// stop ends the request; the control plane stops waiting, and the next
// request resumes the rotation where it stands.
func (r *rotation) stop() {
	if r != nil {
		r.cancel()
	}
}
