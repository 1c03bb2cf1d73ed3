// Package k8s holds Weft's Kubernetes tests: weft injector registered with
// a real kube-apiserver (and etcd) on loopback, pods created through it,
// and the Helm chart rendered, strictly decoded and dry-run applied. The
// pinned binaries come from bin/ (make kube helm). Skipped with -short.
package k8s
