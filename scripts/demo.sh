#!/usr/bin/env bash
# make demo: Consul + Weft control plane + web → api ×2 through weft-proxy
# sidecars, and web → billing (outside the mesh) through a terminating
# gateway, with traffic, on loopback. Ctrl-C stops everything.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
state="$root/.demo"
logs="$state/logs"
CONSUL="$root/bin/consul"
WEFT="$root/bin/weft"
PROXY="$root/bin/weft-proxy"
APP="$root/bin/demo-app"
export CONSUL_HTTP_ADDR=127.0.0.1:8500
DEMO_REQUESTS="${DEMO_REQUESTS:-0}" # 0: keep sending until Ctrl-C

# shellcheck source=scripts/demo-lib.sh
source "$root/scripts/demo-lib.sh"

check_ports 8500 8300 8301 15000 15010 8080 9001 9002 9003 9191 9292 8443 21000 21001 21002 19000 19001 19002 19003
rm -rf "$state"; mkdir -p "$logs"

step "starting Consul (dev agent, http://127.0.0.1:8500)"
# Every port the agent opens is set (or -1, off), so the demo never collides
# with another agent on this machine. use_streaming_backend = false works
# around a Consul 1.14 panic (README, "Consul versions").
start consul "$CONSUL" agent -dev -bind 127.0.0.1 -client 127.0.0.1 -node demo \
  -http-port 8500 -server-port 8300 -serf-lan-port 8301 -serf-wan-port -1 \
  -dns-port -1 -grpc-port -1 -grpc-tls-port -1 -hcl 'use_streaming_backend = false'
wait_for "Consul leader" 30 bash -c "curl -sf $CONSUL_HTTP_ADDR/v1/status/leader | grep -q :"

# --trace-sampling 100: the demo traces every request so that each one can
# be looked up; the default, 1 %, is for real traffic.
step "starting the Weft control plane (xDS 127.0.0.1:15010, admin http://127.0.0.1:15000, every request traced)"
start control-plane "$WEFT" control-plane --xds-addr 127.0.0.1:15010 --admin-addr 127.0.0.1:15000 --ca-dir "$state/ca" \
  --trace-sampling 100
wait_for "control plane" 30 curl -sf http://127.0.0.1:15000/ready

step "registering web and api ×2 in Consul with standard connect { sidecar_service } stanzas"
"$CONSUL" config write deploy/demo/defaults.hcl
for f in api-1 api-2 web billing; do "$CONSUL" services register "deploy/demo/$f.hcl" >/dev/null; echo "registered deploy/demo/$f.hcl"; done
echo "billing has no sidecar: the terminating gateway tgw answers for it (deploy/demo/terminating-gateway.hcl)"
"$CONSUL" config write deploy/demo/terminating-gateway.hcl
"$WEFT" register --gateway terminating --name tgw --id tgw-1 --address 127.0.0.1 --port 8443 --consul-addr "$CONSUL_HTTP_ADDR"

step "starting the apps and their weft-proxy sidecars"
start api-1 "$APP" --name api-1 --listen 127.0.0.1:9001
start api-2 "$APP" --name api-2 --listen 127.0.0.1:9002
api2_pid=${pids[-1]}
start web-1 "$APP" --name web-1 --listen 127.0.0.1:8080 --upstream http://127.0.0.1:9191
start web-1-sidecar "$PROXY" --proxy-id web-1-sidecar-proxy --xds-addr 127.0.0.1:15010 --admin-addr 127.0.0.1:19000
start api-1-sidecar "$PROXY" --proxy-id api-1-sidecar-proxy --xds-addr 127.0.0.1:15010 --admin-addr 127.0.0.1:19001
start api-2-sidecar "$PROXY" --proxy-id api-2-sidecar-proxy --xds-addr 127.0.0.1:15010 --admin-addr 127.0.0.1:19002
start billing-1 "$APP" --name billing-1 --listen 127.0.0.1:9003
start tgw-1 "$PROXY" --proxy-id tgw-1 --xds-addr 127.0.0.1:15010 --admin-addr 127.0.0.1:19003
for a in 19000 19001 19002 19003; do wait_for "proxy admin :$a ready" 30 curl -sf "http://127.0.0.1:$a/ready"; done
echo "sidecars ready; waiting for Consul to see both api sidecars healthy (its listening check runs every 10s)"
wait_for "both api sidecars passing in Consul" 60 bash -c \
  "[ \$(curl -sf '$CONSUL_HTTP_ADDR/v1/health/connect/api?passing' | grep -oE '\"ServiceID\": *\"api-[0-9]-sidecar-proxy\"' | sort -u | wc -l) -eq 2 ]"

step "sending traffic: curl 127.0.0.1:8080 → web-1 → web's sidecar (:9191) → api sidecar → api-N"
DEMO_URL=http://127.0.0.1:8080/
served_by() { # served_by BODY: what the tally counts an answer as
  echo "$1" | grep -o 'api-[0-9]' || echo "$1" | grep -o 'rbac_denied' || echo "refused"
}
for _ in $(seq 1 10); do send; done
tally

