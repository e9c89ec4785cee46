#!/usr/bin/env bash
# Airflow in a virtualenv of its own, apart from the project's .venv (Airflow pins its own numpy, pandas, ...):
#   schedules/airflow/install.sh          create $PIPELINES_LOCAL/airflow-venv (default .local/airflow-venv) once
#   schedules/airflow/install.sh --path   print the venv's bin folder (for PATH) and do nothing else
# The Spark jobs themselves run with the project's .venv (spark-submit, python): see telemetry_dag.py.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
LOCAL="${PIPELINES_LOCAL:-$ROOT/.local}"
VENV="${AIRFLOW_VENV:-$LOCAL/airflow-venv}"
PYTHON="${PYTHON:-python3.11}"
REQUIREMENTS="$ROOT/schedules/airflow/requirements.txt"
STAMP="$VENV/.installed"

if [ "${1:-}" = "--path" ]; then echo "$VENV/bin"; exit 0; fi
# Reinstall when the pins change; otherwise this is a no-op.
if [ -f "$STAMP" ] && cmp -s "$STAMP" "$REQUIREMENTS"; then exit 0; fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
cp "$REQUIREMENTS" "$STAMP"
echo "Airflow $("$VENV/bin/python" -c 'import airflow; print(airflow.__version__)') in $VENV"
