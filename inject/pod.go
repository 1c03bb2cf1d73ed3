// Package inject adds Weft's sidecar to Kubernetes pods. Pod is the one
// injection function; Manifests applies it to YAML (weft inject) and the
// webhook package to admission requests (weft injector).
//
// An injected pod gets, in order before its own init containers:
//
//   - weft-redirect (transparent mode only): an init container that
//     installs iptables rules sending the pod's TCP traffic through the
//     proxy (weft redirect), then exits;
//   - weft-membership: weft register --wait, which registers the pod's
//     service and sidecar with the node's Consul agent, keeps them alive,
//     and deregisters them when the pod stops;
//   - weft-proxy: the sidecar, whose startup probe on its admin /ready
//     holds the app back until it has its configuration and certificate.
//
// In native mode (the default) the last two are native sidecars: init
// containers with restartPolicy Always, which Kubernetes stops after the
// app, so Jobs complete. In classic mode they are ordinary containers
// appended after the app's.
package inject

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Result says what Pod did.
type Result struct {
	Injected bool
	// Skipped says why the pod was left alone, when it was.
	Skipped string
}

// Pod injects the sidecar into a pod, or a workload's pod template, in
// place. Whether the pod's namespace opted in is the caller's business (the
// webhook's namespaceSelector; weft inject injects what it is given); Pod
// leaves alone pods that opt out (weft.io/inject: "false"), pods on the
// host network, and pods already injected, so injecting twice is injecting
// once. An invalid annotation is an error naming it.
func Pod(meta *metav1.ObjectMeta, spec *corev1.PodSpec, cfg Config) (Result, error) {
	switch {
	case optOut(meta):
		return Result{Skipped: "opted out (" + Inject + `: "false")`}, nil
	case spec.HostNetwork:
		return Result{Skipped: "host network"}, nil
	case isInjected(spec):
		return Result{Skipped: "already injected"}, nil
	case len(spec.Containers) == 0:
		return Result{}, errors.New("pod has no containers")
	}
	s, err := podSettings(meta, spec, cfg)
	if err != nil {
		return Result{}, err
	}
	var front []corev1.Container
	if s.transparent {
		front = append(front, redirectContainer(cfg, s, probePorts(spec)))
	}
	sidecars := []corev1.Container{membershipContainer(cfg, s), proxyContainer(cfg, s)}
	defaultContainer := spec.Containers[0].Name
	switch s.mode {
	case Native:
		for i := range sidecars {
			sidecars[i].RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		}
		front = append(front, sidecars...)
	case Classic:
		for i := range sidecars {
			sidecars[i].StartupProbe = nil // gates nothing outside init containers
		}
		spec.Containers = append(spec.Containers, sidecars...)
	}
	spec.InitContainers = append(front, spec.InitContainers...)
	spec.Volumes = append(spec.Volumes, stateVolume())
	setAnnotation(meta, Status, "injected")
	if _, ok := meta.Annotations["kubectl.kubernetes.io/default-container"]; !ok {
		setAnnotation(meta, "kubectl.kubernetes.io/default-container", defaultContainer)
	}
	return Result{Injected: true}, nil
}

func isInjected(spec *corev1.PodSpec) bool {
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range list {
			if c.Name == ProxyContainer {
				return true
			}
		}
	}
	return false
}

// probePorts lists the ports the kubelet probes the app's containers on:
// transparent redirection leaves them alone, or the probes would reach the
// proxy's mTLS port instead of the app.
func probePorts(spec *corev1.PodSpec) []int32 {
	var ports []int32
	for _, c := range spec.Containers {
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if port, ok := probePort(c, p); ok {
				ports = append(ports, port)
			}
		}
	}
	return ports
}

func probePort(c corev1.Container, p *corev1.Probe) (int32, bool) {
	switch {
	case p == nil:
		return 0, false
	case p.HTTPGet != nil:
		return resolvePort(c, p.HTTPGet.Port)
	case p.TCPSocket != nil:
		return resolvePort(c, p.TCPSocket.Port)
	case p.GRPC != nil:
		return p.GRPC.Port, true
	}
	return 0, false
}

func resolvePort(c corev1.Container, port intstr.IntOrString) (int32, bool) {
	if port.Type == intstr.Int {
		return port.IntVal, true
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

func setAnnotation(meta *metav1.ObjectMeta, key, value string) {
	if meta.Annotations == nil {
		meta.Annotations = map[string]string{}
	}
	meta.Annotations[key] = value
}

// String describes a result for weft inject's report.
func (r Result) String() string {
	if r.Injected {
		return "injected"
	}
	return fmt.Sprintf("skipped: %s", r.Skipped)
}
