package inject

import (
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/weft-mesh/weft/inject/membership"
)

// Names of the containers injection adds.
const (
	ProxyContainer      = "weft-proxy"
	MembershipContainer = "weft-membership"
	RedirectContainer   = "weft-redirect"
)

// ProxyID is the proxy ID (xDS node ID, Consul sidecar service ID) of an
// injected pod's sidecar, as the container sees it through the downward
// API: "<pod name>.<namespace>-sidecar-proxy". The pod's service ID is
// "<pod name>.<namespace>": pod names are unique in their namespace and
// namespaces cannot contain dots, so the ID is unique in the cluster, and
// it is known before the pod has a name (pods of a Deployment are named
// after admission).
const ProxyID = serviceID + "-sidecar-proxy"

const serviceID = "$(POD_NAME).$(POD_NAMESPACE)"

// StateVolume is the volume injection adds for weft-proxy's state
// directory (--state-dir): its last accepted configuration and its leaf
// certificate and key. It is a memory-backed emptyDir, so it survives
// restarts of the proxy container (a sidecar restarted while the control
// plane is down serves at once) but not the pod, and the private key never
// touches the node's disk.
const StateVolume = "weft-proxy-state"

const stateMountPath = "/var/lib/weft-proxy"

// stateVolume is the emptyDir behind StateVolume.
func stateVolume() corev1.Volume {
	limit := resource.MustParse("32Mi")
	return corev1.Volume{Name: StateVolume, VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &limit},
	}}
}

// proxyContainer runs weft-proxy. Its startup probe on /ready holds the
// app back (native mode) until the proxy has its configuration and
// certificate.
func proxyContainer(cfg Config, s settings) corev1.Container {
	ready := &corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt(cfg.AdminPort)}}
	return corev1.Container{
		Name:    ProxyContainer,
		Image:   cfg.ProxyImage,
		Command: []string{"/weft-proxy"},
		Args: []string{"--proxy-id", ProxyID, "--xds-addr", cfg.XDSAddr,
			"--admin-addr", "0.0.0.0:" + strconv.Itoa(cfg.AdminPort),
			"--state-dir", stateMountPath},
		Env:          downwardEnv("POD_NAME", "POD_NAMESPACE"),
		VolumeMounts: []corev1.VolumeMount{{Name: StateVolume, MountPath: stateMountPath}},
		Ports: []corev1.ContainerPort{
			{Name: "weft-public", ContainerPort: int32(cfg.PublicPort)},
			{Name: "weft-admin", ContainerPort: int32(cfg.AdminPort)},
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: s.cpu, corev1.ResourceMemory: s.memory},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: s.memory},
		},
		StartupProbe:    &corev1.Probe{ProbeHandler: *ready, PeriodSeconds: 1, FailureThreshold: 120},
		ReadinessProbe:  &corev1.Probe{ProbeHandler: *ready, PeriodSeconds: 5, FailureThreshold: 3},
		SecurityContext: restricted(cfg.ProxyUID),
	}
}

// membershipContainer runs weft register --wait: it registers the pod and
// its sidecar with the node's Consul agent, keeps them alive, and
// deregisters when the pod stops (see membership.Keeper).
func membershipContainer(cfg Config, s settings) corev1.Container {
	args := []string{"register", "--wait",
		"--name", s.service, "--id", serviceID, "--address", "$(POD_IP)",
		"--sidecar-port", strconv.Itoa(cfg.PublicPort),
		"--deregister-after", cfg.DeregisterAfter.String(),
		"--meta", "k8s-namespace=$(POD_NAMESPACE)", "--meta", "k8s-pod=$(POD_NAME)"}
	if s.port > 0 {
		args = append(args, "--port", strconv.Itoa(int(s.port)), "--app-addr", "127.0.0.1:"+strconv.Itoa(int(s.port)))
	}
	if len(s.upstreams) > 0 {
		args = append(args, "--upstreams", membership.FormatUpstreams(s.upstreams))
	}
	if s.transparent {
		args = append(args, "--transparent", "--outbound-port", strconv.Itoa(cfg.OutboundPort))
	}
	env := append(downwardEnv("POD_NAME", "POD_NAMESPACE", "POD_IP", "HOST_IP"),
		corev1.EnvVar{Name: "CONSUL_HTTP_ADDR", Value: cfg.ConsulAddr})
	return corev1.Container{
		Name:            MembershipContainer,
		Image:           cfg.ProxyImage,
		Command:         []string{"/weft"},
		Args:            args,
		Env:             env,
		Resources:       smallResources(),
		SecurityContext: restricted(cfg.ProxyUID),
	}
}

// redirectContainer runs weft redirect as root with NET_ADMIN: it installs
// the pod's iptables rules and exits.
func redirectContainer(cfg Config, s settings, probePorts []int32) corev1.Container {
	xdsPort, _ := addrPort(cfg.XDSAddr)
	consulPort, _ := addrPort(cfg.ConsulAddr)
	excludeOut := uniquePorts([]int32{int32(xdsPort), int32(consulPort)}, s.excludeOut)
	excludeIn := uniquePorts([]int32{int32(cfg.PublicPort), int32(cfg.AdminPort)}, probePorts, s.excludeIn)
	return corev1.Container{
		Name:    RedirectContainer,
		Image:   cfg.RedirectImage,
		Command: []string{"/weft"},
		Args: []string{"redirect",
			"--proxy-uid", strconv.FormatInt(cfg.ProxyUID, 10),
			"--outbound-port", strconv.Itoa(cfg.OutboundPort),
			"--inbound-port", strconv.Itoa(cfg.PublicPort),
			"--exclude-outbound-ports", joinPorts(excludeOut),
			"--exclude-inbound-ports", joinPorts(excludeIn)},
		Resources: smallResources(),
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](0),
			RunAsNonRoot:             ptr.To(false),
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
		},
	}
}

func restricted(uid int64) *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsUser:                ptr.To(uid),
		RunAsGroup:               ptr.To(uid),
		RunAsNonRoot:             ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func smallResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
	}
}

var downwardFields = map[string]string{
	"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace",
	"POD_IP": "status.podIP", "HOST_IP": "status.hostIP",
}

func downwardEnv(names ...string) []corev1.EnvVar {
	env := make([]corev1.EnvVar, len(names))
	for i, n := range names {
		env[i] = corev1.EnvVar{Name: n, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: downwardFields[n]}}}
	}
	return env
}

func uniquePorts(lists ...[]int32) []int32 {
	ports := slices.Concat(lists...)
	slices.Sort(ports)
	return slices.Compact(ports)
}

func joinPorts(ports []int32) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		parts[i] = strconv.Itoa(int(p))
	}
	return strings.Join(parts, ",")
}
