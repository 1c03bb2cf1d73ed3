package inject

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func testPod(annotations, labels map[string]string) (*metav1.ObjectMeta, *corev1.PodSpec) {
	meta := &metav1.ObjectMeta{Name: "p", Annotations: annotations, Labels: labels}
	spec := &corev1.PodSpec{Containers: []corev1.Container{{
		Name: "app", Image: "app",
		Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "admin", ContainerPort: 8081}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("admin")}}},
	}}}
	return meta, spec
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func argAfter(c corev1.Container, flag string) string {
	for i, a := range c.Args {
		if a == flag && i+1 < len(c.Args) {
			return c.Args[i+1]
		}
	}
	return ""
}

func find(cs []corev1.Container, name string) corev1.Container {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return corev1.Container{}
}

func TestPod(t *testing.T) {
	tests := []struct {
		name           string
		annotations    map[string]string
		labels         map[string]string
		hostNetwork    bool
		wantSkipped    string
		wantInit       []string
		wantContainers []string
		check          func(t *testing.T, meta *metav1.ObjectMeta, spec *corev1.PodSpec)
	}{
		{name: "native by default", wantInit: []string{MembershipContainer, ProxyContainer}, wantContainers: []string{"app"},
			check: func(t *testing.T, meta *metav1.ObjectMeta, spec *corev1.PodSpec) {
				for _, c := range spec.InitContainers {
					if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
						t.Errorf("%s: restartPolicy %v, want Always", c.Name, c.RestartPolicy)
					}
				}
				proxy := find(spec.InitContainers, ProxyContainer)
				if proxy.StartupProbe == nil || proxy.StartupProbe.HTTPGet.Path != "/ready" || proxy.ReadinessProbe.HTTPGet.Path != "/ready" {
					t.Errorf("proxy probes: startup %+v readiness %+v", proxy.StartupProbe, proxy.ReadinessProbe)
				}
				if got := argAfter(proxy, "--proxy-id"); got != "$(POD_NAME).$(POD_NAMESPACE)-sidecar-proxy" {
					t.Errorf("--proxy-id %q", got)
				}
				m := find(spec.InitContainers, MembershipContainer)
				if got := []string{argAfter(m, "--name"), argAfter(m, "--port"), argAfter(m, "--app-addr")}; !cmp.Equal(got, []string{"app", "8080", "127.0.0.1:8080"}) {
					t.Errorf("membership name, port, app addr = %q", got)
				}
				if meta.Annotations[Status] != "injected" {
					t.Errorf("annotations %v", meta.Annotations)
				}
			}},
		{name: "classic", annotations: map[string]string{SidecarMode: "classic"}, wantContainers: []string{"app", MembershipContainer, ProxyContainer},
			check: func(t *testing.T, _ *metav1.ObjectMeta, spec *corev1.PodSpec) {
				if p := find(spec.Containers, ProxyContainer); p.RestartPolicy != nil || p.StartupProbe != nil || p.ReadinessProbe == nil {
					t.Errorf("classic proxy: restartPolicy %v startup %v readiness %v", p.RestartPolicy, p.StartupProbe, p.ReadinessProbe)
				}
			}},
		{name: "transparent", annotations: map[string]string{Transparent: "true", ExcludeOutboundPorts: "6379, 5432", ExcludeInboundPorts: "9000"},
			wantInit: []string{RedirectContainer, MembershipContainer, ProxyContainer}, wantContainers: []string{"app"},
			check: func(t *testing.T, _ *metav1.ObjectMeta, spec *corev1.PodSpec) {
				r := spec.InitContainers[0]
				got := []string{argAfter(r, "--exclude-outbound-ports"), argAfter(r, "--exclude-inbound-ports"), argAfter(r, "--proxy-uid")}
				// 8081: the app's readiness probe port (named "admin").
				if want := []string{"5432,6379,8500,15010", "8081,9000,19000,20000", "5678"}; !cmp.Equal(got, want) {
					t.Errorf("redirect exclusions = %q, want %q", got, want)
				}
			}},
		{name: "resources and service from annotations",
			annotations: map[string]string{ProxyCPU: "300m", ProxyMemory: "200Mi", ServiceName: "billing", ServicePort: "admin", Upstreams: "api:9191"},
			wantInit:    []string{MembershipContainer, ProxyContainer}, wantContainers: []string{"app"},
			check: func(t *testing.T, _ *metav1.ObjectMeta, spec *corev1.PodSpec) {
				p := find(spec.InitContainers, ProxyContainer)
				if !p.Resources.Requests.Cpu().Equal(resource.MustParse("300m")) || !p.Resources.Limits.Memory().Equal(resource.MustParse("200Mi")) {
					t.Errorf("resources %v", p.Resources)
				}
				m := find(spec.InitContainers, MembershipContainer)
				if got := []string{argAfter(m, "--name"), argAfter(m, "--port"), argAfter(m, "--upstreams")}; !cmp.Equal(got, []string{"billing", "8081", "api:9191"}) {
					t.Errorf("membership = %q", got)
				}
			}},
		{name: "service name from label", labels: map[string]string{"app": "shop"}, wantInit: []string{MembershipContainer, ProxyContainer}, wantContainers: []string{"app"},
			check: func(t *testing.T, _ *metav1.ObjectMeta, spec *corev1.PodSpec) {
				if got := argAfter(find(spec.InitContainers, MembershipContainer), "--name"); got != "shop" {
					t.Errorf("--name %q", got)
				}
			}},
		{name: "opted out by annotation", annotations: map[string]string{Inject: "false"}, wantSkipped: `opted out (weft.io/inject: "false")`, wantContainers: []string{"app"}},
		{name: "opted out by label", labels: map[string]string{Inject: "false"}, wantSkipped: `opted out (weft.io/inject: "false")`, wantContainers: []string{"app"}},
		{name: "annotation wins over label", annotations: map[string]string{Inject: "true"}, labels: map[string]string{Inject: "false"},
			wantInit: []string{MembershipContainer, ProxyContainer}, wantContainers: []string{"app"}},
		{name: "host network", hostNetwork: true, wantSkipped: "host network", wantContainers: []string{"app"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta, spec := testPod(tt.annotations, tt.labels)
			spec.HostNetwork = tt.hostNetwork
			res, err := Pod(meta, spec, DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			if res.Skipped != tt.wantSkipped || res.Injected != (tt.wantSkipped == "") {
				t.Errorf("result %+v, want skipped %q", res, tt.wantSkipped)
			}
			if diff := cmp.Diff(tt.wantInit, names(spec.InitContainers)); diff != "" {
				t.Errorf("init containers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantContainers, names(spec.Containers)); diff != "" {
				t.Errorf("containers (-want +got):\n%s", diff)
			}
			if tt.check != nil {
				tt.check(t, meta, spec)
			}
			again, err := Pod(meta, spec, DefaultConfig())
			if err != nil || again.Injected {
				t.Errorf("second injection: %+v, %v; want nothing done", again, err)
			}
		})
	}
}

func TestPodInvalidAnnotations(t *testing.T) {
	tests := map[string]string{
		Upstreams:            `annotation weft.io/upstreams "api:x"`,
		Transparent:          `annotation weft.io/transparent "api:x"`,
		ExcludeOutboundPorts: `annotation weft.io/exclude-outbound-ports "api:x"`,
		ProxyCPU:             `annotation weft.io/proxy-cpu "api:x"`,
		ServicePort:          `annotation weft.io/service-port "api:x"`,
		ServiceName:          `annotation weft.io/service-name "api:x"`,
		SidecarMode:          `annotation weft.io/sidecar-mode "api:x"`,
	}
	for key, want := range tests {
		t.Run(key, func(t *testing.T) {
			meta, spec := testPod(map[string]string{key: "api:x"}, nil)
			_, err := Pod(meta, spec, DefaultConfig())
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %v, want prefix %q", err, want)
			}
			if len(spec.InitContainers) != 0 {
				t.Errorf("pod changed despite the error")
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cfg.XDSAddr, cfg.ProxyMemory, cfg.PublicPort, cfg.Mode = "nohost", "lots", 0, "sidecar"
	want := `xDS address "nohost": address nohost: missing port in address
sidecar mode "sidecar": want native or classic
proxy memory "lots": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'
public port 0: want 1-65535`
	if err := cfg.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v\nwant %s", err, want)
	}
}
