"""One Spark/BigDL session for the whole test run: local[2], UI off, few shuffle partitions."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from pipelines import context

    warehouse = tmp_path_factory.mktemp("warehouse")
    session = context.get_or_create(
        master="local[2]",
        app_name="pipelines-tests",
        conf={
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "4",
            "spark.default.parallelism": "4",
            "spark.sql.warehouse.dir": str(warehouse),
        },
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sequence_samples(spark):
    """128 Samples (a JVM RDD) of 12 steps x 3 features, labelled by the sum of the last 3 values of feature 0."""
    import numpy as np

    from pipelines.models.extension import samples as jvm_samples

    x = np.random.default_rng(5).standard_normal((128, 12 * 3)).astype(np.float32)
    labels = (x.reshape(128, 12, 3)[:, -3:, 0].sum(axis=1) > 0).astype(int)
    windows = spark.createDataFrame(
        [(row.tolist(), int(label)) for row, label in zip(x, labels)], "features array<float>, label int"
    ).repartition(3)
    samples = jvm_samples(windows, shape=(12, 3)).cache()
    yield samples
    samples.unpersist(False)


def _service(script: str, result: str):
    """Start an infra/ service for the test run unless it runs already; stop it afterwards if we started it."""
    import subprocess

    from pipelines import PROJECT_ROOT

    path = str(PROJECT_ROOT / "infra" / script)
    was_running = subprocess.run([path, "status"]).returncode == 0
    if not was_running:
        subprocess.run([path, "up"], check=True, timeout=600)
    try:
        yield result
    finally:
        if not was_running:
            subprocess.run([path, "down"], timeout=120)


@pytest.fixture(scope="session")
def hdfs():
    """The root URI of the development HDFS (infra/hdfs.sh, `make hdfs-up`)."""
    yield from _service("hdfs.sh", "hdfs://127.0.0.1:19000")


@pytest.fixture(scope="session")
def yarn(hdfs):
    """The Hadoop client configuration folder (HADOOP_CONF_DIR) of the development YARN (infra/yarn.sh, `make yarn-up`),
    which stages jobs on the development HDFS."""
    from pipelines import PROJECT_ROOT

    yield from _service("yarn.sh", str(PROJECT_ROOT / ".local" / "yarn" / "conf"))


@pytest.fixture(scope="session")
def standalone_master():
    """The master URL of the loopback standalone cluster (infra/cluster.sh, `make cluster-up`)."""
    yield from _service("cluster.sh", "spark://127.0.0.1:17077")
