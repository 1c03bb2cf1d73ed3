package inject

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// DocResult is what Manifests did with one document that holds a pod, or
// with the workloads of a List (Items).
type DocResult struct {
	Kind, Name string
	Result
	Items []DocResult
}

// podHolder returns a fresh object of a kind that holds a pod template, and
// pointers to that template's metadata and spec inside it.
type podHolder func() (obj any, meta *metav1.ObjectMeta, spec *corev1.PodSpec)

var podHolders = map[string]podHolder{
	"Pod": func() (any, *metav1.ObjectMeta, *corev1.PodSpec) {
		o := &corev1.Pod{}
		return o, &o.ObjectMeta, &o.Spec
	},
	"Deployment": func() (any, *metav1.ObjectMeta, *corev1.PodSpec) {
		o := &appsv1.Deployment{}
		return o, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec
	},
	"StatefulSet": func() (any, *metav1.ObjectMeta, *corev1.PodSpec) {
		o := &appsv1.StatefulSet{}
		return o, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec
	},
	"DaemonSet": func() (any, *metav1.ObjectMeta, *corev1.PodSpec) {
		o := &appsv1.DaemonSet{}
		return o, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec
	},
	"ReplicaSet": func() (any, *metav1.ObjectMeta, *corev1.PodSpec) {
		o := &appsv1.ReplicaSet{}
		return o, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec
	},
	"Job": func() (any, *metav1.ObjectMeta, *corev1.PodSpec) {
		o := &batchv1.Job{}
		return o, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec
	},
	"CronJob": func() (any, *metav1.ObjectMeta, *corev1.PodSpec) {
		o := &batchv1.CronJob{}
		t := &o.Spec.JobTemplate.Spec.Template
		return o, &t.ObjectMeta, &t.Spec
	},
}

// Manifests copies the YAML documents of r to w, injecting every pod and
// pod template (Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets,
// Jobs, CronJobs, and those in a v1 List) with Pod. Other documents are copied unchanged; empty
// ones are dropped. Workloads are decoded strictly into their Kubernetes
// types, so a misspelt field is an error, not a silent loss. It returns
// what it did with each workload.
func Manifests(r io.Reader, w io.Writer, cfg Config) ([]DocResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var results []DocResult
	first := true
	for i := 1; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return results, nil
		}
		if err != nil {
			return results, fmt.Errorf("document %d: %w", i, err)
		}
		out, res, err := injectDocument(doc, cfg)
		if err != nil {
			return results, fmt.Errorf("document %d: %w", i, err)
		}
		if res != nil {
			results = append(results, *res)
		}
		if len(out) == 0 {
			continue
		}
		if !first {
			io.WriteString(w, "---\n")
		}
		first = false
		if _, err := w.Write(out); err != nil {
			return results, err
		}
	}
}

// injectDocument returns doc, injected if it holds a pod.
func injectDocument(doc []byte, cfg Config) ([]byte, *DocResult, error) {
	doc = bytes.TrimLeft(doc, "\n")
	var head struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        struct{ Name string } `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return nil, nil, err
	}
	if head.Kind == "" {
		if isBlank(doc) {
			return nil, nil, nil
		}
		return doc, nil, nil
	}
	if head.Kind == "List" {
		return injectList(doc, cfg)
	}
	hold, ok := podHolders[head.Kind]
	if !ok {
		return doc, nil, nil
	}
	obj, meta, spec := hold()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, nil, fmt.Errorf("%s %q: %w", head.Kind, head.Metadata.Name, err)
	}
	res, err := Pod(meta, spec, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %q: %w", head.Kind, head.Metadata.Name, err)
	}
	dr := &DocResult{Kind: head.Kind, Name: head.Metadata.Name, Result: res}
	if !res.Injected {
		return doc, dr, nil
	}
	out, err := yaml.Marshal(obj)
	return out, dr, err
}

// injectList injects the items of a v1 List, as kubectl get -o yaml
// prints several objects.
func injectList(doc []byte, cfg Config) ([]byte, *DocResult, error) {
	var list map[string]any
	if err := yaml.Unmarshal(doc, &list); err != nil {
		return nil, nil, err
	}
	items, _ := list["items"].([]any)
	res := &DocResult{Kind: "List"}
	for i, item := range items {
		itemDoc, err := yaml.Marshal(item)
		if err != nil {
			return nil, nil, err
		}
		out, r, err := injectDocument(itemDoc, cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("item %d: %w", i+1, err)
		}
		if r != nil {
			res.Items = append(res.Items, *r)
		}
		if err := yaml.Unmarshal(out, &items[i]); err != nil {
			return nil, nil, err
		}
	}
	if len(res.Items) == 0 {
		return doc, nil, nil
	}
	out, err := yaml.Marshal(list)
	return out, res, err
}

// isBlank reports whether a document holds only comments and whitespace.
func isBlank(doc []byte) bool {
	for line := range bytes.Lines(doc) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' {
			return false
		}
	}
	return true
}
