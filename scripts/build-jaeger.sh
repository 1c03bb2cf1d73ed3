#!/usr/bin/env bash
# Builds the pinned Jaeger all-in-one into bin/jaeger, once, for the
# end-to-end tracing test. Jaeger's go.mod has a replace directive, so it is
# built from a throw-away wrapper module carrying the same replace.
set -euo pipefail

JAEGER_VERSION="${JAEGER_VERSION:-v1.55.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${root}/bin/jaeger"
stamp="${out}.version"

if [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$JAEGER_VERSION" ]; then
  exit 0
fi
mkdir -p "${root}/bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat >"$work/go.mod" <<MOD
module weft.local/jaeger-build

go 1.21

require github.com/jaegertracing/jaeger ${JAEGER_VERSION}

replace github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0
MOD
echo "building jaeger all-in-one ${JAEGER_VERSION} into ${out} (first time takes several minutes)" >&2
cd "$work"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
go get "github.com/jaegertracing/jaeger/cmd/all-in-one@${JAEGER_VERSION}"
go build -trimpath -ldflags "-s -w" -o "$out.tmp" github.com/jaegertracing/jaeger/cmd/all-in-one
mv "$out.tmp" "$out"
echo "$JAEGER_VERSION" >"$stamp"
