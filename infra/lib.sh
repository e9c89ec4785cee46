# shellcheck shell=bash
# Shared by infra/cluster.sh and infra/hdfs.sh (sourced): daemons whose process ids are recorded in $PIDS/<name>.pid.

# Whether daemon NAME is running: its pid file names a live process.
running() { [ -f "$PIDS/$1.pid" ] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

# Stop daemon NAME by its recorded process id (TERM, up to 10 s, then KILL) and remove its pid file.
stop() {
  local pidfile="$PIDS/$1.pid"
  [ -f "$pidfile" ] || return 0
  local pid; pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}
