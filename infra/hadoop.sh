# shellcheck shell=bash
# Shared by infra/hdfs.sh and infra/yarn.sh (sourced, after they set ROOT, HOME_DIR, CONF and PIDS): the Hadoop 3.3.4
# jars (one folder for every daemon, as a Hadoop installation's share/hadoop), the development HDFS's address and
# how a daemon is started.
LOCAL="${PIPELINES_LOCAL:-$ROOT/.local}"
JARS="$LOCAL/hadoop/jars"
HDFS_PORT="${HDFS_PORT:-19000}"
# shellcheck disable=SC2034  # used by the scripts that source this file
HDFS_URI="hdfs://127.0.0.1:$HDFS_PORT"
HDFS_HOME="$LOCAL/hdfs"
JAVA_OPTS=(-Xmx512m -Dhadoop.log.dir="$HOME_DIR/logs" -Dlog4j.configuration="file:$CONF/log4j.properties"
  --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED)
source "$ROOT/infra/lib.sh"

# Fetch the jars of infra/hadoop/pom.xml (again when the pom changes).
fetch_jars() {
  local pom="$ROOT/infra/hadoop/pom.xml" stamp
  stamp="$(sha256sum "$pom" | cut -d' ' -f1)"
  if [ "$(cat "$JARS/.complete" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$JARS" && mkdir -p "$JARS"
    mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$JARS" -DincludeScope=runtime
    echo "$stamp" > "$JARS/.complete"
  fi
}

# core-site.xml and hdfs-site.xml of the development HDFS: its daemons' configuration (infra/hdfs.sh) and its clients'
# (infra/yarn.sh's, for spark-submit and the NodeManager).
write_hdfs_site() {
  cat > "$CONF/core-site.xml" <<XML
<?xml version="1.0"?>
<configuration>
  <property><name>fs.defaultFS</name><value>$HDFS_URI</value></property>
  <property><name>hadoop.tmp.dir</name><value>$HOME_DIR/tmp</value></property>
</configuration>
XML
  cat > "$CONF/hdfs-site.xml" <<XML
<?xml version="1.0"?>
<configuration>
  <property><name>dfs.replication</name><value>1</value></property>
  <property><name>dfs.permissions.enabled</name><value>false</value></property>
  <property><name>dfs.namenode.name.dir</name><value>file://$HDFS_HOME/name</value></property>
  <property><name>dfs.datanode.data.dir</name><value>file://$HDFS_HOME/data</value></property>
  <property><name>dfs.namenode.rpc-address</name><value>127.0.0.1:$HDFS_PORT</value></property>
  <property><name>dfs.namenode.http-address</name><value>127.0.0.1:$((HDFS_PORT + 870))</value></property>
  <property><name>dfs.datanode.address</name><value>127.0.0.1:$((HDFS_PORT + 866))</value></property>
  <property><name>dfs.datanode.http.address</name><value>127.0.0.1:$((HDFS_PORT + 864))</value></property>
  <property><name>dfs.datanode.ipc.address</name><value>127.0.0.1:$((HDFS_PORT + 867))</value></property>
  <property><name>dfs.namenode.safemode.extension</name><value>0</value></property>
  <property><name>dfs.namenode.datanode.registration.ip-hostname-check</name><value>false</value></property>
</configuration>
XML
}

# A log4j 1 configuration that writes every daemon's log to ${hadoop.log.dir}/NAME.log.
write_log4j() {
  cat > "$CONF/log4j.properties" <<PROPS
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=\${hadoop.log.dir}/$1.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=%d{ISO8601} %p %c: %m%n
PROPS
}

# Run a Hadoop class in the foreground (a client: FsShell, the NameNode's -format).
hadoop() { java "${JAVA_OPTS[@]}" -cp "$CONF:$JARS/*" "$@"; }

# Start daemon NAME (a Hadoop CLASS, with more java options after it) in the background and record its pid. It gets a
# clean environment: nothing of the caller's shell (an activated venv, PYSPARK_PYTHON, PYTHONPATH) reaches it, nor
# the containers a NodeManager launches.
start() {
  local name="$1" class="$2"; shift 2
  if running "$name"; then return; fi
  local java_home; java_home="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
  nohup env -i PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 JAVA_HOME="$java_home" \
    "$java_home/bin/java" "${JAVA_OPTS[@]}" "$@" -cp "$CONF:$JARS/*" "$class" > "$HOME_DIR/logs/$name.out" 2>&1 &
  echo $! > "$PIDS/$name.pid"
}
