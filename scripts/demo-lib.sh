# Shared by scripts/demo.sh and scripts/demo-multicluster.sh: output,
# background processes stopped on exit, and waiting for readiness. The
# sourcing script sets $logs before calling start or wait_for.

bold() { printf '\033[1m%s\033[0m\n' "$*"; }
step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }
die() { printf '\033[1;31mdemo: %s\033[0m\n' "$*" >&2; exit 1; }

pids=()
cleanup() {
  trap - EXIT INT TERM
  step "stopping the demo"
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped. Logs are kept in $logs"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # start NAME CMD...: run in the background, logging to $logs/NAME.log
  local name="$1"; shift
  "$@" >"$logs/$name.log" 2>&1 &
  pids+=($!)
}

wait_for() { # wait_for WHAT SECONDS CMD...: poll CMD until it succeeds
  local what="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out after ${secs}s waiting for $what (see $logs)"
    sleep 0.2
  done
}

check_ports() { # check_ports PORT...: fail if something listens on one
  local port
  for port in "$@"; do
    if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
      die "port $port on 127.0.0.1 is in use; stop what uses it (an earlier demo?) and retry"
    fi
  done
}

# send makes one request to $DEMO_URL, prints its answer, and counts it
# under what the sourcing script's served_by names; tally prints the
# counts so far.
declare -A served=()
n=0
send() {
  local out
  n=$((n + 1))
  if out=$(curl -s -m 5 -w ' %{http_code} %{time_total}s' "$DEMO_URL"); then
    local body code took inst
    read -r code took <<<"$(echo "$out" | tail -1 | awk '{print $(NF-1), $NF}')"
    body=$(echo "$out" | sed -n 1p | sed 's/ [0-9]* [0-9.]*s$//')
    inst=$(served_by "$body")
    served[$inst]=$(( ${served[$inst]:-0} + 1 ))
    printf '  request %-4d %s  HTTP %s in %s\n' "$n" "$body" "$code" "$took"
  else
    served[failed]=$(( ${served[failed]:-0} + 1 ))
    printf '  request %-4d failed\n' "$n"
  fi
}
tally() {
  local line="  served so far:"
  for k in $(echo "${!served[@]}" | tr ' ' '\n' | sort); do line+=" $k=${served[$k]}"; done
  bold "$line"
}
