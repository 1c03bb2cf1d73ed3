package k8s

import (
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestHelmChartRenders renders the chart in both certificate modes and
// decodes every object strictly into k8s.io/api types (cert-manager's own
// kinds aside), then checks what the issue asks of it.
func TestHelmChartRenders(t *testing.T) {
	tests := []struct {
		mode          string
		wantKinds     []string
		wantCertKinds []string
	}{
		{"helm", []string{"Deployment", "MutatingWebhookConfiguration", "NetworkPolicy", "PodDisruptionBudget", "Secret", "Secret", "Service", "ServiceAccount"}, nil},
		{"cert-manager", []string{"Deployment", "MutatingWebhookConfiguration", "NetworkPolicy", "PodDisruptionBudget", "Service", "ServiceAccount"},
			[]string{"Certificate", "Certificate", "Issuer"}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			var kinds, certKinds []string
			var deploy *appsv1.Deployment
			var mwc *admissionregistrationv1.MutatingWebhookConfiguration
			for i, doc := range splitDocuments(t, renderChart(t, "certs.mode="+tt.mode)) {
				var head struct{ APIVersion, Kind string }
				yaml.Unmarshal(doc, &head)
				if strings.HasPrefix(head.APIVersion, "cert-manager.io/") {
					certKinds = append(certKinds, head.Kind)
					continue
				}
				obj, err := decodeStrict(doc)
				if err != nil {
					t.Fatalf("object %d (%s): %v", i+1, head.Kind, err)
				}
				kinds = append(kinds, head.Kind)
				switch o := obj.(type) {
				case *appsv1.Deployment:
					deploy = o
				case *admissionregistrationv1.MutatingWebhookConfiguration:
					mwc = o
				}
			}
			slices.Sort(kinds)
			slices.Sort(certKinds)
			if diff := cmp.Diff(tt.wantKinds, kinds); diff != "" {
				t.Errorf("kinds (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantCertKinds, certKinds); diff != "" {
				t.Errorf("cert-manager kinds (-want +got):\n%s", diff)
			}
			checkDeployment(t, deploy)
			checkWebhooks(t, mwc, tt.mode == "helm")
		})
	}
}

func checkDeployment(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	if d == nil || d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Fatalf("Deployment %v: want 2 replicas", d)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("container %s has no resource requests", c.Name)
		}
	}
	args := strings.Join(d.Spec.Template.Spec.Containers[1].Args, " ")
	for _, want := range []string{"--xds-addr=weft.weft-system.svc:15010", "--consul-addr=$$(HOST_IP):8500"} {
		if !strings.Contains(args, want) {
			t.Errorf("injector args %q lack %q", args, want)
		}
	}
}

func checkWebhooks(t *testing.T, mwc *admissionregistrationv1.MutatingWebhookConfiguration, wantCABundle bool) {
	t.Helper()
	if mwc == nil || len(mwc.Webhooks) != 2 {
		t.Fatalf("MutatingWebhookConfiguration %v: want two webhooks", mwc)
	}
	for _, w := range mwc.Webhooks {
		if *w.FailurePolicy != admissionregistrationv1.Ignore || (len(w.ClientConfig.CABundle) > 0) != wantCABundle {
			t.Errorf("webhook %s: failurePolicy %s, caBundle %d bytes", w.Name, *w.FailurePolicy, len(w.ClientConfig.CABundle))
		}
	}
}

// TestManifestsUpToDate checks deploy/manifests/weft.yaml is what
// make manifests renders from the chart now.
func TestManifestsUpToDate(t *testing.T) {
	cmd := exec.Command("bash", chartPath(t, "scripts/render-manifests.sh"))
	cmd.Env = append(os.Environ(), "HELM="+tool(t, "WEFT_HELM_BIN", "helm"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("render: %v\n%s", err, stderr.String())
	}
	got, err := os.ReadFile(chartPath(t, "deploy/manifests/weft.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("deploy/manifests/weft.yaml is stale; run make manifests (-rendered +committed):\n%s", diff)
	}
	for i, doc := range splitDocuments(t, got) {
		if bytes.Contains(doc, []byte("apiVersion: cert-manager.io/")) {
			continue
		}
		if _, err := decodeStrict(doc); err != nil {
			t.Errorf("manifest %d: %v", i+1, err)
		}
	}
	var ns corev1.Namespace
	if err := yaml.UnmarshalStrict(splitDocuments(t, got)[0], &ns); err != nil || ns.Name != releaseNamespace {
		t.Errorf("first manifest: %v %s, want the %s Namespace", err, ns.Name, releaseNamespace)
	}
}
