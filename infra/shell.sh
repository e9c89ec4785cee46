#!/usr/bin/env bash
# The pyspark shell with BigDL's jars and the project importable (`make shell`).
#   infra/shell.sh [PYSPARK OPTIONS]     e.g. --master spark://127.0.0.1:17077; the default: $PIPELINES_MASTER or local[2]
#   infra/shell.sh < session.py          the same shell without a terminal: runs the statements as typed, then exits
# The session gets what pipelines.context gives a session it starts itself (`python -m pipelines.context
# --properties`): BigDL's jars on both classpaths, -Xss16m, conf/spark/local.conf (or standalone.conf for spark://),
# log4j2 at WARN and this venv's Python on the workers. In the shell, pipelines.context.get_or_create() returns the
# shell's session with BigDL's engine initialised. Relative paths are relative to the directory you start it from.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PIPELINES_PYTHON:-$ROOT/.venv/bin/python}"
export SPARK_HOME="${SPARK_HOME:-$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$PYTHON}"
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$PYTHON}"
# pyspark runs its start-up file (which makes `spark` and `sc`) only for an interactive Python: force one for a pipe.
if [ ! -t 0 ]; then
  export PYSPARK_DRIVER_PYTHON_OPTS="-i${PYSPARK_DRIVER_PYTHON_OPTS:+ $PYSPARK_DRIVER_PYTHON_OPTS}"
fi

master="${PIPELINES_MASTER:-local[2]}"
args=("$@")
for i in "${!args[@]}"; do
  if [ "${args[$i]}" = --master ] && [ $((i + 1)) -lt ${#args[@]} ]; then master="${args[$((i + 1))]}"; fi
done

# MKL's code path for this CPU (pipelines.context.mkl_environment): local executors live in the shell's JVM,
# which takes its environment from here. A value already set wins.
while IFS='=' read -r key value; do
  if [ -n "$key" ] && [ -z "${!key+x}" ]; then export "$key=$value"; fi
done < <("$PYTHON" -c 'from pipelines.context import cpu_vendor, mkl_environment
for k, v in mkl_environment(cpu_vendor()).items(): print(f"{k}={v}")')

properties="$(mktemp "${TMPDIR:-/tmp}/pipelines-shell.XXXXXX.conf")"
trap 'rm -f "$properties"' EXIT
"$PYTHON" -m pipelines.context --properties "$master" > "$properties"
"$SPARK_HOME/bin/pyspark" --properties-file "$properties" "$@"
