#!/usr/bin/env bash
# Renders deploy/helm/weft into one plain manifest for users without Helm:
# `make manifests` writes it to deploy/manifests/weft.yaml. The chart is the
# source of truth; the rendered file is checked in so kubectl users can
# apply it directly. Uses cert-manager mode, so no CA key is rendered.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
helm="${WEFT_HELM_BIN:-${root}/bin/helm}"
ns="${WEFT_NAMESPACE:-weft-system}"

cat <<HEADER
# Weft: the control plane and the sidecar injector, rendered from
# deploy/helm/weft by \`make manifests\` (certs.mode=cert-manager: install
# cert-manager first). Do not edit; change the chart and re-render.
apiVersion: v1
kind: Namespace
metadata:
  name: ${ns}
HEADER
"$helm" template weft "${root}/deploy/helm/weft" --namespace "$ns" --set certs.mode=cert-manager
