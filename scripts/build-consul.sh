#!/usr/bin/env bash
# Builds the pinned Consul binary into bin/consul, once.
#
# The suite and the demo run against Consul v1.14.11, the newest release
# under the Mozilla Public License 2.0: Consul's 1.17 line and every patch
# release from 2024 on are under the Business Source License, and 1.15 on
# also need the envoyextensions and troubleshoot submodules, which are not
# open source. Every module compiled into v1.14.11 is under an open-source
# licence (Apache-2.0, MIT, MPL-2.0, BSD or ISC).
#
# CONSUL_VERSION and the submodule versions are variables so that a newer
# open-source build can be tried; to run the suite against any Consul you
# already have, set WEFT_CONSUL_BIN instead (README, "Consul versions").
#
# Consul's go.mod carries replace directives, so `go install pkg@version`
# refuses it. We build it from a throw-away wrapper module that requires
# Consul and its submodules at the versions its own go.mod names.
set -euo pipefail

CONSUL_VERSION="${CONSUL_VERSION:-v1.14.11}"
CONSUL_API_VERSION="${CONSUL_API_VERSION:-v1.18.1}"
CONSUL_SDK_VERSION="${CONSUL_SDK_VERSION:-v0.13.0}"
CONSUL_PROTO_PUBLIC_VERSION="${CONSUL_PROTO_PUBLIC_VERSION:-v0.2.1}"
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

go 1.20

require (
	github.com/hashicorp/consul ${CONSUL_VERSION}
	github.com/hashicorp/consul/api ${CONSUL_API_VERSION}
	github.com/hashicorp/consul/proto-public ${CONSUL_PROTO_PUBLIC_VERSION}
	github.com/hashicorp/consul/sdk ${CONSUL_SDK_VERSION}
)
MOD

echo "building consul ${CONSUL_VERSION} into ${out} (first time takes several minutes)" >&2
cd "$work"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
go mod download github.com/hashicorp/consul
go get "github.com/hashicorp/consul@${CONSUL_VERSION}"
# Refuse to build anything that links a module that is not open source.
# (go list -deps names the modules of the packages actually compiled in.)
mods="$(go list -deps -f '{{with .Module}}{{.Path}}{{end}}' github.com/hashicorp/consul | sort -u)"
if grep -E 'hashicorp/consul/(envoyextensions|troubleshoot)$' <<<"$mods" >&2; then
  echo "build-consul: the build links a Consul submodule that is not open source" >&2
  exit 1
fi
ver="${CONSUL_VERSION#v}"
go build -trimpath \
  -ldflags "-s -w -X github.com/hashicorp/consul/version.GitDescribe=v${ver} -X github.com/hashicorp/consul/version.Version=${ver} -X github.com/hashicorp/consul/version.VersionPrerelease=" \
  -o "$out.tmp" github.com/hashicorp/consul
mv "$out.tmp" "$out"
"$out" version | sed -n 1p >&2
