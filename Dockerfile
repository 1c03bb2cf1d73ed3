# Builds both Weft binaries. The sidecar image is the same image with
# weft-proxy as its entrypoint:
#   docker build -t weft .
#   docker run weft control-plane --consul-addr consul:8500 --xds-addr 0.0.0.0:15010
#   docker run --entrypoint /weft-proxy weft --proxy-id web-1-sidecar-proxy --xds-addr weft:15010
FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -ldflags "-s -w" -o /out/weft ./cmd/weft \
 && go build -trimpath -ldflags "-s -w" -o /out/weft-proxy ./cmd/weft-proxy

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/weft /out/weft-proxy /
USER nonroot:nonroot
EXPOSE 15010 15000 19000
ENTRYPOINT ["/weft"]
