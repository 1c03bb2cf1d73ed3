package inject

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Mode is how the sidecar runs in the pod.
type Mode string

const (
	// Native runs the sidecars as init containers with restartPolicy
	// Always (Kubernetes ≥ 1.29): they start, in order, before the app,
	// the app starts once the proxy's startup probe passes, and they stop
	// after the app, so Jobs complete.
	Native Mode = "native"
	// Classic runs the sidecars as ordinary containers next to the app, for
	// older clusters: no start ordering, and a Job's pod never completes.
	Classic Mode = "classic"
)

// Config is what the injection needs to know about the mesh; the pod's
// annotations refine it per pod. Start from DefaultConfig.
type Config struct {
	// ProxyImage holds /weft-proxy and /weft: it runs the proxy and the
	// membership sidecar.
	ProxyImage string
	// RedirectImage holds /weft and iptables: it runs the transparent-proxy
	// init container.
	RedirectImage string
	// XDSAddr is the control plane's xDS address as pods reach it.
	XDSAddr string
	// ConsulAddr is the Consul agent's HTTP address as pods reach it. The
	// default, $(HOST_IP):8500, is the agent on the pod's node.
	ConsulAddr string
	// Mode is the sidecar mode of pods without weft.io/sidecar-mode.
	Mode Mode
	// Transparent is the default of weft.io/transparent.
	Transparent bool
	// ProxyCPU and ProxyMemory are the proxy's requests (and memory limit)
	// for pods without weft.io/proxy-cpu and weft.io/proxy-memory.
	ProxyCPU, ProxyMemory string
	// PublicPort is the sidecar's inbound (mTLS) port; AdminPort its admin
	// API, probed by the kubelet; OutboundPort where transparent outbound
	// traffic is redirected.
	PublicPort, AdminPort, OutboundPort int
	// ProxyUID is the user the sidecars run as; its traffic is never
	// redirected.
	ProxyUID int64
	// DeregisterAfter is how long a pod's registration may stay critical
	// (its membership sidecar gone) before Consul removes it.
	DeregisterAfter time.Duration
}

// DefaultConfig returns the defaults of weft inject and weft injector.
func DefaultConfig() Config {
	return Config{
		ProxyImage:      "ghcr.io/weft-mesh/weft:latest",
		RedirectImage:   "ghcr.io/weft-mesh/weft-redirect:latest",
		XDSAddr:         "weft.weft-system.svc:15010",
		ConsulAddr:      "$(HOST_IP):8500",
		Mode:            Native,
		ProxyCPU:        "100m",
		ProxyMemory:     "128Mi",
		PublicPort:      20000,
		AdminPort:       19000,
		OutboundPort:    15001,
		ProxyUID:        5678,
		DeregisterAfter: time.Minute,
	}
}

// Validate reports every field that cannot work, naming it and its value.
func (c Config) Validate() error {
	var errs []error
	if c.ProxyImage == "" {
		errs = append(errs, errors.New("proxy image: empty"))
	}
	if c.RedirectImage == "" {
		errs = append(errs, errors.New("redirect image: empty"))
	}
	for _, a := range []struct{ name, addr string }{{"xDS address", c.XDSAddr}, {"Consul address", c.ConsulAddr}} {
		if _, err := addrPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", a.name, a.addr, err))
		}
	}
	if c.Mode != Native && c.Mode != Classic {
		errs = append(errs, fmt.Errorf("sidecar mode %q: want native or classic", c.Mode))
	}
	for _, q := range []struct{ name, value string }{{"proxy CPU", c.ProxyCPU}, {"proxy memory", c.ProxyMemory}} {
		if _, err := resource.ParseQuantity(q.value); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", q.name, q.value, err))
		}
	}
	for _, p := range []struct {
		name string
		port int
	}{{"public port", c.PublicPort}, {"admin port", c.AdminPort}, {"outbound port", c.OutboundPort}} {
		if p.port < 1 || p.port > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: want 1-65535", p.name, p.port))
		}
	}
	if c.ProxyUID <= 0 {
		errs = append(errs, fmt.Errorf("proxy UID %d: want a non-root user", c.ProxyUID))
	}
	if c.DeregisterAfter < time.Minute {
		errs = append(errs, fmt.Errorf("deregister after %v: Consul's minimum is 1m", c.DeregisterAfter))
	}
	return errors.Join(errs...)
}

// addrPort returns the port of HOST:PORT; HOST may be a $(VAR) reference.
func addrPort(addr string) (int, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q: want 1-65535", port)
	}
	return p, nil
}
