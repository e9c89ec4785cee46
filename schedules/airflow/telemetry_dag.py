"""Daily telemetry chain: ingest → windows → train → evaluate → score → report, each job under spark-submit.

Runs in Airflow's own environment (schedules/airflow/install.sh); the jobs run with the project's .venv through
schedules/airflow/bin/spark-submit, which starts from the repository root ($PIPELINES_HOME, default: the folder
this file lives in, two levels up; symlink the file into the dags folder or set PIPELINES_HOME).

Every output of a run goes under <output_root>/<logical date>/, so a retry or a cleared run rewrites the same
folders (the jobs replace their outputs atomically, with _SUCCESS markers).

The Spark master comes from the Airflow connection `pipelines_spark` (or $PIPELINES_SPARK_CONN_ID), e.g.
    AIRFLOW_CONN_PIPELINES_SPARK='{"conn_type": "spark", "host": "local[2]"}'
    AIRFLOW_CONN_PIPELINES_SPARK='{"conn_type": "spark", "host": "spark://127.0.0.1", "port": 17077}'
(for a standalone cluster also pass spark_properties=conf/spark/standalone.conf and py_files=dist/pipelines.zip).
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param

HOME = Path(os.environ.get("PIPELINES_HOME") or Path(__file__).resolve().parents[2])
SPARK_CONN_ID = os.environ.get("PIPELINES_SPARK_CONN_ID", "pipelines_spark")

sys.path.insert(0, str(HOME))  # the project's chain (pipelines/registry.py: standard library only)
from pipelines.registry import TELEMETRY_CHAIN  # noqa: E402

INPUT = "{{ params.input.rstrip('/') }}"
# A run triggered without a logical date (Airflow 3 allows it) is keyed by the day it was triggered for.
RUN = "{{ params.output_root.rstrip('/') }}/{{ ds if ds is defined else dag_run.run_after | ds }}"

with DAG(
    dag_id="telemetry_failure_prediction",
    description=__doc__.splitlines()[0],
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={
        # $PIPELINES_DAG_RETRIES=0 makes a failed job fail the run at once (the tests use it).
        "retries": int(os.environ.get("PIPELINES_DAG_RETRIES", "2")),
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(hours=6),
    },
    params={
        "input": Param(
            "hdfs:///data/telemetry",
            type="string",
            description="raw telemetry folder: readings/, devices.csv, failures.csv (any Hadoop URI)",
        ),
        "env": Param("", type="string", description="configuration overlay conf/<env> (--env); empty: conf/base"),
        "output_root": Param(
            "hdfs:///runs/telemetry", type="string", description="each run writes <output_root>/<logical date>/"
        ),
        "spark_properties": Param(
            "conf/spark/local.conf",
            type="string",
            description="spark-submit --properties-file, relative to the repository",
        ),
        "py_files": Param("", type="string", description="--py-files for cluster executors, e.g. dist/pipelines.zip"),
        "conf_dir": Param(
            "", type="string", description="a conf/ folder of your own ($PIPELINES_CONF_DIR); empty: the repository's"
        ),
    },
    tags=["telemetry", "spark", "bigdl"],
) as dag:
    # The BigDL jars installed in the project's venv, for every job's --jars; fails early if the venv is missing.
    jars = BashOperator(
        task_id="bigdl_jars",
        bash_command=f"{HOME}/.venv/bin/python -m pipelines.context --jars",
        cwd=str(HOME),
        env={"PYTHONPATH": str(HOME)},
        append_env=True,
    )
    previous = jars
    for step in TELEMETRY_CHAIN:
        task = SparkSubmitOperator(
            task_id=step.name,
            conn_id=SPARK_CONN_ID,
            application=f"jobs/{step.job}.py",
            name=f"telemetry-{step.name}",
            properties_file="{{ params.spark_properties }}",
            jars="{{ ti.xcom_pull(task_ids='bigdl_jars') }}",
            py_files="{{ params.py_files }}",
            application_args=[*step.arguments(input=INPUT, run=RUN), "--env", "{{ params.env }}"],
            env_vars={
                "PATH": f"{HOME}/schedules/airflow/bin:{os.environ.get('PATH', '/usr/bin:/bin')}",
                "PIPELINES_HOME": str(HOME),
                "PIPELINES_CONF_DIR": "{{ params.conf_dir }}",
            },
        )
        previous >> task
        previous = task
