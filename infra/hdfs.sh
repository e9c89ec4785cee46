#!/usr/bin/env bash
# A development HDFS on loopback: one NameNode and one DataNode from Apache Hadoop 3.3.4 (jars from Maven Central).
#   infra/hdfs.sh up     fetch jars (cached), write the config, format once, start, wait until writable
#   infra/hdfs.sh down   stop both daemons by their recorded process ids
#   infra/hdfs.sh env    print the exports Spark needs (HADOOP_CONF_DIR) and the file system URI
# State lives under $PIPELINES_LOCAL (default: .local/ in the repository): jars, config, data, logs, pids.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LOCAL="${PIPELINES_LOCAL:-$ROOT/.local}"
JARS="$LOCAL/hadoop/jars"
HOME_DIR="$LOCAL/hdfs"
CONF="$HOME_DIR/conf"
PIDS="$HOME_DIR/pids"
PORT="${HDFS_PORT:-19000}"
URI="hdfs://127.0.0.1:$PORT"
JAVA_OPTS=(-Xmx512m -Dhadoop.log.dir="$HOME_DIR/logs" -Dlog4j.configuration="file:$CONF/log4j.properties"
  --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED)
source "$ROOT/infra/lib.sh"

fetch_jars() {
  if [ ! -f "$JARS/.complete" ]; then
    mkdir -p "$JARS"
    mvn -q -B -f "$ROOT/infra/hadoop/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$JARS" -DincludeScope=runtime
    touch "$JARS/.complete"
  fi
}

write_conf() {
  mkdir -p "$CONF" "$HOME_DIR/name" "$HOME_DIR/data" "$HOME_DIR/logs" "$PIDS"
  # The daemons' web UIs look for these folders on the class path; Maven's hadoop-hdfs jar has none.
  mkdir -p "$CONF/webapps/hdfs" "$CONF/webapps/datanode" "$CONF/webapps/static" "$CONF/webapps/secondary"
  cat > "$CONF/core-site.xml" <<XML
<?xml version="1.0"?>
<configuration>
  <property><name>fs.defaultFS</name><value>$URI</value></property>
  <property><name>hadoop.tmp.dir</name><value>$HOME_DIR/tmp</value></property>
</configuration>
XML
  cat > "$CONF/hdfs-site.xml" <<XML
<?xml version="1.0"?>
<configuration>
  <property><name>dfs.replication</name><value>1</value></property>
  <property><name>dfs.permissions.enabled</name><value>false</value></property>
  <property><name>dfs.namenode.name.dir</name><value>file://$HOME_DIR/name</value></property>
  <property><name>dfs.datanode.data.dir</name><value>file://$HOME_DIR/data</value></property>
  <property><name>dfs.namenode.rpc-address</name><value>127.0.0.1:$PORT</value></property>
  <property><name>dfs.namenode.http-address</name><value>127.0.0.1:$((PORT + 870))</value></property>
  <property><name>dfs.datanode.address</name><value>127.0.0.1:$((PORT + 866))</value></property>
  <property><name>dfs.datanode.http.address</name><value>127.0.0.1:$((PORT + 864))</value></property>
  <property><name>dfs.datanode.ipc.address</name><value>127.0.0.1:$((PORT + 867))</value></property>
  <property><name>dfs.namenode.safemode.extension</name><value>0</value></property>
  <property><name>dfs.namenode.datanode.registration.ip-hostname-check</name><value>false</value></property>
</configuration>
XML
  cat > "$CONF/log4j.properties" <<'PROPS'
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${hadoop.log.dir}/hdfs.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=%d{ISO8601} %p %c: %m%n
PROPS
}

hadoop() { java "${JAVA_OPTS[@]}" -cp "$CONF:$JARS/*" "$@"; }

start() {
  local name="$1" class="$2"
  if running "$name"; then return; fi
  nohup java "${JAVA_OPTS[@]}" -cp "$CONF:$JARS/*" "$class" > "$HOME_DIR/logs/$name.out" 2>&1 &
  echo $! > "$PIDS/$name.pid"
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
    if hadoop org.apache.hadoop.fs.FsShell -put -f "$probe" "$URI/.probe" > /dev/null 2>&1; then
      echo "HDFS up at $URI (HADOOP_CONF_DIR=$CONF)"
      return
    fi
    running namenode && running datanode || break
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
  env) echo "export HADOOP_CONF_DIR=$CONF"; echo "# file system: $URI" ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
