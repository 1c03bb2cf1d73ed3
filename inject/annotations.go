package inject

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/weft-mesh/weft/inject/membership"
)

// Annotations (and the one label) a pod or its namespace sets.
const (
	// Inject is "true" or "false". As a namespace label it opts the
	// namespace's pods in (or out); on a pod, as an annotation or a label,
	// it opts the pod in or out. The webhook's selectors match labels only,
	// so in a namespace without the label a pod opts in with the label.
	Inject = "weft.io/inject"
	// Upstreams lists the services the app calls and the local ports it
	// calls them on: "api:9191,db:5432" (127.0.0.1:9191 reaches api).
	Upstreams = "weft.io/upstreams"
	// Transparent ("true"/"false") redirects the pod's TCP traffic through
	// the proxy with iptables.
	Transparent = "weft.io/transparent"
	// ExcludeOutboundPorts and ExcludeInboundPorts ("5432,6379") are ports
	// transparent redirection leaves alone.
	ExcludeOutboundPorts = "weft.io/exclude-outbound-ports"
	ExcludeInboundPorts  = "weft.io/exclude-inbound-ports"
	// ProxyCPU and ProxyMemory are the proxy's resource requests; memory is
	// also its limit.
	ProxyCPU    = "weft.io/proxy-cpu"
	ProxyMemory = "weft.io/proxy-memory"
	// ServiceName is the Consul service the pod is an instance of; default:
	// label app.kubernetes.io/name, else label app, else the first
	// container's name.
	ServiceName = "weft.io/service-name"
	// ServicePort is the app's port, a number or a container port's name;
	// default: the first container's first port, else none (a client only).
	ServicePort = "weft.io/service-port"
	// SidecarMode is "native" or "classic" (see Mode).
	SidecarMode = "weft.io/sidecar-mode"
	// Status is set to "injected" on every injected pod.
	Status = "weft.io/status"
)

// settings are one pod's injection settings: Config refined by annotations.
type settings struct {
	service     string
	port        int32
	upstreams   []membership.Upstream
	transparent bool
	excludeOut  []int32
	excludeIn   []int32
	cpu, memory resource.Quantity
	mode        Mode
}

// podSettings reads the pod's annotations over cfg's defaults. Errors name
// the annotation and its value.
func podSettings(meta *metav1.ObjectMeta, spec *corev1.PodSpec, cfg Config) (settings, error) {
	a := meta.Annotations
	s := settings{mode: Mode(cmp.Or(a[SidecarMode], string(cfg.Mode)))}
	var errs []error
	check := func(key string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("annotation %s %q: %w", key, a[key], err))
		}
	}
	if s.mode != Native && s.mode != Classic {
		check(SidecarMode, errors.New("want native or classic"))
	}
	var err error
	s.service, err = serviceName(meta, spec)
	check(ServiceName, err)
	s.port, err = servicePort(a[ServicePort], spec)
	check(ServicePort, err)
	s.upstreams, err = membership.ParseUpstreams(a[Upstreams])
	check(Upstreams, err)
	s.transparent, err = parseBool(a[Transparent], cfg.Transparent)
	check(Transparent, err)
	s.excludeOut, err = parsePorts(a[ExcludeOutboundPorts])
	check(ExcludeOutboundPorts, err)
	s.excludeIn, err = parsePorts(a[ExcludeInboundPorts])
	check(ExcludeInboundPorts, err)
	s.cpu, err = resource.ParseQuantity(cmp.Or(a[ProxyCPU], cfg.ProxyCPU))
	check(ProxyCPU, err)
	s.memory, err = resource.ParseQuantity(cmp.Or(a[ProxyMemory], cfg.ProxyMemory))
	check(ProxyMemory, err)
	return s, errors.Join(errs...)
}

// optOut reports whether the pod says weft.io/inject: "false" (the
// annotation wins over the label).
func optOut(meta *metav1.ObjectMeta) bool {
	v, ok := meta.Annotations[Inject]
	if !ok {
		v = meta.Labels[Inject]
	}
	return v == "false"
}

func serviceName(meta *metav1.ObjectMeta, spec *corev1.PodSpec) (string, error) {
	name := cmp.Or(meta.Annotations[ServiceName], meta.Labels["app.kubernetes.io/name"], meta.Labels["app"], spec.Containers[0].Name)
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return "", fmt.Errorf("service name %q: %s", name, strings.Join(errs, "; "))
	}
	return name, nil
}

// servicePort resolves the app's port: a number, a container port's name,
// or by default the first container's first port (0: no inbound).
func servicePort(v string, spec *corev1.PodSpec) (int32, error) {
	if v == "" {
		if ports := spec.Containers[0].Ports; len(ports) > 0 {
			return ports[0].ContainerPort, nil
		}
		return 0, nil
	}
	if p, err := strconv.ParseInt(v, 10, 32); err == nil {
		if p < 1 || p > 65535 {
			return 0, errors.New("want 1-65535")
		}
		return int32(p), nil
	}
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.Name == v {
				return p.ContainerPort, nil
			}
		}
	}
	return 0, errors.New("no container port has that name")
}

func parsePorts(v string) ([]int32, error) {
	var ports []int32
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := strconv.ParseInt(f, 10, 32)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("port %q: want 1-65535", f)
		}
		ports = append(ports, int32(p))
	}
	slices.Sort(ports)
	return slices.Compact(ports), nil
}

func parseBool(v string, def bool) (bool, error) {
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errors.New(`want "true" or "false"`)
	}
	return b, nil
}
