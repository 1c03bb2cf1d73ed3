package k8s

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/weft-mesh/weft/inject"
	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/testproc"
)

// Test namespaces: opted in, not labelled, opted out.
const (
	nsMeshed = "meshed"
	nsPlain  = "plain"
	nsOptOut = "optout"
)

// injectorConfig is the test injector's; nothing pulls its images.
var injectorConfig = func() inject.Config {
	cfg := inject.DefaultConfig()
	cfg.ProxyImage, cfg.RedirectImage = "example.com/weft:test", "example.com/weft-redirect:test"
	return cfg
}()

// TestAdmissionWithRealAPIServer registers weft injector with a real
// kube-apiserver, using the chart's own MutatingWebhookConfiguration with
// its Service swapped for the injector's loopback URL, and creates pods
// through the API server: what it stores is what a kubelet would run, and
// it passed the API server's validation.
func TestAdmissionWithRealAPIServer(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	injector, url, caBundle := startInjector(t)
	for name, labels := range map[string]map[string]string{
		nsMeshed: {inject.Inject: "true"}, nsPlain: nil, nsOptOut: {inject.Inject: "false"},
	} {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		if _, err := c.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mwc := chartWebhooks(t, url, caBundle)
	if _, err := c.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the API server calls the webhook", func() error {
		pod, err := createPod(ctx, c, nsMeshed, testPod("probe", nil, nil), true)
		if err == nil && !isInjected(pod) {
			err = fmt.Errorf("not injected yet")
		}
		return err
	})

	t.Run("pods", func(t *testing.T) { testInjectedPods(t, c) })
	t.Run("pods left alone", func(t *testing.T) { testPodsLeftAlone(t, c) })
	t.Run("chart dry-run", func(t *testing.T) { testChartDryRun(t, c) })
	t.Run("webhook down", func(t *testing.T) { testWebhookDown(t, c, injector, mwc.Name) })
}

// startInjector runs weft injector on loopback with a certificate for
// 127.0.0.1 and returns its /mutate URL and the CA bundle that trusts it.
func startInjector(t *testing.T) (*testproc.Process, string, []byte) {
	t.Helper()
	ca := pkitest.NewCA(t, "injector CA")
	pair := ca.IssueFiles(t, t.TempDir(), "injector", pkitest.LeafSpec{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	addr := freeAddr(t)
	d := startDaemon(t, "injector", filepath.Join(binDir, "weft"), "injector", "--addr", addr, "--tls-cert", pair.CertFile, "--tls-key", pair.KeyFile,
		"--proxy-image", injectorConfig.ProxyImage, "--redirect-image", injectorConfig.RedirectImage, "--log-level", "debug")
	poll.Until(t, 30*time.Second, "injector serving", func() error {
		if d.Exited() {
			t.Fatal("injector exited")
		}
		return tlsDial(addr, ca.PEM())
	})
	return d, "https://" + addr + "/mutate", ca.PEM()
}

// chartWebhooks is the chart's MutatingWebhookConfiguration (default
// values) pointed at url instead of the in-cluster Service.
func chartWebhooks(t *testing.T, url string, caBundle []byte) *admissionregistrationv1.MutatingWebhookConfiguration {
	t.Helper()
	for _, doc := range splitDocuments(t, renderChart(t)) {
		if !strings.Contains(string(doc), "kind: MutatingWebhookConfiguration") {
			continue
		}
		var mwc admissionregistrationv1.MutatingWebhookConfiguration
		if err := yaml.UnmarshalStrict(doc, &mwc); err != nil {
			t.Fatal(err)
		}
		mwc.Name = "weft-e2e" // the chart's own is dry-run applied later
		for i := range mwc.Webhooks {
			mwc.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle}
		}
		return &mwc
	}
	t.Fatal("the chart renders no MutatingWebhookConfiguration")
	return nil
}

func testPod(name string, annotations, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations, Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "example.com/app:1",
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}},
		}}},
	}
}

// createPod creates pod in ns (dry-run: admitted and validated, not
// stored) and returns what the API server made of it.
func createPod(ctx context.Context, c *cluster, ns string, pod *corev1.Pod, dryRun bool) (*corev1.Pod, error) {
	opts := metav1.CreateOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return c.client.CoreV1().Pods(ns).Create(ctx, pod, opts)
}

func isInjected(pod *corev1.Pod) bool { return pod.Annotations[inject.Status] == "injected" }

// tlsDial completes a TLS handshake with addr, trusting caPEM.
func tlsDial(addr string, caPEM []byte) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		return err
	}
	return conn.Close()
}
