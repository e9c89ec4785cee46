#!/usr/bin/env bash
# The one installation of the project into a Python 3.11 virtualenv, used by `make venv` and docker/Dockerfile.
#
#   infra/install.sh [--only deps|project] [--dry-run] [VENV_DIR]    (VENV_DIR default: .venv)
#   infra/install.sh --inputs                                         the files the installation reads
#
# Steps: create the venv with $PYTHON (default python3.11); requirements.txt; requirements-bigdl.txt without
# dependencies (BigDL's metadata pins pyspark==3.1.3, which fails on Java 17); the project's BigDL module (jvm/),
# compiled by Maven against the venv's BigDL jars into pipelines/jars/pipelines-jvm.jar (needs mvn and a JDK 17);
# the project itself, editable. --only deps stops before the project (a Docker layer that survives code changes),
# --only project does the last steps alone. --dry-run prints the commands instead of running them. $PIP_FLAGS is
# added to every pip install.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
INPUTS=(requirements.txt requirements-bigdl.txt setup.py jvm/pom.xml)
PYTHON="${PYTHON:-python3.11}"
ONLY=all
DRY=0
VENV=.venv

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY="${2:-}"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --inputs) printf '%s\n' "${INPUTS[@]}"; (cd "$ROOT" && find jvm/src -type f | sort); exit 0 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) VENV="$1"; shift ;;
  esac
done
case "$ONLY" in all|deps|project) ;; *) echo "install.sh: --only takes deps or project, not '$ONLY'" >&2; exit 2 ;; esac
if [ "$ONLY" != deps ] && [ "$DRY" = 0 ]; then
  for tool in mvn java javac; do
    if ! command -v "$tool" > /dev/null; then
      echo "install.sh: $tool not found; jvm/ needs Maven and a JDK 17 (Debian: maven openjdk-17-jdk-headless)" >&2
      exit 1
    fi
  done
fi

step() {
  if [ "$DRY" = 1 ]; then
    echo "$*"
  else
    "$@"
  fi
}

case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac  # relative to the caller's directory
cd "$ROOT"
PIP="$VENV/bin/pip"
read -r -a pip_flags <<< "${PIP_FLAGS:-}"
if [ "$ONLY" != project ]; then
  step "$PYTHON" -m venv "$VENV"
  step "$PIP" install --quiet "${pip_flags[@]}" -r requirements.txt
  step "$PIP" install --quiet "${pip_flags[@]}" --no-deps -r requirements-bigdl.txt
fi
if [ "$ONLY" != deps ]; then
  # Maven compiles against the BigDL jars that the dependencies step installed into the venv.
  share="$VENV/lib/python3.11/site-packages/bigdl/share"
  if [ "$DRY" = 0 ] && [ ! -d "$share/dllib/lib" ]; then
    echo "install.sh: no BigDL jars in $share; install the dependencies first (--only deps)" >&2
    exit 1
  fi
  step mvn -q -f jvm/pom.xml package "-Dbigdl.share=$share"
  step mkdir -p pipelines/jars
  step cp jvm/target/pipelines-jvm.jar pipelines/jars/pipelines-jvm.jar
  step "$PIP" install --quiet "${pip_flags[@]}" --no-deps --no-build-isolation -e .
fi
