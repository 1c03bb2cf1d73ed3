#!/usr/bin/env bash
# make demo-multicluster: two Consul clusters (dc1, dc2) on loopback, peered
# through Consul's HTTP API, each with its own Weft control plane; web in
# dc1 calls api in dc2 through dc2's mesh gateway (a weft-proxy), then a
# dc1 api that fails over to dc2's when it goes into maintenance. Ctrl-C
# stops everything.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
state="$root/.demo-multicluster"
logs="$state/logs"
CONSUL="$root/bin/consul"
WEFT="$root/bin/weft"
PROXY="$root/bin/weft-proxy"
APP="$root/bin/demo-app"
DC1=127.0.0.1:8510 # Consul dc1's HTTP API
DC2=127.0.0.1:8520 # Consul dc2's HTTP API
DEMO_REQUESTS="${DEMO_REQUESTS:-0}" # 0: keep sending until Ctrl-C

# shellcheck source=scripts/demo-lib.sh
source "$root/scripts/demo-lib.sh"

check_ports 8510 8310 8311 8513 8520 8320 8321 8523 15100 15110 15200 15210 8180 9201 9202 9191 \
  21100 21201 21202 8443 19100 19201 19202 19210
rm -rf "$state"; mkdir -p "$logs" "$state/tls"

step "starting two Consul clusters: dc1 (http://$DC1) and dc2 (http://$DC2)"
# Consul 1.14 generates and accepts peering tokens only on its gRPC TLS
# port: each agent gets a server certificate from a demo CA (consul tls).
(cd "$state/tls" && "$CONSUL" tls ca create >/dev/null &&
  "$CONSUL" tls cert create -server -dc dc1 -additional-ipaddress 127.0.0.1 >/dev/null &&
  "$CONSUL" tls cert create -server -dc dc2 -additional-ipaddress 127.0.0.1 >/dev/null)
agent() { # agent DC HTTP SERVER SERF_LAN GRPC_TLS: every port set, or -1 (off)
  start "consul-$1" "$CONSUL" agent -dev -datacenter "$1" -bind 127.0.0.1 -client 127.0.0.1 -node "demo-$1" \
    -http-port "$2" -server-port "$3" -serf-lan-port "$4" -serf-wan-port -1 -dns-port -1 -grpc-port -1 \
    -grpc-tls-port "$5" -hcl 'use_streaming_backend = false' \
    -hcl "tls { grpc { ca_file = \"$state/tls/consul-agent-ca.pem\" cert_file = \"$state/tls/$1-server-consul-0.pem\" key_file = \"$state/tls/$1-server-consul-0-key.pem\" } }"
}
agent dc1 8510 8310 8311 8513
agent dc2 8520 8320 8321 8523
for a in $DC1 $DC2; do wait_for "Consul leader at $a" 30 bash -c "curl -sf $a/v1/status/leader | grep -q :"; done

step "peering dc1 and dc2 through Consul's HTTP API"
token=$(curl -sf -X POST "$DC2/v1/peering/token" -d '{"PeerName":"dc1"}' | sed -nE 's/.*"PeeringToken": *"([^"]*)".*/\1/p') ||
  die "dc2 generated no peering token (see $logs/consul-dc2.log)"
[ -n "$token" ] || die "dc2 answered no peering token (see $logs/consul-dc2.log)"
echo "  dc2: POST /v1/peering/token {PeerName: dc1}"
curl -sf -X POST "$DC1/v1/peering/establish" -d "{\"PeerName\":\"dc2\",\"PeeringToken\":\"$token\"}" >/dev/null ||
  die "dc1 could not establish the peering (see $logs/consul-dc1.log)"
echo "  dc1: POST /v1/peering/establish {PeerName: dc2, PeeringToken: …}"
wait_for "the peering ACTIVE on both sides" 60 bash -c \
  "curl -sf $DC1/v1/peering/dc2 | grep -q '\"State\": *\"ACTIVE\"' && curl -sf $DC2/v1/peering/dc1 | grep -q '\"State\": *\"ACTIVE\"'"
echo "  peering ACTIVE: Consul exchanged the clusters' CA roots through it"

