"""Jobs submitted to the loopback standalone cluster (infra/cluster.sh): two one-core executors.

The project travels as a --py-files zip and BigDL as --jars, as on a real cluster.
"""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from pipelines import PROJECT_ROOT
from pipelines.chain import evaluate_run, train_run
from pipelines.config import load_config
from pipelines.context import bigdl_jars
from pipelines.telemetry import sources
from pipelines.telemetry.generate import generate_fleet
from pipelines.telemetry.ingest import ingest
from pipelines.telemetry.schema import WindowSpec
from pipelines.telemetry.windows import build_window_dataset
from tests.fixtures.settings import BASELINE_ONLY

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

SETTINGS = [
    "--env",
    "ci",
    "--set",
    "generate.devices=80",
    "--set",
    "train.hidden_size=16",
    "--set",
    "train.epochs=4",
    "--set",
    "train.seed=5",
    *BASELINE_ONLY,
]
BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def py_files(tmp_path_factory):
    """The project as a --py-files archive (what `make package` builds as dist/pipelines.zip)."""
    path = tmp_path_factory.mktemp("dist") / "pipelines.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for package in ("pipelines", "jobs"):
            for file in (PROJECT_ROOT / package).rglob("*.py"):
                archive.write(file, file.relative_to(PROJECT_ROOT))
    return str(path)


@pytest.fixture(scope="module")
def windows(spark, tmp_path_factory):
    """Windows built once, locally, for both the local and the cluster training."""
    root = tmp_path_factory.mktemp("cluster-data")
    config = _config()
    generate_fleet(spark, config.generate, str(root / "fleet"))
    ingest(spark, str(root / "fleet"), str(root / "ingest"), config.ingest)
    data, stats = build_window_dataset(
        sources.read_parquet(spark, str(root / "ingest" / "clean"), "clean"),
        sources.read_failures(spark, str(root / "fleet" / "failures.csv")),
        config=config.windows,
        interval_minutes=config.ingest.interval_minutes,
    )
    sources.write_windows(spark, data, stats, str(root / "windows"), spec=WindowSpec.of(config))
    return str(root / "windows")


def _config():
    pairs = [SETTINGS[i + 1] for i in range(0, len(SETTINGS), 2) if SETTINGS[i] == "--set"]
    return load_config(env="ci", overrides=pairs)


def _submit(master: str, py_files: str, job: str, *args: str, background: bool = False):
    command = [
        f"{BIN}/spark-submit",
        "--properties-file",
        "conf/spark/standalone.conf",
        "--master",
        master,
        "--jars",
        ",".join(bigdl_jars()),
        "--py-files",
        py_files,
        f"jobs/{job}.py",
        *args,
        *SETTINGS,
    ]
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYSPARK_PYTHON": sys.executable}
    # spark-submit's PythonRunner merges the job's stderr into its stdout.
    job = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if background:
        return job
    output, _ = job.communicate(timeout=900)
    assert job.returncode == 0, output[-4000:]
    return output


def test_two_executors_converge_like_local_training(spark, standalone_master, py_files, windows, tmp_path):
    config = _config()
    train_run(spark, config, windows=windows, run_dir=str(tmp_path / "local"))
    local = evaluate_run(spark, config, windows=windows, run_dir=str(tmp_path / "local"))["test"]

    cluster_run = str(tmp_path / "cluster")
    started = time.perf_counter()
    _submit(standalone_master, py_files, "train_lstm", "--windows", windows, "--run-dir", cluster_run)
    seconds = time.perf_counter() - started
    _submit(standalone_master, py_files, "evaluate_telemetry", "--windows", windows, "--run-dir", cluster_run)
    cluster = json.loads((tmp_path / "cluster" / "metrics.json").read_text())["test"]
    training = json.loads((tmp_path / "cluster" / "training.json").read_text())
    print(f"\nlocal test {local}\ncluster test {cluster}\ncluster training {seconds:.0f} s")
    assert training["epochs"] == 4
    # Both learn (chance is 0.5) from the same initial weights, and the cluster is no worse than local training
    # beyond the spread of runs (the order of the data stays random; the test split has few failing devices).
    assert cluster["roc_auc"] > 0.6 and local["roc_auc"] > 0.6
    assert cluster["roc_auc"] > local["roc_auc"] - 0.15


def _executor_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-f", "CoarseGrainedExecutorBackend"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def test_training_recovers_from_a_killed_executor(standalone_master, py_files, windows, tmp_path):
    run_dir = tmp_path / "run"
    started = time.perf_counter()
    job = _submit(
        standalone_master, py_files, "train_lstm", "--windows", windows, "--run-dir", str(run_dir), background=True
    )
    lines = []
    for line in job.stdout:  # wait for the first epoch (and its checkpoint), then kill an executor
        lines.append(line)
        if "epoch 1/4" in line:
            break
    pids = _executor_pids()
    assert len(pids) == 2, "expected two executors"
    killed_at = time.perf_counter()
    os.kill(pids[0], signal.SIGKILL)
    lines.extend(job.stdout)
    assert job.wait(timeout=900) == 0, "".join(lines)[-4000:]
    log = "".join(lines)
    print(
        f"\ntraining with a killed executor: {time.perf_counter() - started:.0f} s in all, "
        f"finished {time.perf_counter() - killed_at:.0f} s after the kill"
    )
    assert "Retrying" in log or "recover" in log.lower(), log[-4000:]
    assert json.loads((run_dir / "training.json").read_text())["epochs"] == 4
    assert (run_dir / "model" / "lstm.bigdl").exists()


def test_openvino_scores_in_the_executors_jvms_as_bigdl_does_locally(
    spark, standalone_master, py_files, windows, tmp_path
):
    """The executors (other JVMs) load OpenVINO's C library and score the IR; BigDL in this process agrees."""
    from jobs import evaluate_tf
    from pipelines.cli import run
    from pipelines.tfimport import tfmodels
    from pipelines.tfimport.export import freeze_keras

    spec = WindowSpec.of(_config())
    model = tfmodels.keras_lstm(spec.length, len(spec.features), hidden=4, seed=3)
    pb = freeze_keras(model, str(tmp_path / "model.pb"), for_bigdl=False).pb_uri
    run_dir = str(tmp_path / "run")
    common = ["--windows", windows, "--run-dir", run_dir, "--model", pb]
    assert run(evaluate_tf.main, evaluate_tf.parser, [*common, "--name", "bigdl", *SETTINGS]) == 0
    _submit(standalone_master, py_files, "evaluate_tf", *common, "--name", "ov", "--engine", "openvino")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["ov_info"]["engine"] == "openvino"
    assert metrics["ov"]["count"] == metrics["bigdl"]["count"] > 0
    assert metrics["ov"]["log_loss"] == pytest.approx(metrics["bigdl"]["log_loss"], abs=1e-5)
