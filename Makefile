# Weft. `make demo` runs the mesh on this machine; `make test` runs every test.
SHELL := /bin/bash
export GOTOOLCHAIN := local
GO ?= go
BIN := $(CURDIR)/bin
TEST_TIMEOUT ?= 25m

.PHONY: all build consul gotestsum jaeger kube helm manifests image demo demo-multicluster test test-unit test-e2e soak vet fmt-check bench bench-go bench-deps bench-sidecar bench-report bench-cp clean proto fuzz

all: build

# Release builds, as the Dockerfile and bench/sidecar build them: static
# (no cgo), no build paths, no symbol table or DWARF (-s -w: the binary is
# smaller; code and data pages, and so memory, are unchanged).
GO_RELEASE_BUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w"

build: ## build weft, weft-proxy and the demo app into bin/ (static, stripped)
	$(GO_RELEASE_BUILD) -o $(BIN)/weft ./cmd/weft
	$(GO_RELEASE_BUILD) -o $(BIN)/weft-proxy ./cmd/weft-proxy
	$(GO_RELEASE_BUILD) -o $(BIN)/demo-app ./examples/demo-app

consul: ## build the pinned Consul (v1.14.11, MPL-2.0) into bin/consul (once)
	bash scripts/build-consul.sh

jaeger: ## build the pinned Jaeger all-in-one into bin/jaeger (once), for the tracing end-to-end test
	bash scripts/build-jaeger.sh

kube: ## build the pinned kube-apiserver and etcd into bin/ (once) for the Kubernetes tests
	bash scripts/build-kube-apiserver.sh
	bash scripts/build-etcd.sh

helm: ## build the pinned Helm into bin/helm (once)
	bash scripts/build-helm.sh

manifests: helm ## render deploy/manifests/weft.yaml from the Helm chart
	bash scripts/render-manifests.sh > deploy/manifests/weft.yaml

image: ## build the weft and weft-redirect images (needs docker)
	docker build -t weft .
	docker build --target weft-redirect -t weft-redirect .

demo: build consul ## run Consul, the control plane, web → api ×2 with sidecars, and traffic
	bash scripts/demo.sh

demo-multicluster: build consul ## two peered Consul clusters on loopback: web in dc1 calls api in dc2 through dc2's mesh gateway
	bash scripts/demo-multicluster.sh

# WEFT_CONSUL_BIN=/path/to/consul make test runs the suite against that
# Consul instead of the pinned build (README, "Consul versions").
WEFT_CONSUL_BIN ?= $(BIN)/consul
override WEFT_CONSUL_BIN := $(abspath $(WEFT_CONSUL_BIN))
# The pinned Consul is built only when the suite is to use it.
CONSUL_DEP := $(if $(filter $(BIN)/consul,$(WEFT_CONSUL_BIN)),consul,)
GOTESTSUM_VERSION := v1.13.0

test: $(CONSUL_DEP) gotestsum jaeger kube helm vet fmt-check ## the whole suite: unit and end-to-end tests with -race, real Consul and kube-apiserver
	WEFT_CONSUL_BIN=$(WEFT_CONSUL_BIN) $(BIN)/gotestsum --format pkgname-and-test-fails --format-hide-empty-pkg -- \
		-race -count=1 -timeout $(TEST_TIMEOUT) ./...

gotestsum: ## build gotestsum into bin/ (once): make test lists every skipped test with its reason
	@test -x $(BIN)/gotestsum || GOBIN=$(BIN) $(GO) install gotest.tools/gotestsum@$(GOTESTSUM_VERSION)

test-unit: ## tests that need no Consul
	$(GO) test -race -count=1 -short ./...

test-e2e: $(CONSUL_DEP) jaeger kube helm
	WEFT_CONSUL_BIN=$(WEFT_CONSUL_BIN) $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -v ./e2e/...

# The soak's 90-second schedule runs in make test (TestSoak, -race);
# make soak runs its 5-minute one and writes docs/soak.json and
# docs/soak.svg. Without -race: the race detector's shadow memory and
# its CPU cost would be what the RSS and latency figures measure.
soak: $(CONSUL_DEP) ## the 5-minute soak: HTTP/1.1, HTTP/2, gRPC and TCP load through the mesh while faults run on a schedule; writes docs/soak.json and docs/soak.svg
	WEFT_CONSUL_BIN=$(WEFT_CONSUL_BIN) $(GO) test -count=1 -timeout 15m -v -run '^TestSoak$$' ./e2e -args -soak.long -soak.out=$(CURDIR)/docs

FUZZTIME ?= 30s
FUZZ_TARGETS := ./controlplane/translate:FuzzTranslate ./controlplane/translate:FuzzTranslator ./proxy/config:FuzzCompile ./proxy/urlpath:FuzzNormalize \
	./proxy/listener:FuzzHTTPEdge ./proxy/listener:FuzzHTTP1Server ./proxy/listener:FuzzParseFastRequest ./proxy/listener:FuzzH2Guard ./proxy/listener:FuzzHTTP2Server ./internal/http1client:FuzzReadResponse ./proxy/cluster:FuzzHTTP2Client ./proxy/mtls:FuzzVerifyPeer ./certs:FuzzParseServiceID ./proxy/telemetry/accesslog:FuzzAppendJSON
fuzz: ## run every fuzz target for FUZZTIME each (their seed corpora also run in make test)
	@for t in $(FUZZ_TARGETS); do echo "== $$t"; $(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}" || exit 1; done

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# make bench BENCH_FLAGS=-quick: a smoke run (2 s runs, 1 round) to check
# the harness; its results file is labelled as such.
BENCH_FLAGS ?=
bench: bench-sidecar bench-report ## the performance numbers: measure every workload and peer, write bench/results/<date>-<commit>.json, render it into the README and docs/bench.svg

bench-go: ## Go benchmarks of the hot paths (pickers, translation, publishing)
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-deps: ## Debian's nginx, haproxy and wrk, and fortio, for bench-sidecar
	command -v nginx haproxy wrk >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx haproxy wrk)
	command -v fortio >/dev/null || test -x $$(go env GOPATH)/bin/fortio || $(GO) install fortio.org/fortio@v1.66.0

bench-sidecar: consul bench-deps ## Weft's pair vs direct, HAProxy pair, Consul's proxy pair: 4 workloads, throughput, latency, CPU, RSS, readiness (builds its own release binaries)
	$(GO) run ./bench/sidecar $(BENCH_FLAGS)

bench-report: ## render the newest bench/results file into README.md's performance block and docs/bench.svg
	$(GO) run ./bench/report

bench-cp: consul ## control-plane scale: 1,000 services × 2 instances, 2,000 ADS clients (BENCH_CP_FLAGS="-services 5000 -upstreams 5": 10,000); scenarios services, fan-out, mesh-wide, churn: convergence p50/p99/max, bytes, CPU, RSS, Consul load; renders the README's Scale block
	$(GO) run ./bench/cp $(BENCH_CP_FLAGS)
	$(GO) run ./bench/cp -render-readme README.md

clean:
	rm -rf $(BIN) .demo

proto: ## regenerate api/ Go code (needs protoc, protoc-gen-go, protoc-gen-go-grpc)
	protoc --go_out=. --go_opt=module=github.com/weft-mesh/weft --go-grpc_out=. --go-grpc_opt=module=github.com/weft-mesh/weft api/certs/v1/certs.proto
	protoc --go_out=. --go_opt=module=github.com/weft-mesh/weft --go-grpc_out=. --go-grpc_opt=module=github.com/weft-mesh/weft api/tap/v1/tap.proto
