"""A job under spark-submit, launched exactly as the README shows."""

import os
import subprocess
import sys

import pytest

from pipelines import PROJECT_ROOT
from pipelines.context import bigdl_jars


@pytest.mark.slow
def test_job_runs_under_spark_submit(tmp_path):
    spark_submit = os.path.join(os.path.dirname(sys.executable), "spark-submit")
    out = tmp_path / "fleet"
    result = subprocess.run(
        [
            spark_submit,
            "--properties-file",
            "conf/spark/local.conf",
            "--jars",
            ",".join(bigdl_jars()),
            "jobs/generate_telemetry.py",
            "--out",
            str(out),
            "--env",
            "ci",
            "--set",
            "generate.devices=4",
            "--set",
            "generate.days=2",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "_SUCCESS").exists() and (out / "failures.csv").exists()
    assert any((out / "readings").glob("day=*/*.csv"))
