package k8s

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/weft-mesh/weft/inject"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/testproc"
)

// wantInjection is what an injected pod must hold.
type wantInjection struct {
	redirect    bool
	cpu, memory string
}

func testInjectedPods(t *testing.T, c *cluster) {
	ctx := context.Background()
	t.Run("a pod gets native sidecars, probes, resources and the redirect init, once", func(t *testing.T) {
		pod := testPod("web", map[string]string{inject.Upstreams: "api:9191", inject.Transparent: "true",
			inject.ProxyCPU: "250m", inject.ProxyMemory: "96Mi"}, nil)
		stored := createAndGet(t, c, nsMeshed, pod)
		checkInjected(t, stored, wantInjection{redirect: true, cpu: "250m", memory: "96Mi"})
	})
	t.Run("a Deployment's pod", func(t *testing.T) {
		template := testPod("", map[string]string{inject.Upstreams: "api:9191"}, map[string]string{"app": "shop"})
		deploy := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "shop"},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: template.Labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: template.ObjectMeta, Spec: template.Spec}},
		}
		got, err := c.client.AppsV1().Deployments(nsMeshed).Create(ctx, deploy, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(got.Spec.Template.Spec.InitContainers); n != 0 {
			t.Errorf("the Deployment's template was changed (%d init containers): only pods are injected", n)
		}
		// What the ReplicaSet controller would create: a pod with only a
		// generateName, named by the API server after admission.
		pod := &corev1.Pod{ObjectMeta: *got.Spec.Template.ObjectMeta.DeepCopy(), Spec: *got.Spec.Template.Spec.DeepCopy()}
		pod.GenerateName = "shop-6f7c9d-"
		stored := createAndGet(t, c, nsMeshed, pod)
		if !strings.HasPrefix(stored.Name, "shop-6f7c9d-") {
			t.Errorf("pod name %q", stored.Name)
		}
		checkInjected(t, stored, wantInjection{cpu: "100m", memory: "128Mi"})
	})
	t.Run("a pod injected by weft inject is not injected again", func(t *testing.T) {
		pod := testPod("pre-injected", nil, nil)
		if _, err := inject.Pod(&pod.ObjectMeta, &pod.Spec, injectorConfig); err != nil {
			t.Fatal(err)
		}
		checkInjected(t, createAndGet(t, c, nsMeshed, pod), wantInjection{cpu: "100m", memory: "128Mi"})
	})
	t.Run("a pod labelled weft.io/inject=true in a namespace without the label", func(t *testing.T) {
		pod := testPod("opted-in", nil, map[string]string{inject.Inject: "true"})
		checkInjected(t, createAndGet(t, c, nsPlain, pod), wantInjection{cpu: "100m", memory: "128Mi"})
	})
	t.Run("an invalid annotation is refused, naming it", func(t *testing.T) {
		_, err := createPod(ctx, c, nsMeshed, testPod("bad", map[string]string{inject.Upstreams: "api"}, nil), false)
		if err == nil || !strings.Contains(err.Error(), `annotation weft.io/upstreams "api"`) {
			t.Errorf("create: %v, want the webhook's refusal", err)
		}
	})
}

func testPodsLeftAlone(t *testing.T, c *cluster) {
	hostNet := testPod("host-network", nil, nil)
	hostNet.Spec.HostNetwork = true
	tests := []struct {
		name, ns string
		pod      *corev1.Pod
	}{
		{"namespace without the label", nsPlain, testPod("plain", nil, nil)},
		{"opted-out namespace, even for a pod that opts in", nsOptOut, testPod("optout", nil, map[string]string{inject.Inject: "true"})},
		{"pod annotated weft.io/inject=false", nsMeshed, testPod("annotated-out", map[string]string{inject.Inject: "false"}, nil)},
		{"pod labelled weft.io/inject=false", nsMeshed, testPod("labelled-out", nil, map[string]string{inject.Inject: "false"})},
		{"host-network pod", nsMeshed, hostNet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNotInjected(t, createAndGet(t, c, tt.ns, tt.pod))
		})
	}
}

