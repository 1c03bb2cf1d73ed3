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
