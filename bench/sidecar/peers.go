package main

import (
	"fmt"

	"github.com/weft-mesh/weft/bench/internal/procs"
	"github.com/weft-mesh/weft/bench/internal/results"
)

// A peer carries traffic between the load and a backend: nothing
// (direct), or a pair of proxies, client side and server side, as two
// sidecars would be.
type peer interface {
	// describe names the peer and the settings it runs with that differ
	// from its defaults.
	describe() results.Peer
	// serves reports whether the peer takes part in the workloads on b.
	serves(b backend) bool
	// start starts the peer's proxies in front of the backend b and
	// returns the address the load goes to, and the proxy processes,
	// client side first.
	start(b backend) (addr string, ps []*procs.Proc, err error)
	// controlPlane is the process configuring the peer's proxies that
	// is not one of them, measured apart (Weft's control plane), or nil.
	controlPlane() *procs.Proc
}

// A restarter can start a fresh client-side proxy in front of the server
// side start(httpBackend) started, so that its readiness is measured.
type restarter interface {
	// startClient starts it; url is requested through it, and probe is
	// its readiness probe's URL ("" when it has none).
	startClient() (p *procs.Proc, url, probe string, err error)
}

// direct is the baseline without a proxy.
type direct struct{ e *env }

func (d direct) describe() results.Peer {
	return results.Peer{ID: results.PeerDirect, Name: results.PeerNames[results.PeerDirect], NonDefault: []string{}}
}
func (direct) serves(backend) bool       { return true }
func (direct) controlPlane() *procs.Proc { return nil }
func (d direct) start(b backend) (string, []*procs.Proc, error) {
	return d.e.backends[b], nil, nil
}

// consulPair is Consul's built-in proxy (`consul connect proxy`) on both
// sides: L4, mTLS with certificates from Consul's CA.
type consulPair struct {
	e *env
	// ready is the client service whose fresh proxy readiness measures,
	// and readyURL the URL through its upstream.
	ready, readyURL string
}

func (c *consulPair) describe() results.Peer {
	return results.Peer{ID: results.PeerConsul, Name: results.PeerNames[results.PeerConsul], NonDefault: []string{}}
}
func (*consulPair) serves(backend) bool       { return true }
func (*consulPair) controlPlane() *procs.Proc { return nil }

func (c *consulPair) start(b backend) (string, []*procs.Proc, error) {
	prefix := "consul-" + b.String()
	reg, err := c.e.register(prefix, "tcp", c.e.backends[b])
	if err != nil {
		return "", nil, err
	}
	var ps []*procs.Proc
	for _, id := range []string{reg.client, reg.server} {
		p, err := c.proxy(id)
		if err != nil {
			return "", nil, err
		}
		ps = append(ps, p)
	}
	if b == httpBackend {
		upstream := port()
		c.ready, c.readyURL = "ready-consul", fmt.Sprintf("http://127.0.0.1:%d/", upstream)
		if err := c.e.registerClient(c.ready, "api-"+prefix, upstream); err != nil {
			return "", nil, err
		}
	}
	return loopback(reg.upstream), ps, nil
}

func (c *consulPair) proxy(serviceID string) (*procs.Proc, error) {
	return c.e.start("consul-proxy-"+serviceID, nil, c.e.bin.consul, "connect", "proxy", "-sidecar-for", serviceID, "-http-addr", c.e.consulAddr)
}

func (c *consulPair) startClient() (*procs.Proc, string, string, error) {
	p, err := c.proxy(c.ready + "-1")
	return p, c.readyURL, "", err
}

// weftPair is Weft's sidecar pair, registered in Consul and configured by
// its own `weft control-plane`.
type weftPair struct {
	e  *env
	id string
	// cpFlags are the control plane's flags that differ from its defaults.
	cpFlags []string
	cp      *procs.Proc
	xds     string
	// tcp says whether the pair takes part in TCP workloads.
	tcp bool
	// ready is the client service whose fresh sidecar readiness measures,
	// and its sidecar's admin address.
	ready, readyAdmin string
	readyURL          string
}

func (w *weftPair) describe() results.Peer {
	p := results.Peer{ID: w.id, Name: results.PeerNames[w.id], NonDefault: []string{}}
	for i := 0; i+1 < len(w.cpFlags); i += 2 {
		p.NonDefault = append(p.NonDefault, "control plane "+w.cpFlags[i]+" "+w.cpFlags[i+1])
	}
	for _, kv := range w.e.proxyEnv {
		p.NonDefault = append(p.NonDefault, "sidecar environment "+kv)
	}
	return p
}

func (w *weftPair) serves(b backend) bool     { return b != tcpBackend || w.tcp }
func (w *weftPair) controlPlane() *procs.Proc { return w.cp }

func (w *weftPair) start(b backend) (string, []*procs.Proc, error) {
	if w.cp == nil {
		cp, xds, err := w.e.startControlPlane("control-plane-"+w.id, w.cpFlags...)
		if err != nil {
			return "", nil, err
		}
		w.cp, w.xds = cp, xds
	}
	prefix := w.id + "-" + b.String()
	reg, err := w.e.register(prefix, b.String(), w.e.backends[b])
	if err != nil {
		return "", nil, err
	}
	var ps []*procs.Proc
	for _, id := range []string{reg.client, reg.server} {
		p, err := w.sidecar(id+"-sidecar-proxy", loopback(port()))
		if err != nil {
			return "", nil, err
		}
		ps = append(ps, p)
	}
	if b == httpBackend {
		w.ready, w.readyAdmin = "ready-"+w.id, loopback(port())
		upstream := port()
		w.readyURL = fmt.Sprintf("http://127.0.0.1:%d/", upstream)
		if err := w.e.registerClient(w.ready, "api-"+prefix, upstream); err != nil {
			return "", nil, err
		}
	}
	return loopback(reg.upstream), ps, nil
}

// sidecar starts weft-proxy at its defaults but for its ID and addresses.
// With -profile it also serves Go's profiles on its admin API.
func (w *weftPair) sidecar(proxyID, admin string) (*procs.Proc, error) {
	args := []string{"--proxy-id", proxyID, "--xds-addr", w.xds, "--admin-addr", admin}
	if w.e.profiles.dir != "" {
		args = append(args, "--admin-profiling")
	}
	p, err := w.e.start(proxyID, w.e.proxyEnv, append([]string{w.e.bin.proxy}, args...)...)
	if err == nil && w.e.profiles.dir != "" {
		w.e.profiles.add(p, admin)
	}
	return p, err
}

func (w *weftPair) startClient() (*procs.Proc, string, string, error) {
	p, err := w.sidecar(w.ready+"-1-sidecar-proxy", w.readyAdmin)
	return p, w.readyURL, "http://" + w.readyAdmin + "/ready", err
}
