#!/usr/bin/env bash
# A standalone Spark cluster on loopback: one master and two workers of one core each.
#   infra/cluster.sh up     start them (idempotent) and wait until both workers have registered
#   infra/cluster.sh down   stop them by their recorded process ids
#   infra/cluster.sh url    print the master URL
# Uses the Spark that pyspark ships in .venv; state (logs, pids, work dirs) under $PIPELINES_LOCAL/spark.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LOCAL="${PIPELINES_LOCAL:-$ROOT/.local}"
STATE="$LOCAL/spark"
PIDS="$STATE/pids"
PYTHON="${PIPELINES_PYTHON:-$ROOT/.venv/bin/python}"
PORT="${SPARK_MASTER_PORT:-17077}"
WEB_PORT="${SPARK_MASTER_WEBUI_PORT:-18080}"
URL="spark://127.0.0.1:$PORT"
WORKERS="${SPARK_WORKERS:-2}"
export SPARK_HOME="${SPARK_HOME:-$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}"
export SPARK_LOCAL_IP=127.0.0.1
export SPARK_LOG_DIR="$STATE/logs"
source "$ROOT/infra/lib.sh"

start() {
  local name="$1"; shift
  if running "$name"; then return; fi
  nohup "$SPARK_HOME/bin/spark-class" "$@" > "$STATE/logs/$name.out" 2>&1 &
  echo $! > "$PIDS/$name.pid"
}

up() {
  mkdir -p "$STATE/logs" "$PIDS"
  start master org.apache.spark.deploy.master.Master --host 127.0.0.1 --port "$PORT" --webui-port "$WEB_PORT"
  for i in $(seq 1 "$WORKERS"); do
    mkdir -p "$STATE/work$i"
    start "worker$i" org.apache.spark.deploy.worker.Worker "$URL" --host 127.0.0.1 --cores 1 --memory 3g \
      --webui-port 0 --work-dir "$STATE/work$i"
  done
  for _ in $(seq 1 60); do
    local alive
    alive="$("$PYTHON" - "$WEB_PORT" <<'PY' 2>/dev/null || echo 0
import json, sys, urllib.request
state = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/json/", timeout=2))
print(sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE"))
PY
)"
    if [ "$alive" -ge "$WORKERS" ]; then
      echo "Spark standalone cluster up at $URL ($alive workers)"
      return
    fi
    sleep 1
  done
  echo "the cluster did not start; see $STATE/logs" >&2
  tail -n 20 "$STATE/logs/"*.out >&2 || true
  down
  exit 1
}

down() {
  # spark-class execs the JVM, so the recorded pid is the daemon's own.
  for pidfile in "$PIDS"/worker*.pid; do
    [ -f "$pidfile" ] || continue
    stop "$(basename "$pidfile" .pid)"
  done
  stop master
}

status() { running master; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 up|down|status|url" >&2; exit 2 ;;
esac
