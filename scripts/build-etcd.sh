#!/usr/bin/env bash
# Builds a single-member etcd for the Kubernetes tests into bin/etcd, once:
# scripts/etcd/main.go (a thin wrapper around go.etcd.io/etcd/server/v3/embed)
# compiled in a throw-away module pinned to the etcd release below.
set -euo pipefail

ETCD_VERSION="${ETCD_VERSION:-v3.6.5}"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${root}/bin/etcd"

if [ -x "$out" ] && "$out" --version 2>/dev/null | grep -x "etcd Version: ${ETCD_VERSION#v}" >/dev/null; then
  exit 0
fi

mkdir -p "${root}/bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
grep -v '^//go:build ignore' "${root}/scripts/etcd/main.go" >"$work/main.go"
cat >"$work/go.mod" <<MOD
module weft.local/etcd-build

go 1.24

require (
	go.etcd.io/etcd/api/v3 ${ETCD_VERSION}
	go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
)
MOD

echo "building etcd ${ETCD_VERSION} into ${out}" >&2
cd "$work"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
go mod tidy
go build -trimpath -ldflags "-s -w" -o "$out.tmp" .
mv "$out.tmp" "$out"
"$out" --version >&2
