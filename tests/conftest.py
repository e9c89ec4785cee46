"""One Spark/BigDL session for the whole test run: local[2], UI off, few shuffle partitions."""
from __future__ import annotations

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains a model or runs a whole job")


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
