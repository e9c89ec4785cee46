"""docker/entrypoint.sh's `executor` command, started as Spark on Kubernetes starts an executor pod, serves a real driver.

No Kubernetes here: a driver (its own process) on a private standalone master (free ports, no workers) accepts the
executor that the entry point starts from the SPARK_* variables Kubernetes would set, and runs Python tasks on it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from pipelines import PROJECT_ROOT

DRIVER = r"""
import json, os, shlex, subprocess, sys, time
from pyspark.sql import SparkSession

master_url, entrypoint, log = sys.argv[1:4]
spark = (SparkSession.builder.master(master_url).appName("entrypoint-test")
         .config("spark.driver.host", "127.0.0.1").config("spark.ui.enabled", "false")
         .config("spark.cores.max", "1").config("spark.executor.cores", "1")
         .config("spark.executor.extraJavaOptions", "-Xss16m -Dpipelines.probe='a b'").getOrCreate())
sc = spark.sparkContext
conf = dict(sc.getConf().getAll())
# What Spark's Kubernetes backend puts in an executor pod's environment (BasicExecutorFeatureStep).
env = {
    **os.environ, "PYSPARK_PYTHON": sys.executable,
    "SPARK_DRIVER_URL": f"spark://CoarseGrainedScheduler@127.0.0.1:{conf['spark.driver.port']}",
    "SPARK_EXECUTOR_ID": "7", "SPARK_EXECUTOR_CORES": "1", "SPARK_APPLICATION_ID": sc.applicationId,
    "SPARK_EXECUTOR_POD_IP": "127.0.0.1", "SPARK_EXECUTOR_POD_NAME": "pipelines-exec-7",
    "SPARK_EXECUTOR_MEMORY": "512m", "SPARK_RESOURCE_PROFILE_ID": "0",
    **{f"SPARK_JAVA_OPT_{i}": opt for i, opt in enumerate(shlex.split(conf["spark.executor.extraJavaOptions"]))},
}
executor = subprocess.Popen([entrypoint, "executor"], env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
try:
    for _ in range(90):
        if sc._jsc.sc().getExecutorMemoryStatus().size() >= 2 or executor.poll() is not None:
            break
        time.sleep(1)
    command = open(f"/proc/{executor.pid}/cmdline").read().split("\0") if executor.poll() is None else []
    results = sc.parallelize(range(6), 2).map(lambda x: (x * x, os.getpid())).collect() if command else []
    print(json.dumps({"command": command, "results": results, "driver_pid": os.getpid()}))
finally:
    spark.stop()
    executor.terminate()
    executor.wait(60)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_executor_command_registers_and_runs_python_tasks(tmp_path):
    spark_home = os.path.dirname(__import__("pyspark").__file__)
    port = free_port()
    master = subprocess.Popen(
        [
            f"{spark_home}/bin/spark-class",
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(free_port()),
        ],
        stdout=open(tmp_path / "master.log", "w"),
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(60):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(1)
        log = tmp_path / "executor.log"
        driver = subprocess.run(
            [
                sys.executable,
                "-c",
                DRIVER,
                f"spark://127.0.0.1:{port}",
                str(PROJECT_ROOT / "docker" / "entrypoint.sh"),
                str(log),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "SPARK_HOME": spark_home},
        )
    finally:
        master.terminate()
        master.wait(60)
    assert driver.returncode == 0, driver.stderr[-3000:]
    out = json.loads(driver.stdout.strip().splitlines()[-1])
    assert out["command"], log.read_text()[-3000:]
    assert "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend" in out["command"]
    assert "-Dpipelines.probe=a b" in out["command"] and "-Xss16m" in out["command"] and "-Xmx512m" in out["command"]
    assert [square for square, _ in out["results"]] == [0, 1, 4, 9, 16, 25]
    assert out["driver_pid"] not in {pid for _, pid in out["results"]}  # run by the executor's Python workers
    assert "Successfully registered with driver" in log.read_text()
