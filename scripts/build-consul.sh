#!/usr/bin/env bash
# Builds the pinned Consul binary into bin/consul, once.
#
# Consul's go.mod carries replace directives, so `go install pkg@version`
# refuses it. We build it from a throw-away wrapper module that requires
# Consul and its submodules at the versions Consul's own go.mod names, with
# the same go-msgpack excludes.
set -euo pipefail

CONSUL_VERSION="${CONSUL_VERSION:-v1.22.3}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${root}/bin"
out="${bin}/consul"

if [ -x "$out" ] && "$out" version 2>/dev/null | sed -n 1p | grep "Consul ${CONSUL_VERSION}" >/dev/null; then
  exit 0
fi

mkdir -p "$bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cat >"$work/go.mod" <<MOD
module weft.local/consul-build

go 1.25.5

require (
	github.com/hashicorp/consul ${CONSUL_VERSION}
	github.com/hashicorp/consul/api v1.33.2
	github.com/hashicorp/consul/envoyextensions v0.9.2
	github.com/hashicorp/consul/proto-public v0.7.1
	github.com/hashicorp/consul/sdk v0.17.1
	github.com/hashicorp/consul/troubleshoot v0.8.3
)

exclude (
	github.com/hashicorp/go-msgpack v1.1.5
	github.com/hashicorp/go-msgpack v1.1.6
)
MOD

echo "building consul ${CONSUL_VERSION} into ${out} (first time takes several minutes)" >&2
cd "$work"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
go mod download github.com/hashicorp/consul
go get "github.com/hashicorp/consul@${CONSUL_VERSION}"
ver="${CONSUL_VERSION#v}"
go build -trimpath \
  -ldflags "-s -w -X github.com/hashicorp/consul/version.GitDescribe=v${ver} -X github.com/hashicorp/consul/version.Version=${ver} -X github.com/hashicorp/consul/version.VersionPrerelease=" \
  -o "$out.tmp" github.com/hashicorp/consul
mv "$out.tmp" "$out"
"$out" version | sed -n 1p >&2
