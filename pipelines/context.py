"""The one factory for a SparkSession with BigDL's engine initialised.

Serves `local[N]`, standalone (`spark://...`), YARN, and sessions that already exist
(`spark-submit`, the `pyspark` shell). Nothing here starts a JVM at import time.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from pipelines import CONF_DIR

log = logging.getLogger(__name__)

DEFAULT_LOCAL_MASTER = "local[2]"

# BigDL's recommended settings (its spark-bigdl.conf, less what Spark 3 no longer has), applied when unset.
BIGDL_DEFAULTS = {
    "spark.shuffle.reduceLocality.enabled": "false",
    "spark.scheduler.minRegisteredResourcesRatio": "1.0",
    "spark.scheduler.maxRegisteredResourcesWaitingTime": "3600s",
    "spark.speculation": "false",
}

# Read by the JVM only when it is launched, so meaningless for a session that already runs.
LAUNCH_ONLY = ("spark.driver.memory", "spark.driver.extraClassPath", "spark.driver.extraJavaOptions", "spark.jars")


# The project's own BigDL modules (jvm/, compiled by infra/install.sh into the package, so wheels carry it too).
PROJECT_JAR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jars", "pipelines-jvm.jar")


def bigdl_jars() -> list[str]:
    """Paths of the BigDL jars shipped in the installed Python packages, and of the project's own (PROJECT_JAR)."""
    import bigdl.dllib  # noqa: F401  (sets BIGDL_JARS)
    from bigdl.dllib.utils.engine import get_bigdl_classpath

    share = os.path.join(os.path.dirname(os.path.dirname(bigdl.dllib.__file__)), "share")
    jars = sorted(glob.glob(os.path.join(share, "*", "lib", "*.jar"))) or [get_bigdl_classpath()]
    return jars + ([PROJECT_JAR] if os.path.exists(PROJECT_JAR) else [])


def _jvm_is_running() -> bool:
    return SparkContext._active_spark_context is not None or "PYSPARK_GATEWAY_PORT" in os.environ


# BigDL copies models to the executors with Java serialisation, which recurses through the graph:
# an imported TensorFlow LSTM unrolled over 96 steps (about 1,500 nodes) overflows the default 1 MB stack.
JAVA_STACK = "-Xss16m"
# Spark's generated code for the ingest's validation and duplicate ranking is over HotSpot's 8 kB limit for
# JIT compilation and would otherwise run interpreted: a fifth of ingest's CPU time (bench/README.md).
JAVA_JIT = "-XX:-DontCompileHugeMethods"

JAVA_OPTION_KEYS = ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")

# Resolved by the factory itself (absolute paths, the running interpreter), not taken from conf/spark/*.conf.
FACTORY_KEYS = ("spark.master", "spark.pyspark.python", *JAVA_OPTION_KEYS)


def properties_file(kind: str) -> dict[str, str]:
    """Settings of conf/spark/<kind>.conf (the file spark-submit's --properties-file takes)."""
    path = CONF_DIR / "spark" / f"{kind}.conf"
    if not path.exists():
        return {}
    settings = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            settings[key] = value.strip()
    return settings


def _cluster_kind(master: str) -> str:
    if master.startswith("spark://"):
        return "standalone"
    if master.startswith("yarn"):
        return "yarn"
    return "local"


# BigDL's native maths is MKL 2019 (inside bigdl-core), which takes its slow generic code path on CPUs that do not
# say "GenuineIntel", whatever they support. MKL_DEBUG_CPU_TYPE=5 makes it use its AVX2 kernels: on this AMD EPYC,
# the LSTM's SGEMMs took a third of the time and training throughput rose by 27-78 %
# (bench/train_throughput.py, bench/README.md). MKL reads it when the JVM loads the library, so it has to be in the
# JVM's environment: set here before a local JVM starts; `spark.executorEnv.MKL_DEBUG_CPU_TYPE` for executors on a
# cluster (conf/spark/standalone.conf). Intel CPUs are left alone (there it would only cap MKL at AVX2).
MKL_CPU_TYPE_AVX2 = "5"


def cpu_vendor(cpuinfo: str = "/proc/cpuinfo") -> str | None:
    try:
        with open(cpuinfo) as info:
            for line in info:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def mkl_environment(vendor: str | None) -> dict[str, str]:
    """Environment for MKL on this CPU (see MKL_CPU_TYPE_AVX2)."""
    return {"MKL_DEBUG_CPU_TYPE": MKL_CPU_TYPE_AVX2} if vendor == "AuthenticAMD" else {}


