"""The telemetry jobs end to end as a user runs them: python -m jobs.<name> in a fresh process."""

import json
import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

SMALL = ["--env", "ci", "--set", "generate.devices=16", "--set", "generate.days=8", "--set", "train.hidden_size=8"]


def _command(name: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"jobs.{name}", *args]


def _job(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(_command(name, *args), capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"jobs.{name} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A generated, ingested and windowed fleet, each step run as its job."""
    root = tmp_path_factory.mktemp("jobs")
    fleet, ingested, windows = (str(root / d) for d in ("fleet", "ingest", "windows"))
    _job("generate_telemetry", "--out", fleet, *SMALL)
    _job("ingest_telemetry", "--input", fleet, "--out", ingested, *SMALL)
    _job(
        "build_windows", "--clean", f"{ingested}/clean", "--failures", f"{fleet}/failures.csv", "--out", windows, *SMALL
    )
    return root


def test_chain_with_resume_and_one_line_errors(data, tmp_path):
    counts = json.loads((data / "ingest" / "counts.json").read_text())
    assert counts["read"] == counts["clean"] + counts["quarantined"] > 0
    assert set(json.loads((data / "windows" / "window_counts.json").read_text())) == {"train", "val", "test"}

    windows, run_dir = str(data / "windows"), str(tmp_path / "run")
    _job("train_lstm", "--windows", windows, "--run-dir", run_dir, *SMALL, "--set", "train.epochs=1")
    assert json.loads((tmp_path / "run" / "training.json").read_text())["epochs"] == 1
    resumed = _job(
        "train_lstm", "--windows", windows, "--run-dir", run_dir, "--resume", *SMALL, "--set", "train.epochs=2"
    )
    assert json.loads((tmp_path / "run" / "training.json").read_text())["epochs"] == 2
    assert "after epoch 1" in resumed.stderr and "epoch 2/2" in resumed.stderr

    _job("evaluate_telemetry", "--windows", windows, "--run-dir", run_dir, *SMALL)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for name in ("test", "baseline"):
        assert set(metrics[name]) >= {"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"}

    failed = _job("evaluate_telemetry", "--windows", windows, "--run-dir", str(tmp_path / "nothing"), check=False)
    assert failed.returncode == 1
    errors = [line for line in failed.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "no trained model" in errors[0]


def test_a_killed_driver_resumes_from_its_checkpoint(data, tmp_path):
    # Enough epochs that the kill, at the first epoch's line (logged once its checkpoint is written, within the
    # summaries' polling interval), comes before the end.
    windows, run_dir, epochs = str(data / "windows"), str(tmp_path / "run"), "train.epochs=30"
    job = subprocess.Popen(
        _command("train_lstm", "--windows", windows, "--run-dir", run_dir, *SMALL, "--set", epochs),
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in job.stderr:
        if "epoch 1/30" in line:
            break
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=60)
    assert not (tmp_path / "run" / "training.json").exists()

    resumed = _job("train_lstm", "--windows", windows, "--run-dir", run_dir, "--resume", *SMALL, "--set", epochs)
    assert "resuming from" in resumed.stderr
    assert "epoch 1/30" not in resumed.stderr and "epoch 30/30" in resumed.stderr
    assert json.loads((tmp_path / "run" / "training.json").read_text())["epochs"] == 30


def _previous_output(out) -> list:
    """A stand-in for a previous run's output at `out`, and its files' names and bytes."""
    out.mkdir()
    (out / "previous.txt").write_text("the previous run's output")
    (out / "_SUCCESS").touch()
    return sorted((p.name, p.read_bytes()) for p in out.iterdir())


def test_existing_output_is_refused(data, tmp_path):
    out = tmp_path / "ingest"
    before = _previous_output(out)
    refused = _job(
        "ingest_telemetry",
        "--input",
        str(data / "fleet"),
        "--out",
        str(out),
        *SMALL,
        "--set",
        "output.if_exists=refuse",
        check=False,
    )
    assert refused.returncode == 1 and "exists" in refused.stderr
    assert sorted((p.name, p.read_bytes()) for p in out.iterdir()) == before


def test_help_shows_defaults_and_bad_config_exits_2():
    result = _job("train_lstm", "--help")
    assert "--resume" in result.stdout and "train: lstm=fused, engine=barrier, hidden_size=32" in result.stdout
    bad = _job("train_lstm", "--windows", "x", "--run-dir", "y", "--set", "train.epochz=3", check=False)
    assert bad.returncode == 2 and "train.epochz" in bad.stderr


def test_demo_on_a_tiny_fleet(tmp_path):
    out = tmp_path / "demo"
    result = _job("demo", "--out", str(out), *SMALL, "--set", "train.epochs=1")
    metrics = json.loads((out / "lstm" / "metrics.json").read_text())  # the registry's layout
    keys = {"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"}
    for name in ("test", "baseline", "tf_imported"):
        assert keys <= set(metrics[name]), name
    assert (
        metrics["counts"]["ingest"]["read"]
        == metrics["counts"]["ingest"]["clean"] + metrics["counts"]["ingest"]["quarantined"]
    )
    steps = {"generate", "ingest", "windows", "train", "evaluate", "score", "tf_import", "report", "total"}
    assert steps <= set(metrics["timings_s"])
    assert 0 < sum(metrics["counts"]["risk"].values()) <= metrics["counts"]["fleet"]["devices"]
    assert (out / "lstm" / "report" / "index.html").exists() and (out / "tf_model" / "model.pb").exists()
    assert "BigDL LSTM" in result.stdout and "TF LSTM in BigDL" in result.stdout and "wall time" in result.stdout


def test_batch_size_study_writes_a_table_and_a_plot(data, tmp_path):
    out = tmp_path / "study"
    args = [
        "--windows",
        str(data / "windows"),
        "--out",
        str(out),
        *SMALL,
        "--set",
        "study.batch_sizes=[8, 32]",
        "--set",
        "study.arms=[sgd_fixed, lars_linear_warmup]",
        "--set",
        "study.epochs=2",
        "--set",
        "study.base_batch_size=8",
    ]
    result = _job("batch_size_study", *args)
    rows = json.loads((out / "results" / "study.json").read_text())
    assert [(r["arm"], r["batch_size"]) for r in rows] == [
        ("sgd_fixed", 8),
        ("sgd_fixed", 32),
        ("lars_linear_warmup", 8),
        ("lars_linear_warmup", 32),
    ]
    assert all(len(r["val_loss"]) == 2 and 0 <= r["test_pr_auc"] <= 1 for r in rows)
    assert rows[3]["peak_learning_rate"] == 4 * rows[2]["peak_learning_rate"]  # linear scaling
    assert (out / "results" / "study.png").read_bytes()[:4] == b"\x89PNG"
    assert "| sgd_fixed | 8 |" in result.stdout and (out / "results" / "_SUCCESS").exists()
    # A rerun (say after the study was killed) keeps the rows it finds and trains nothing again.
    (out / "runs" / "lars_linear_warmup-32" / "row.json").unlink()
    again = _job("batch_size_study", *args)
    assert again.stderr.count("already done") == 3 and again.stderr.count("epoch 2/2") == 1
    assert json.loads((out / "results" / "study.json").read_text())[:3] == rows[:3]
