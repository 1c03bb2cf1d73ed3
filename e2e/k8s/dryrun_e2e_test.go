package k8s

import (
	"bytes"
	"context"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// testChartDryRun applies every object the chart renders (default values)
// and every Kubernetes object of deploy/manifests/weft.yaml with a
// server-side dry-run: the API server validates and admits them, stores
// nothing.
func testChartDryRun(t *testing.T, c *cluster) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNamespace}}
	if _, err := c.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	manifests, err := os.ReadFile(chartPath(t, "deploy/manifests/weft.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string][]byte{"helm template": renderChart(t), "deploy/manifests/weft.yaml": manifests}
	for name, stream := range sources {
		t.Run(name, func(t *testing.T) {
			for _, doc := range splitDocuments(t, stream) {
				if bytes.Contains(doc, []byte("apiVersion: cert-manager.io/")) {
					continue // cert-manager's CRDs are not installed here
				}
				dryRunApply(t, c, doc)
			}
		})
	}
}

func dryRunApply(t *testing.T, c *cluster, doc []byte) {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
		t.Fatal(err)
	}
	gvk := obj.GroupVersionKind()
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatalf("%s: %v", gvk, err)
	}
	var client interface {
		Apply(context.Context, string, *unstructured.Unstructured, metav1.ApplyOptions, ...string) (*unstructured.Unstructured, error)
	} = c.dynamic.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		client = c.dynamic.Resource(mapping.Resource).Namespace(obj.GetNamespace())
	}
	opts := metav1.ApplyOptions{FieldManager: "weft-e2e", Force: true, DryRun: []string{metav1.DryRunAll}}
	if _, err := client.Apply(context.Background(), obj.GetName(), obj, opts); err != nil {
		t.Errorf("dry-run apply %s %s: %v", gvk.Kind, obj.GetName(), err)
	}
}