# --ca-provider consul: each control plane shares its cluster's Connect CA,
# whose roots Consul exchanges with the peer, so each side can verify the
# other's sidecars. dc2's sidecars export spans to dc1's control plane, so
# one trace shows both clusters.
step "starting a Weft control plane per cluster (Consul's CA; every request traced, all spans to dc1's viewer)"
start control-plane-dc1 "$WEFT" control-plane --consul-addr "$DC1" --xds-addr 127.0.0.1:15110 --admin-addr 127.0.0.1:15100 \
  --ca-dir "$state/ca-dc1" --ca-provider consul --trace-sampling 100
start control-plane-dc2 "$WEFT" control-plane --consul-addr "$DC2" --xds-addr 127.0.0.1:15210 --admin-addr 127.0.0.1:15200 \
  --ca-dir "$state/ca-dc2" --ca-provider consul --trace-sampling 100 --otlp-endpoint 127.0.0.1:15110
for a in 15100 15200; do wait_for "control plane :$a" 30 curl -sf "http://127.0.0.1:$a/ready"; done

step "dc2: api ×2 with sidecars, a mesh gateway, and api exported to peer dc1"
CONSUL_HTTP_ADDR=$DC2 "$CONSUL" config write deploy/demo-multicluster/api-defaults.hcl
for i in 1 2; do
  "$WEFT" register --consul-addr "$DC2" --name api --id "api-$i" --port "920$i" --sidecar-port "2120$i"
  start "api-$i" "$APP" --name "api-$i (dc2)" --listen "127.0.0.1:920$i"
  start "api-$i-sidecar" "$PROXY" --proxy-id "api-$i-sidecar-proxy" --xds-addr 127.0.0.1:15210 --admin-addr "127.0.0.1:1920$i"
done
"$WEFT" register --consul-addr "$DC2" --gateway mesh --name mesh-gateway --id mesh-gateway-dc2 --address 127.0.0.1 --port 8443
start mesh-gateway-dc2 "$PROXY" --proxy-id mesh-gateway-dc2 --xds-addr 127.0.0.1:15210 --admin-addr 127.0.0.1:19210
gw_pid=${pids[-1]}
CONSUL_HTTP_ADDR=$DC2 "$CONSUL" config write deploy/demo-multicluster/exported-services.hcl
echo "wrote deploy/demo-multicluster/exported-services.hcl (api → peer dc1)"

step "dc1: web, calling api of peer dc2 on 127.0.0.1:9191"
"$WEFT" register --consul-addr "$DC1" --name web --id web-1 --port 8180 --sidecar-port 21100 --upstreams api.svc.dc2.peer:9191,api:9192
start web-1 "$APP" --name web-1 --listen 127.0.0.1:8180 --upstream http://127.0.0.1:9191
start web-1-sidecar "$PROXY" --proxy-id web-1-sidecar-proxy --xds-addr 127.0.0.1:15110 --admin-addr 127.0.0.1:19100
for a in 19100 19201 19202 19210; do wait_for "proxy admin :$a ready" 30 curl -sf "http://127.0.0.1:$a/ready"; done
echo "proxies ready; waiting for dc2's Consul to see both api sidecars healthy (its listening check runs every 10s)"
wait_for "both api sidecars passing in dc2" 60 bash -c \
  "[ \$(curl -sf '$DC2/v1/health/connect/api?passing' | grep -oE '\"ServiceID\": *\"api-[0-9]-sidecar-proxy\"' | sort -u | wc -l) -eq 2 ]"
wait_for "web in dc1 reaching api in dc2" 60 bash -c "curl -sf -m 2 http://127.0.0.1:8180/ | grep -q dc2"

step "sending traffic: curl :8180 → web-1 (dc1) → web's sidecar → dc2's mesh gateway → api sidecar → api-N (dc2)"
DEMO_URL=http://127.0.0.1:8180/
served_by() { # served_by BODY: what the tally counts an answer as
  local inst
  inst=$(echo "$1" | grep -oE 'api-[0-9a-z]+ \(dc[12]\)' | tr -d ' ' || true)
  [ -n "$inst" ] || inst=$(echo "$1" | grep -oE 'rbac_denied|peer_unreachable|no_exported_service|[a-z_]+_failure|no_healthy_upstream|upstream_[a-z_]+' | head -1 || true)
  echo "${inst:-other}"
}
for _ in $(seq 1 10); do send; done
tally

