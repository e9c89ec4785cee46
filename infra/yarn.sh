#!/usr/bin/env bash
# A development YARN on loopback: one ResourceManager and one NodeManager from Apache Hadoop 3.3.4 (the jars of
# infra/hdfs.sh, from Maven Central), sized for two cores, beside the development HDFS (its default file system).
#   infra/yarn.sh up       fetch jars (cached), write the config, start both, wait until the NodeManager has registered
#   infra/yarn.sh down     stop both daemons by their recorded process ids
#   infra/yarn.sh status   exit 0 when both run
#   infra/yarn.sh env      print the exports spark-submit needs (HADOOP_CONF_DIR, YARN_CONF_DIR)
# The NodeManager runs its containers with a clean environment (infra/hadoop.sh's start, and a whitelist of
# JAVA_HOME, LANG and TZ only), so a job finds its Python, the project and its jars only in what it ships.
# State (config, logs, the NodeManager's local and log dirs, pids) under $PIPELINES_LOCAL/yarn.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HOME_DIR="${PIPELINES_LOCAL:-$ROOT/.local}/yarn"
CONF="$HOME_DIR/conf"
PIDS="$HOME_DIR/pids"
source "$ROOT/infra/hadoop.sh"
PORT="${YARN_PORT:-18032}"           # the ResourceManager's client port; the others follow it
NM_MEMORY_MB="${YARN_NM_MEMORY_MB:-6144}"
NM_VCORES="${YARN_NM_VCORES:-4}"     # two cores, overcommitted: BigDL's executors mostly wait on each other

write_conf() {
  mkdir -p "$CONF" "$HOME_DIR/logs" "$HOME_DIR/nm-local" "$HOME_DIR/nm-logs" "$PIDS"
  # The clients' configuration too (HADOOP_CONF_DIR for spark-submit): the development HDFS is the default file
  # system, where spark-submit stages what a job ships and where the NodeManager localises it from.
  write_hdfs_site
  cat > "$CONF/yarn-site.xml" <<XML
<?xml version="1.0"?>
<configuration>
  <property><name>yarn.resourcemanager.hostname</name><value>127.0.0.1</value></property>
  <property><name>yarn.resourcemanager.address</name><value>127.0.0.1:$PORT</value></property>
  <property><name>yarn.resourcemanager.scheduler.address</name><value>127.0.0.1:$((PORT - 2))</value></property>
  <property><name>yarn.resourcemanager.resource-tracker.address</name><value>127.0.0.1:$((PORT - 1))</value></property>
  <property><name>yarn.resourcemanager.admin.address</name><value>127.0.0.1:$((PORT + 1))</value></property>
  <property><name>yarn.resourcemanager.webapp.address</name><value>127.0.0.1:$((PORT + 56))</value></property>
  <!-- FIFO: no queues to configure, and no cap on the ApplicationMasters' share of a small cluster. -->
  <property><name>yarn.resourcemanager.scheduler.class</name>
    <value>org.apache.hadoop.yarn.server.resourcemanager.scheduler.fifo.FifoScheduler</value></property>
  <property><name>yarn.scheduler.minimum-allocation-mb</name><value>256</value></property>
  <property><name>yarn.scheduler.maximum-allocation-mb</name><value>$NM_MEMORY_MB</value></property>
  <property><name>yarn.scheduler.maximum-allocation-vcores</name><value>$NM_VCORES</value></property>
  <property><name>yarn.nodemanager.hostname</name><value>127.0.0.1</value></property>
  <property><name>yarn.nodemanager.address</name><value>127.0.0.1:$((PORT + 9))</value></property>
  <property><name>yarn.nodemanager.localizer.address</name><value>127.0.0.1:$((PORT + 8))</value></property>
  <property><name>yarn.nodemanager.webapp.address</name><value>127.0.0.1:$((PORT + 10))</value></property>
  <property><name>yarn.nodemanager.resource.memory-mb</name><value>$NM_MEMORY_MB</value></property>
  <property><name>yarn.nodemanager.resource.cpu-vcores</name><value>$NM_VCORES</value></property>
  <property><name>yarn.nodemanager.local-dirs</name><value>$HOME_DIR/nm-local</value></property>
  <property><name>yarn.nodemanager.log-dirs</name><value>$HOME_DIR/nm-logs</value></property>
  <!-- Nothing of the NodeManager's environment but these reaches a container (Hadoop's default adds PATH and HADOOP_*). -->
  <property><name>yarn.nodemanager.env-whitelist</name><value>JAVA_HOME,LANG,TZ</value></property>
  <property><name>yarn.nodemanager.admin-env</name><value>MALLOC_ARENA_MAX=4</value></property>
  <!-- Java 17's reserved virtual memory and the Python workers beside small executors would trip YARN's memory
       checks on a workstation; a real cluster keeps them. -->
  <property><name>yarn.nodemanager.vmem-check-enabled</name><value>false</value></property>
  <property><name>yarn.nodemanager.pmem-check-enabled</name><value>false</value></property>
  <property><name>yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage</name><value>98</value></property>
  <property><name>yarn.log-aggregation-enable</name><value>false</value></property>
  <!-- Unpacked archives (the venv: 0.5 GB, Spark's jars: 0.3 GB) no application uses any more are deleted beyond this size. -->
  <property><name>yarn.nodemanager.localizer.cache.target-size-mb</name><value>6144</value></property>
  <!-- A finished application's container folders stay a minute (for a look at what it was given). -->
  <property><name>yarn.nodemanager.delete.debug-delay-sec</name><value>60</value></property>
</configuration>
XML
  write_log4j yarn
}

# Whether the NodeManager has registered with the ResourceManager (its REST API lists it RUNNING).
registered() {
  curl -sf "http://127.0.0.1:$((PORT + 56))/ws/v1/cluster/nodes" 2>/dev/null | grep -q '"state":"RUNNING"'
}

up() {
  fetch_jars
  write_conf
  start resourcemanager org.apache.hadoop.yarn.server.resourcemanager.ResourceManager
  start nodemanager org.apache.hadoop.yarn.server.nodemanager.NodeManager
  for _ in $(seq 1 120); do
    if registered; then
      echo "YARN up at 127.0.0.1:$PORT (HADOOP_CONF_DIR=$CONF; web UI http://127.0.0.1:$((PORT + 56)))"
      return
    fi
    if ! { running resourcemanager && running nodemanager; }; then break; fi
    sleep 1
  done
  echo "YARN did not start; see $HOME_DIR/logs" >&2
  tail -n 20 "$HOME_DIR/logs/yarn.log" "$HOME_DIR/logs/"*.out >&2 || true
  down
  exit 1
}

down() {
  stop nodemanager
  stop resourcemanager
}

status() { running resourcemanager && running nodemanager; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) echo "export HADOOP_CONF_DIR=$CONF YARN_CONF_DIR=$CONF"; echo "# ResourceManager: 127.0.0.1:$PORT" ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
