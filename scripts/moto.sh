# Sourced by scripts/test and scripts/demo: start and stop moto in server mode on loopback.
#   start_moto   exports FIREBREAK_TEST_MOTO=http://127.0.0.1:PORT and MOTO_PID
#   stop_moto    stops it (safe to call twice; meant for `trap stop_moto EXIT`)

start_moto() {
  local root venv port log
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="$root/.venv"
  port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  log="${TMPDIR:-/tmp}/firebreak-moto-$port.log"
  # AWS managed IAM policies (e.g. AWSCompromisedKeyQuarantineV3) exist in moto only with this.
  MOTO_IAM_LOAD_MANAGED_POLICIES=true "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  MOTO_PID=$!
  export MOTO_PID
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
  if [ -n "${MOTO_PID:-}" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
  fi
  MOTO_PID=
}
