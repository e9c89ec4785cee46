"""Submitted to YARN by test_yarn.py: what the driver and the executors run with, written as JSON to the URI given.

spark-submit ... tests/integration/yarn_probe.py hdfs://.../probe.json
"""

import json
import os
import sys

from pyspark.sql import SparkSession


def describe() -> dict:
    import bigdl.dllib
    import pyspark

    import pipelines

    return {
        "python": os.path.abspath(sys.executable),
        "python_file": os.path.realpath(sys.executable),
        "cwd": os.getcwd(),
        "pipelines": os.path.realpath(pipelines.__file__),
        "pyspark": os.path.realpath(pyspark.__file__),
        "bigdl": os.path.realpath(bigdl.dllib.__file__),
        "path": os.environ.get("PATH", ""),
        "pythonpath": os.environ.get("PYTHONPATH", ""),
        "container": os.environ.get("CONTAINER_ID", ""),
    }


if __name__ == "__main__":
    spark = SparkSession.builder.getOrCreate()
    sc = spark.sparkContext
    executors = sc.parallelize(range(2), 2).mapPartitions(lambda _: [describe()]).collect()
    # BigDL's and the project's classes on the driver's class path (--jars); training in the chain needs the
    # executors' too.
    jvm = sc._jvm
    loader = jvm.Thread.currentThread().getContextClassLoader()
    classes = ["com.intel.analytics.bigdl.dllib.nn.Linear", "pipelines.nn.FusedLSTM"]
    found = {name: jvm.java.lang.Class.forName(name, False, loader).getName() == name for name in classes}
    result = {"driver": describe(), "executors": executors, "driver_classes": found, "master": sc.master}
    sc.parallelize([json.dumps(result)], 1).saveAsTextFile(sys.argv[1])
    spark.stop()
