# Sourced by scripts/test, scripts/demo and scripts/bench: start and stop moto in server mode on
# loopback.
#   start_moto   starts one more moto; exports FIREBREAK_TEST_MOTO=http://127.0.0.1:PORT (the
#                newest) and MOTO_PID, and remembers the pid in MOTO_PIDS
#   stop_moto    stops every moto started here (safe to call twice; meant for `trap stop_moto EXIT`)

MOTO_PIDS="${MOTO_PIDS:-}"

start_moto() {
  local root venv port log
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="$root/.venv"
  port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  log="${TMPDIR:-/tmp}/firebreak-moto-$port.log"
  # AWS managed IAM policies (e.g. AWSCompromisedKeyQuarantineV3) exist in moto only with this.
  MOTO_IAM_LOAD_MANAGED_POLICIES=true "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  MOTO_PID=$!
  MOTO_PIDS="$MOTO_PIDS $MOTO_PID"
  export MOTO_PID MOTO_PIDS
  export FIREBREAK_TEST_MOTO="http://127.0.0.1:$port"
  for _ in $(seq 1 150); do
    if "$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('$FIREBREAK_TEST_MOTO/moto-api/', timeout=1)" 2>/dev/null; then
      echo "moto listening on $FIREBREAK_TEST_MOTO (pid $MOTO_PID, log $log)" >&2
      return 0
    fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      echo "moto failed to start; its log ($log):" >&2
      cat "$log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "moto did not answer on $FIREBREAK_TEST_MOTO within 30s; see $log" >&2
  return 1
}

stop_moto() {
  local pid
  for pid in $MOTO_PIDS; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  MOTO_PIDS=
  MOTO_PID=
}
