"""schedules/airflow/telemetry_dag.py in a real Airflow (its own venv, installed by schedules/airflow/install.sh):
the DAG file imports cleanly, and `airflow dags test` runs the whole chain under spark-submit on a tiny fleet."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from pipelines import PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.airflow]

DAG_ID = "telemetry_failure_prediction"
CHAIN = ["bigdl_jars", "ingest", "windows", "train", "evaluate", "score", "report"]
LOGICAL_DATE = "2026-01-09"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """Run an airflow CLI command against a fresh SQLite metadata database in a temporary AIRFLOW_HOME."""
    install = PROJECT_ROOT / "schedules" / "airflow" / "install.sh"
    subprocess.run([str(install)], check=True, timeout=1800)  # a no-op once .local/airflow-venv is in place
    bin_dir = subprocess.run([str(install), "--path"], check=True, capture_output=True, text=True).stdout.strip()
    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "schedules" / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_PIPELINES_SPARK": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        }
    )

    def run(*args: str, extra_env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [f"{bin_dir}/{args[0]}", *args[1:]],
            env={**env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    migrated = run("airflow", "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    return run


DAGBAG = """
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag()
dag = bag.dags.get("telemetry_failure_prediction")
print(json.dumps({
    "import_errors": bag.import_errors,
    "tasks": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks} if dag else None,
    "retries": [t.retries for t in dag.tasks] if dag else None,
    "schedule": str(dag.schedule) if dag else None,
    "params": sorted(dag.params) if dag else None,
    "commands": {t.task_id: [t.application, t._conn_id] for t in dag.tasks if hasattr(t, "application")} if dag else None,
}))
"""


def test_dag_file_imports_cleanly_with_the_chain_in_order(airflow):
    result = airflow("python", "-c", DAGBAG)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["import_errors"] == {}
    assert found["tasks"] == {task: ([CHAIN[i - 1]] if i else []) for i, task in enumerate(CHAIN)}
    assert found["schedule"] == "@daily" and set(found["retries"]) == {2}
    assert found["params"] == ["conf_dir", "env", "input", "output_root", "py_files", "spark_properties"]
    assert found["commands"]["train"] == ["jobs/train_lstm.py", "pipelines_spark"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny generated fleet and a conf/ copy whose `tiny` overlay trains one small epoch and evaluates it beside
    the last-reading baseline only (the Spark ML peers and the stack are other tests')."""
    root = tmp_path_factory.mktemp("airflow-data")
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobs.generate_telemetry",
            "--out",
            str(root / "fleet"),
            "--env",
            "ci",
            "--set",
            "generate.devices=16",
            "--set",
            "generate.days=8",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert generated.returncode == 0, generated.stderr[-3000:]
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf")
    shutil.copytree(PROJECT_ROOT / "conf" / "ci", root / "conf" / "tiny")
    (root / "conf" / "tiny" / "zz-tiny.yml").write_text(
        "train:\n  epochs: 1\n  hidden_size: 8\nevaluate:\n  peers: []\nalerting:\n  stack: false\n"
    )
    return root


def _json(result: subprocess.CompletedProcess):
    """The JSON table of an airflow CLI command (its log lines go to stdout too)."""
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads([line for line in result.stdout.splitlines() if line.startswith("[")][-1])


def test_dag_runs_the_chain_end_to_end(airflow, tiny):
    run_root = tiny / "runs" / LOGICAL_DATE
    # What a failed earlier try might leave behind: the retry writes to the same folder and replaces it.
    (run_root / "windows").mkdir(parents=True)
    (run_root / "windows" / "half-written.parquet").write_text("left over")
    params = {
        "input": str(tiny / "fleet"),
        "env": "tiny",
        "output_root": str(tiny / "runs"),
        "conf_dir": str(tiny / "conf"),
    }
    tested = airflow(
        "airflow",
        "dags",
        "test",
        DAG_ID,
        LOGICAL_DATE,
        "-c",
        json.dumps(params),
        extra_env={"PIPELINES_DAG_RETRIES": "0"},
        timeout=1800,
    )
    log = tested.stdout + tested.stderr
    assert tested.returncode == 0, log[-5000:]

    (dag_run,) = _json(airflow("airflow", "dags", "list-runs", DAG_ID, "-o", "json"))
    assert dag_run["state"] == "success", log[-5000:]
    states = _json(airflow("airflow", "tasks", "states-for-dag-run", DAG_ID, dag_run["run_id"], "-o", "json"))
    by_task = {row["task_id"]: row["state"] for row in states}
    assert by_task == {task: "success" for task in CHAIN}, log[-5000:]
    assert "--master local[2]" in log and "--jars " in log and "bigdl-dllib" in log

    assert sorted(p.name for p in (tiny / "runs").iterdir()) == [LOGICAL_DATE]
    for folder in ("ingest", "windows", "lstm/risk", "lstm/risk/table", "lstm/report", "lstm/predictions"):
        assert (run_root / folder / "_SUCCESS").exists(), folder
    assert not (run_root / "windows" / "half-written.parquet").exists()
    counts = json.loads((run_root / "ingest" / "counts.json").read_text())
    assert counts["read"] == counts["clean"] + counts["quarantined"] > 0
    assert json.loads((run_root / "lstm" / "training.json").read_text())["epochs"] == 1
    metrics = json.loads((run_root / "lstm" / "metrics.json").read_text())
    assert {"test", "baseline", "alerting"} <= set(metrics)
    assert json.loads((run_root / "lstm" / "risk" / "summary.json").read_text())["devices"] == 16
    assert "<html" in (run_root / "lstm" / "report" / "index.html").read_text().lower()