step "identities: each cluster's sidecars hold leaves of their own cluster's trust domain"
spiffe() { curl -sf "http://127.0.0.1:$1/certs" | grep -oE '"spiffe_id": *"[^"]*"' | sed -n 1p | sed -E 's/.*"(spiffe:[^"]*)"/\1/'; }
echo "  web-1's sidecar (dc1): $(spiffe 19100)"
echo "  api-1's sidecar (dc2): $(spiffe 19201)"
echo "  web's sidecar trusts dc2's roots for dc2's identities only; api's sidecar trusts dc1's for dc1's only"

step "the mesh gateway: routes by SNI and passes mTLS through; it holds no key"
curl -sf http://127.0.0.1:19210/listeners | grep -oE '"(name|mode)": *"[^"]*"' | paste -sd' ' | sed 's/^/  listener: /'
if curl -sf http://127.0.0.1:19210/certs | grep -q '"leaf": *{'; then
  echo "  WARNING: the gateway holds a leaf certificate"
else
  echo "  certificates held by the gateway: none (no leaf, no trust bundle)"
fi
echo "  SNI routes: $(curl -sf http://127.0.0.1:19210/config_dump | grep -oE 'api\.default\.default\.dc1\.external\.[a-z0-9.-]+' | sort -u | paste -sd' ')"
echo "  what it passed, by service and peer (weft_proxy_gateway_connections_total):"
curl -sf http://127.0.0.1:19210/metrics | grep '^weft_proxy_gateway_connections_total' | sed 's/^/    /'
echo "  connections passed through so far: $(curl -sf http://127.0.0.1:19210/metrics | awk '/^weft_proxy_tcp_connections_opened_total/ {s += $NF} END {print s + 0}')"
echo "  it balances connections, not requests: web's sidecar reuses its connection, so one api instance serves it until it reconnects"

step "intentions across the peering: dc2 denies web of peer dc1"
CONSUL_HTTP_ADDR=$DC2 "$CONSUL" config write deploy/demo-multicluster/intentions-deny-peer.hcl
echo "  api (protocol http) enforces it per request in dc2: web gets 403 with x-weft-error: rbac_denied"
for _ in 1 2 3; do sleep 0.5; send; done
CONSUL_HTTP_ADDR=$DC2 "$CONSUL" config delete -kind service-intentions -name api
echo "  intention deleted: the default (allow) applies again"
for _ in 1 2 3; do sleep 0.5; send; done

step "a mesh gateway outage: stop dc2's gateway, then start it again"
kill "$gw_pid"; wait "$gw_pid" 2>/dev/null || true
echo "  gateway stopped: web's sidecar cannot reach dc2, and says so: x-weft-error peer_unreachable"
for _ in 1 2; do send; done
restarted=$SECONDS
start mesh-gateway-dc2 "$PROXY" --proxy-id mesh-gateway-dc2 --xds-addr 127.0.0.1:15210 --admin-addr 127.0.0.1:19210
wait_for "the gateway ready again" 30 curl -sf http://127.0.0.1:19210/ready
wait_for "web reaching api through the restarted gateway" 60 bash -c "curl -sf -m 2 http://127.0.0.1:8180/ | grep -q dc2"
echo "  gateway back: web reaches api again $((SECONDS - restarted))s after the gateway restarted"
for _ in 1 2 3; do send; done

