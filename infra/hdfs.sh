#!/usr/bin/env bash
# A development HDFS on loopback: one NameNode and one DataNode from Apache Hadoop 3.3.4 (jars from Maven Central).
#   infra/hdfs.sh up     fetch jars (cached), write the config, format once, start, wait until writable
#   infra/hdfs.sh down   stop both daemons by their recorded process ids
#   infra/hdfs.sh env    print the exports Spark needs (HADOOP_CONF_DIR) and the file system URI
#   infra/hdfs.sh dfs .. Hadoop's file system shell (hdfs dfs ...) on it: infra/hdfs.sh dfs -put -f FILE /apps/
# State lives under $PIPELINES_LOCAL (default: .local/ in the repository): jars, config, data, logs, pids.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HOME_DIR="${PIPELINES_LOCAL:-$ROOT/.local}/hdfs"
CONF="$HOME_DIR/conf"
PIDS="$HOME_DIR/pids"
source "$ROOT/infra/hadoop.sh"

write_conf() {
  mkdir -p "$CONF" "$HOME_DIR/name" "$HOME_DIR/data" "$HOME_DIR/logs" "$PIDS"
  # The daemons' web UIs look for these folders on the class path; Maven's hadoop-hdfs jar has none.
  mkdir -p "$CONF/webapps/hdfs" "$CONF/webapps/datanode" "$CONF/webapps/static" "$CONF/webapps/secondary"
  write_hdfs_site
  write_log4j hdfs
}

up() {
  fetch_jars
  write_conf
  if [ ! -f "$HOME_DIR/name/current/VERSION" ]; then
    hadoop org.apache.hadoop.hdfs.server.namenode.NameNode -format -force -nonInteractive > "$HOME_DIR/logs/format.out" 2>&1
  fi
  start namenode org.apache.hadoop.hdfs.server.namenode.NameNode
  start datanode org.apache.hadoop.hdfs.server.datanode.DataNode
  local probe="$HOME_DIR/probe.txt"
  echo ok > "$probe"
  for _ in $(seq 1 90); do
    if hadoop org.apache.hadoop.fs.FsShell -put -f "$probe" "$HDFS_URI/.probe" > /dev/null 2>&1; then
      echo "HDFS up at $HDFS_URI (HADOOP_CONF_DIR=$CONF)"
      return
    fi
    if ! { running namenode && running datanode; }; then break; fi
    sleep 1
  done
  echo "HDFS did not start; see $HOME_DIR/logs" >&2
  tail -n 20 "$HOME_DIR/logs/hdfs.log" >&2 || true
  down
  exit 1
}

down() {
  stop datanode
  stop namenode
}

status() { running namenode && running datanode; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) echo "export HADOOP_CONF_DIR=$CONF"; echo "# file system: $HDFS_URI" ;;
  dfs) shift; hadoop org.apache.hadoop.fs.FsShell "$@" ;;
  *) echo "usage: $0 up|down|status|env|dfs ARGS" >&2; exit 2 ;;
esac
