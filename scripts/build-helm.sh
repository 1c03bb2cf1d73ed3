#!/usr/bin/env bash
# Builds the pinned Helm into bin/helm, once, for the chart tests and
# `make manifests`. Helm is a plain Go module: go install builds it.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# The Kubernetes version helm template assumes without --kube-version, set
# as Helm's own Makefile does, from its k8s.io/client-go version (v0.37).
HELM_K8S_MINOR="${HELM_K8S_MINOR:-37}"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${root}/bin/helm"

if [ -x "$out" ] && [ "$("$out" version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ]; then
  exit 0
fi
mkdir -p "${root}/bin"
echo "building helm ${HELM_VERSION} into ${out}" >&2
export GOTOOLCHAIN=local GOBIN="$(mktemp -d)"
trap 'rm -rf "$GOBIN"' EXIT
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
for pkg in pkg/lint/rules pkg/chartutil; do
  ldflags+=" -X helm.sh/helm/v3/${pkg}.k8sVersionMajor=1 -X helm.sh/helm/v3/${pkg}.k8sVersionMinor=${HELM_K8S_MINOR}"
done
go install -trimpath -ldflags "$ldflags" \
  "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
mv "$GOBIN/helm" "$out"
"$out" version --template '{{.Version}}{{"\n"}}' >&2