step "failover to the peer: dc1 runs its own api; a service-resolver fails it over to dc2's"
CONSUL_HTTP_ADDR=$DC1 "$CONSUL" config write deploy/demo-multicluster/api-defaults.hcl
CONSUL_HTTP_ADDR=$DC1 "$CONSUL" config write deploy/demo-multicluster/api-failover.hcl
echo "wrote deploy/demo-multicluster/api-failover.hcl (api in dc1: Failover → Targets = [{ Peer = \"dc2\" }])"
"$WEFT" register --consul-addr "$DC1" --name api --id api-dc1 --port 9301 --sidecar-port 21301
start api-dc1 "$APP" --name "api-dc1 (dc1)" --listen 127.0.0.1:9301
start api-dc1-sidecar "$PROXY" --proxy-id api-dc1-sidecar-proxy --xds-addr 127.0.0.1:15110 --admin-addr 127.0.0.1:19301
wait_for "api-dc1's sidecar ready" 30 curl -sf http://127.0.0.1:19301/ready
echo "waiting for dc1's Consul to see api-dc1's sidecar healthy (its listening check runs every 10s)"
wait_for "api-dc1 passing in dc1" 60 bash -c "curl -sf '$DC1/v1/health/connect/api?passing' | grep -q api-dc1-sidecar-proxy"
# shares prints the aggregate's children with the share of new requests
# each takes now, as web's sidecar's /clusters reports them.
shares() {
  curl -sf http://127.0.0.1:19100/clusters | python3 -c '
import json, sys
for c in json.load(sys.stdin):
    agg = c.get("aggregate")
    if agg:
        for ch in agg["children"]:
            print("    %-40s %3d %% of new requests" % (ch["name"], ch["share"]))'
}
wait_for "web's sidecar sending api's calls to dc1" 30 bash -c "curl -sf http://127.0.0.1:19100/clusters | grep -q '\"active\": *\"failover-target~0~'"
echo "  web's sidecar holds an aggregate cluster for api (failover-target~0 dc1's instances, ~1 dc2's through its mesh gateway):"
shares
DEMO_URL=http://127.0.0.1:9192/
for _ in 1 2 3; do send; done
echo "  dc1's api goes into maintenance (consul maint: critical at once, as a stopped instance would be)"
CONSUL_HTTP_ADDR=$DC1 "$CONSUL" maint -enable -service api-dc1 -reason "demo: failover to dc2" >/dev/null
drained=$SECONDS
wait_for "web's sidecar sending api's calls to dc2" 30 bash -c "curl -sf http://127.0.0.1:19100/clusters | grep -q '\"active\": *\"failover-target~1~'"
echo "  web's sidecar moved api's calls to dc2 within $((SECONDS - drained))s:"
shares
for _ in 1 2 3; do send; done
CONSUL_HTTP_ADDR=$DC1 "$CONSUL" maint -disable -service api-dc1 >/dev/null
restored=$SECONDS
wait_for "web's sidecar sending api's calls to dc1 again" 30 bash -c "curl -sf http://127.0.0.1:19100/clusters | grep -q '\"active\": *\"failover-target~0~'"
echo "  maintenance over: back to dc1 within $((SECONDS - restored))s"
shares
for _ in 1 2 3; do send; done
DEMO_URL=http://127.0.0.1:8180/

step "one trace across both clusters (dc2's sidecars export to dc1's viewer)"
"$WEFT" traces --admin-addr 127.0.0.1:15100 --limit 3 2>&1 | sed 's/^/  /'

cat <<MSG

$(bold "Two clusters are running. Where to look next:")
  Consul UIs (peering, imported and exported services)  http://$DC1/ui  http://$DC2/ui
  The peering as each side sees it                       curl -s $DC1/v1/peering/dc2   curl -s $DC2/v1/peering/dc1
  Control planes: connected proxies (gateway included)    curl -s http://127.0.0.1:15100/proxies   curl -s http://127.0.0.1:15200/proxies
  web's sidecar: its peered cluster and TLS               curl -s http://127.0.0.1:19100/config_dump
  The mesh gateway: what it routes where                  $WEFT proxy-status --admin-addr 127.0.0.1:15200 mesh-gateway-dc2
  The mesh gateway: listeners, clusters, counters         curl -s http://127.0.0.1:19210/clusters   curl -s http://127.0.0.1:19210/metrics
  Trace viewer (both clusters)                            http://127.0.0.1:15100/traces
  Logs of every process                                   $logs/

MSG
if [ "$DEMO_REQUESTS" -gt 0 ]; then
  for _ in $(seq 1 "$DEMO_REQUESTS"); do send; done
  tally
  exit 0
fi
bold "Sending one request per second; press Ctrl-C to stop everything."
while true; do
  send
  [ $((n % 10)) -ne 0 ] || tally
  sleep 1
done
