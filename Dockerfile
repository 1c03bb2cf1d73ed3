# syntax=docker/dockerfile:1
#
# Two images from one Dockerfile, both with static binaries (CGO_ENABLED=0):
#
#   weft (the default, last stage): /weft and /weft-proxy on distroless
#     static, non-root. It runs the control plane, the injector, and both
#     sidecars of an injected pod: weft-proxy, and the membership sidecar
#     (weft register --wait). One image for all of them means a node pulls
#     one image for the mesh; the sidecar process is still weft-proxy alone,
#     which links no Kubernetes or Consul code.
#       docker build -t weft .
#       docker run weft control-plane --consul-addr consul:8500 --xds-addr 0.0.0.0:15010
#       docker run --entrypoint /weft-proxy weft --proxy-id web-1-sidecar-proxy --xds-addr weft:15010
#
#   weft-redirect: /weft and Debian's iptables, for the transparent-proxy
#     init container only (weft redirect, root with NET_ADMIN, then exits).
#     iptables needs libc and its xtables modules, which a static distroless
#     base does not have, and no long-running container should carry them.
#       docker build --target weft-redirect -t weft-redirect .
#
# Base images are pinned by digest. The digests below are the ones public
# Dockerfiles pinned these tags to in 2026 (golang:1.26.8-bookworm,
# distroless static-debian12:nonroot as of 2026-08-26, debian:bookworm-slim);
# they could not be pulled from the machine that wrote this file. The
# release process must confirm or refresh them (crane digest IMAGE:TAG)
# before publishing, and pass newer ones with --build-arg.
ARG GO_IMAGE=golang:1.26.8-bookworm@sha256:dc9ad6c05acc7a88e5b71bde60a5fe3bd4b9f0db209011711b464107438a8107
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
ARG REDIRECT_BASE_IMAGE=debian:bookworm-slim@sha256:d5d3f9c23164ea16f31852f95bd5959aad1c5e854332fe00f7b3a20fcc9f635c

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -ldflags "-s -w" -o /out/weft ./cmd/weft \
 && go build -trimpath -ldflags "-s -w" -o /out/weft-proxy ./cmd/weft-proxy

FROM ${REDIRECT_BASE_IMAGE} AS weft-redirect
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/weft /weft
# Root, as iptables needs; the pod grants only NET_ADMIN and NET_RAW.
USER 0:0
ENTRYPOINT ["/weft"]

FROM ${RUNTIME_IMAGE} AS weft
COPY --from=build /out/weft /out/weft-proxy /
USER 65532:65532
EXPOSE 15010 15000 8443 19000 20000
ENTRYPOINT ["/weft"]