def _launch_conf(master: str | None, app_name: str) -> SparkConf:
    """Conf for a JVM this process launches itself (python -m jobs.x, pytest)."""
    master = master or os.environ.get("PIPELINES_MASTER") or DEFAULT_LOCAL_MASTER
    jars = bigdl_jars()
    log4j = CONF_DIR / "log4j2.properties"
    java_opts = (
        f"-Dlog4j2.configurationFile=file:{log4j} -Dbigdl.utils.LoggerFilter.disable=true {JAVA_STACK} {JAVA_JIT}"
    )
    conf = SparkConf(loadDefaults=False)
    for key, value in properties_file(_cluster_kind(master)).items():
        if key not in FACTORY_KEYS:
            conf.set(key, value)
    conf.setMaster(master).setAppName(app_name)
    conf.set("spark.jars", ",".join(jars))
    conf.set("spark.driver.extraClassPath", ":".join(jars))
    conf.set("spark.executor.extraClassPath", ":".join(jars))
    conf.set("spark.driver.extraJavaOptions", java_opts)
    conf.set("spark.executor.extraJavaOptions", java_opts)
    # Workers run the same interpreter (and so the same venv) as this process unless told otherwise;
    # pyspark reads the worker's interpreter from the environment, not from the conf.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # The local JVM (driver and executors) inherits this process's environment; an explicit setting wins,
    # and an empty one (MKL_DEBUG_CPU_TYPE=) leaves MKL to its own choice.
    for key, value in mkl_environment(cpu_vendor()).items():
        if os.environ.get(key) == "":
            del os.environ[key]
        else:
            os.environ.setdefault(key, value)
    return conf


def get_or_create(
    master: str | None = None, app_name: str = "pipelines", conf: Mapping[str, str] | None = None
) -> SparkSession:
    """Return the SparkSession, creating it if needed, with BigDL's engine initialised.

    Inside `spark-submit` or the shell the master they were given is kept; otherwise `master`, else
    `$PIPELINES_MASTER`, else `local[2]`.
    `conf` entries win over the defaults here (Java options are appended to the factory's own); in an existing
    JVM, launch-only settings are ignored.
    """
    extra = dict(conf or {})
    if _jvm_is_running():
        # spark-submit or the pyspark shell launched the JVM: keep what it was given.
        sc_conf = SparkConf()
        for key in LAUNCH_ONLY:
            if key in extra:
                log.warning("%s is fixed when the JVM starts; ignored for the running session", key)
                extra.pop(key)
        if master and SparkContext._active_spark_context is None:
            sc_conf.setMaster(master)
        if not sc_conf.contains("spark.app.name"):
            sc_conf.setAppName(app_name)
    else:
        sc_conf = _launch_conf(master, app_name)
    for key, value in BIGDL_DEFAULTS.items():
        if not sc_conf.contains(key):
            sc_conf.set(key, value)
    for key, value in extra.items():
        if key in JAVA_OPTION_KEYS and sc_conf.contains(key):
            # Added to the factory's own options (log4j, stack size), not instead of them.
            value = f"{sc_conf.get(key)} {value}"
        sc_conf.set(key, str(value))

    spark = SparkSession.builder.config(conf=sc_conf).getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("PIPELINES_SPARK_LOG_LEVEL", "WARN"))
    _init_bigdl()
    return spark


def _init_bigdl() -> None:
    from bigdl.dllib.utils.common import init_engine

    init_engine()


def total_cores(spark: SparkSession) -> int:
    """Cores BigDL trains on (executors x cores per executor)."""
    from bigdl.dllib.utils.common import get_node_and_core_number

    nodes, cores = get_node_and_core_number()
    return int(nodes) * int(cores)


def driver_peak_memory_mb(spark: SparkSession) -> dict[str, float]:
    """Peak memory of the driver so far: the JVM's heap pools and the Python process's resident set."""
    import resource

    jvm: Any = spark.sparkContext._jvm
    heap_peak = 0
    for pool in jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans():
        if str(pool.getType().toString()) == "Heap memory":
            heap_peak += pool.getPeakUsage().getUsed()
    python_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"jvm_heap_peak_mb": round(heap_peak / 2**20, 1), "python_peak_rss_mb": round(python_rss_kb / 1024, 1)}


def launch_properties(master: str | None = None) -> dict[str, str]:
    """The settings `get_or_create` gives a JVM it launches itself, for `pyspark`/`spark-submit --properties-file`.

    So a shell started by infra/shell.sh gets the jars, Java options, conf/spark/<kind>.conf and worker Python
    that a job's own session would get. Starts no JVM.
    """
    conf = _launch_conf(master, "pipelines")
    settings = dict(conf.getAll())
    settings.pop("spark.app.name", None)
    for key, value in BIGDL_DEFAULTS.items():
        settings.setdefault(key, value)
    settings["spark.pyspark.python"] = os.environ["PYSPARK_PYTHON"]
    return settings


if __name__ == "__main__":
    # `python -m pipelines.context --jars`: the BigDL jars for spark-submit's --jars.
    # `python -m pipelines.context --properties [MASTER]`: a properties file for pyspark (infra/shell.sh).
    if sys.argv[1:] == ["--jars"]:
        print(",".join(bigdl_jars()))
    elif sys.argv[1:2] == ["--properties"] and len(sys.argv) <= 3:
        for key, value in sorted(launch_properties(sys.argv[2] if len(sys.argv) == 3 else None).items()):
            print(f"{key} {value}")
    else:
        sys.exit("usage: python -m pipelines.context --jars | --properties [MASTER]")
