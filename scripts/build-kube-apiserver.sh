#!/usr/bin/env bash
# Builds the pinned kube-apiserver into bin/kube-apiserver, once, for the
# admission-webhook end-to-end test (e2e/k8s).
#
# k8s.io/kubernetes replaces every k8s.io/* staging module with a local
# directory (./staging/src/k8s.io/...), so `go install` refuses it. We build
# it from a throw-away wrapper module that requires k8s.io/kubernetes and
# replaces each staging module with its published release (v0.<minor>.<patch>).
# The list of staging modules is read from kubernetes' own go.mod.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.34.2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${root}/bin/kube-apiserver"

if [ -x "$out" ] && "$out" --version 2>/dev/null | grep -x "Kubernetes ${KUBE_VERSION}" >/dev/null; then
  exit 0
fi

mkdir -p "${root}/bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod GOTOOLCHAIN=local

staging_version="v0.${KUBE_VERSION#v1.}"   # v1.34.2 -> v0.34.2
gomod="$(cd "$work" && go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')"
[ -n "$gomod" ] || { echo "no go.mod for k8s.io/kubernetes@${KUBE_VERSION}" >&2; exit 1; }
go_version="$(sed -n 's/^go \(.*\)$/\1/p' "$gomod")"

{
  echo "module weft.local/kube-apiserver-build"
  echo
  echo "go ${go_version}"
  sed -n 's/^godebug .*/&/p' "$gomod"
  echo
  echo "require k8s.io/kubernetes ${KUBE_VERSION}"
  echo
  echo "replace ("
  sed -n 's#^\t\(k8s\.io/[^ ]*\) => \./staging/src/.*#\t\1 => \1 '"${staging_version}"'#p' "$gomod"
  echo ")"
} >"$work/go.mod"

echo "building kube-apiserver ${KUBE_VERSION} into ${out} (first time takes several minutes)" >&2
cd "$work"
pkg=k8s.io/kubernetes/cmd/kube-apiserver
go get "$pkg@${KUBE_VERSION}"
minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
vpkg=k8s.io/component-base/version
go build -trimpath \
  -ldflags "-s -w -X ${vpkg}.gitVersion=${KUBE_VERSION} -X ${vpkg}.gitMajor=1 -X ${vpkg}.gitMinor=${minor} -X ${vpkg}.gitTreeState=clean" \
  -o "$out.tmp" "$pkg"
mv "$out.tmp" "$out"
"$out" --version >&2
