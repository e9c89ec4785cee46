#!/usr/bin/env bash
# Validate Oozie files against the XML schemas shipped in the oozie-client jar (fetched once from Maven Central
# into $PIPELINES_LOCAL/oozie, default .local/oozie):
#   schedules/oozie/validate.sh                    workflow.xml and coordinator.xml of this folder
#   schedules/oozie/validate.sh FILE.xml...        other files
#   schedules/oozie/validate.sh --jar              fetch the jar and print its path
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LOCAL="${PIPELINES_LOCAL:-$ROOT/.local}"
VERSION="${OOZIE_VERSION:-5.2.1}"
JAR="$LOCAL/oozie/oozie-client-$VERSION.jar"

if [ ! -f "$JAR" ]; then
  mkdir -p "$LOCAL/oozie"
  mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="org.apache.oozie:oozie-client:$VERSION" -DoutputDirectory="$LOCAL/oozie" >&2
fi
if [ "${1:-}" = "--jar" ]; then echo "$JAR"; exit 0; fi
if [ $# -eq 0 ]; then set -- "$HERE/workflow.xml" "$HERE/coordinator.xml"; fi
exec java "$HERE/Validate.java" "$JAR" "$@"
