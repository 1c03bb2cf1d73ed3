package proxy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weft-mesh/weft/proxy/admin"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/listener"
	"github.com/weft-mesh/weft/proxy/xds"
)

var _ admin.Source = (*Proxy)(nil)

// apply is the xDS Applier: compile, bind new listeners, then install
// clusters and listeners. A compile or bind error changes nothing and is
// returned for the NACK. It runs on the xDS client's goroutine.
func (p *Proxy) apply(s xds.State) (xds.Subscriptions, error) {
	rt, err := config.Compile(s)
	if err != nil {
		return xds.Subscriptions{}, err
	}
	plan, err := p.listeners.Prepare(rt)
	if err != nil {
		return xds.Subscriptions{}, err
	}
	p.clusters.Update(rt.Clusters)
	plan.Commit()
	if p.readiness.observe(s, rt, time.Now()) {
		p.log.Info("ready: first configuration applied", "listeners", len(rt.Listeners), "clusters", len(rt.Clusters))
	}
	return rt.Subscriptions, nil
}

// Ready implements admin.Source: nil once the first configuration is
// applied, its listeners bound and the routes and endpoints it names
// received (or initialFetchTimeout passed), until shutdown starts.
func (p *Proxy) Ready() error {
	state, status := p.xds.State(), p.xds.Status()
	return p.readiness.check(time.Now(), func() error { return waitingForXDS(state, status) })
}

// waitingForXDS explains which of the first listeners and clusters are
// missing and why.
func waitingForXDS(state xds.State, status xds.Status) error {
	var missing []string
	for _, t := range []struct {
		name, url string
		got       bool
	}{
		{"listeners", xds.ListenerType, state.Listeners.Received},
		{"clusters", xds.ClusterType, state.Clusters.Received},
	} {
		if t.got {
			continue
		}
		if nack := status.Types[t.url].LastNack; nack != nil {
			missing = append(missing, fmt.Sprintf("%s (version %q rejected: %s)", t.name, nack.Version, nack.Error))
		} else {
			missing = append(missing, t.name)
		}
	}
	reason := "waiting for the first xDS " + strings.Join(missing, " and ")
	if !status.Connected {
		reason += fmt.Sprintf("; not connected to a management server (last error: %s)", orNone(status.LastError))
	}
	return errors.New(reason)
}

// XDS implements admin.Source.
func (p *Proxy) XDS() (xds.State, xds.Status) { return p.xds.State(), p.xds.Status() }

// Listeners implements admin.Source.
func (p *Proxy) Listeners() []listener.Info { return p.listeners.Listeners() }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