// testWebhookDown stops the injector: with the chart's default
// failurePolicy, Ignore, pods are created without a sidecar; with Fail,
// they are refused.
func testWebhookDown(t *testing.T, c *cluster, injector *testproc.Process, mwcName string) {
	ctx := context.Background()
	injector.Stop()
	checkNotInjected(t, createAndGet(t, c, nsMeshed, testPod("while-down", nil, nil)))

	mwcs := c.client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	mwc, err := mwcs.Get(ctx, mwcName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range mwc.Webhooks {
		mwc.Webhooks[i].FailurePolicy = ptr.To(admissionregistrationv1.Fail)
	}
	if _, err := mwcs.Update(ctx, mwc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "pods refused while the webhook is down", func() error {
		_, err := createPod(ctx, c, nsMeshed, testPod("refused", nil, nil), true)
		if err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
			return fmt.Errorf("create: %v", err)
		}
		return nil
	})
	if _, err := createPod(ctx, c, nsPlain, testPod("unaffected", nil, nil), false); err != nil {
		t.Errorf("a pod no webhook selects: %v", err)
	}
}

func createAndGet(t *testing.T, c *cluster, ns string, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	created, err := createPod(ctx, c, ns, pod, false)
	if err != nil {
		t.Fatalf("create pod in %s: %v", ns, err)
	}
	stored, err := c.client.CoreV1().Pods(ns).Get(ctx, created.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

func checkInjected(t *testing.T, pod *corev1.Pod, w wantInjection) {
	t.Helper()
	wantInit := []string{inject.MembershipContainer, inject.ProxyContainer}
	if w.redirect {
		wantInit = slices.Insert(wantInit, 0, inject.RedirectContainer)
	}
	if diff := cmp.Diff(wantInit, containerNames(pod.Spec.InitContainers)); diff != "" {
		t.Errorf("init containers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"app"}, containerNames(pod.Spec.Containers)); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
	if !isInjected(pod) {
		t.Errorf("annotations %v: no %s", pod.Annotations, inject.Status)
	}
	for _, ic := range pod.Spec.InitContainers {
		sidecar := ic.Name != inject.RedirectContainer
		if native := ic.RestartPolicy != nil && *ic.RestartPolicy == corev1.ContainerRestartPolicyAlways; native != sidecar {
			t.Errorf("%s: restartPolicy %v", ic.Name, ic.RestartPolicy)
		}
		if ic.Name == inject.RedirectContainer && !slices.Contains(ic.SecurityContext.Capabilities.Add, "NET_ADMIN") {
			t.Errorf("%s: capabilities %v, want NET_ADMIN", ic.Name, ic.SecurityContext.Capabilities)
		}
	}
	proxy := pod.Spec.InitContainers[len(wantInit)-1]
	for name, p := range map[string]*corev1.Probe{"startup": proxy.StartupProbe, "readiness": proxy.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/ready" || p.HTTPGet.Port.IntValue() != 19000 {
			t.Errorf("proxy %s probe %+v, want GET :19000/ready", name, p)
		}
	}
	r := proxy.Resources
	if !r.Requests.Cpu().Equal(resource.MustParse(w.cpu)) || !r.Requests.Memory().Equal(resource.MustParse(w.memory)) ||
		!r.Limits.Memory().Equal(resource.MustParse(w.memory)) {
		t.Errorf("proxy resources %v, want cpu %s, memory %s", r, w.cpu, w.memory)
	}
}

func checkNotInjected(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if isInjected(pod) || len(pod.Spec.InitContainers) != 0 || len(pod.Spec.Containers) != 1 {
		t.Errorf("pod %s/%s was injected: init %v, containers %v", pod.Namespace, pod.Name,
			containerNames(pod.Spec.InitContainers), containerNames(pod.Spec.Containers))
	}
}

func containerNames(cs []corev1.Container) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}