step "mTLS: every hop between sidecars is mutual TLS with a SPIFFE identity"
leaf=$(curl -sf http://127.0.0.1:19001/certs | grep -oE '"spiffe_id": *"[^"]*"' | sed -n 1p | sed -E 's/.*"(spiffe:[^"]*)"/\1/')
echo "  api-1's sidecar holds a leaf for $leaf (key generated in the sidecar, never sent)"
if curl -s -m 2 -o /dev/null http://127.0.0.1:21001/; then
  echo "  WARNING: plaintext reached api-1's sidecar"
else
  echo "  a plaintext client calling api-1's sidecar (:21001) directly is refused at the handshake"
fi
"$WEFT" ca roots | sed 's/^/  /'

step "intentions: deny web → api in Consul, and watch the sidecars enforce it"
"$CONSUL" config write deploy/demo/intentions-deny.hcl
echo "  api (protocol http) enforces intentions per request, as Consul does: web gets 403 with x-weft-error: rbac_denied"
for _ in 1 2 3; do sleep 0.5; send; done
"$CONSUL" config delete -kind service-intentions -name api
echo "  intention deleted: the default (allow, as Consul's ACLs are off) applies again"
for _ in 1 2 3; do sleep 0.5; send; done

step "outside the mesh: web → billing (no sidecar) through the terminating gateway tgw"
wait_for "the gateway passing in Consul (its TCP check runs every 10s)" 30 bash -c \
  "curl -sf '$CONSUL_HTTP_ADDR/v1/health/connect/billing?passing' | grep -q tgw-1"
echo "  Consul answers web's sidecar with the gateway as billing's instance; web's sidecar calls it with mTLS and expects billing's identity"
for _ in 1 2 3; do echo "  curl 127.0.0.1:9292 (web's upstream for billing) → $(curl -s -m 5 http://127.0.0.1:9292/)"; done
billing_id=$(curl -sf http://127.0.0.1:19003/certs | grep -oE 'spiffe://[^"]*/svc/billing' | sed -n 1p)
[ -n "$billing_id" ] || billing_id="billing's identity"
echo "  the gateway presents $billing_id (its key generated in the gateway), enforces billing's intentions, and forwards in plaintext:"
"$WEFT" proxy-status --admin-addr 127.0.0.1:15000 tgw-1 | grep 'SNI' | sed 's/^ */    /'

step "observability: every request is traced by both sidecars, counted, and can be tapped live"
echo "  recent traces (the control plane is the embedded OTLP backend; the viewer is at http://127.0.0.1:15000/traces):"
"$WEFT" traces --admin-addr 127.0.0.1:15000 2>&1 | sed -n '1,6s/^/  /p'
echo "  live tap of requests to api (weft tap --to api --count 3):"
timeout 15 "$WEFT" tap --admin-addr 127.0.0.1:15000 --to api --count 3 2>/dev/null | sed 's/^/  /' &
tap_pid=$!
for _ in $(seq 1 40); do
  kill -0 "$tap_pid" 2>/dev/null || break
  curl -s -m 5 -o /dev/null "$DEMO_URL" || true
  sleep 0.3
done
wait "$tap_pid" || true
echo "  web's sidecar request counters:"
curl -sf http://127.0.0.1:19000/metrics | grep '^weft_proxy_requests_total' | sed -n '1,4s/^/  /p'

cat <<MSG

$(bold "Weft is running. Where to look next:")
  Consul UI (services, health, sidecars) http://127.0.0.1:8500/ui
  Control plane: connected proxies, ACK/NACK per type   curl -s http://127.0.0.1:15000/proxies
  Control plane: the catalog it translated              curl -s http://127.0.0.1:15000/catalog
  web's sidecar: its live xDS config                    curl -s http://127.0.0.1:19000/config_dump
  api-1's sidecar: its certificate and trust bundle     $WEFT ca leaf --proxy-admin 127.0.0.1:19001
  The terminating gateway: what it answers for          $WEFT proxy-status --admin-addr 127.0.0.1:15000 tgw-1
  The mesh CA (roots, rotation)                         $WEFT ca roots   /   $WEFT ca rotate
  Trace viewer: search, latency plot, service map        http://127.0.0.1:15000/traces
  Live tap of requests to api (or the page /tap)        $WEFT tap --to api   /   http://127.0.0.1:15000/tap
  Logs of every process                                 $logs/
  Try a failover: stop api-2's app and watch traffic move:  kill $api2_pid
  Recent traces in the terminal                         $WEFT traces --admin-addr 127.0.0.1:15000
  web's sidecar: Prometheus metrics                     curl -s http://127.0.0.1:19000/metrics | grep weft_proxy_requests_total

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
