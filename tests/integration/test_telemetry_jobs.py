"""The telemetry jobs end to end as a user runs them: python -m jobs.<name> in a fresh process."""
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

SMALL = ["--env", "ci", "--set", "generate.devices=16", "--set", "generate.days=8", "--set", "train.hidden_size=8"]


def _job(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", f"jobs.{name}", *args], capture_output=True, text=True, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(f"jobs.{name} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def test_chain_with_resume_and_one_line_errors(tmp_path):
    fleet, ingested, windows, run_dir = (str(tmp_path / d) for d in ("fleet", "ingest", "windows", "run"))
    _job("generate_telemetry", "--out", fleet, *SMALL)
    _job("ingest_telemetry", "--input", fleet, "--out", ingested, *SMALL)
    counts = json.loads((tmp_path / "ingest" / "counts.json").read_text())
    assert counts["read"] == counts["clean"] + counts["quarantined"] > 0

    _job("build_windows", "--clean", f"{ingested}/clean", "--failures", f"{fleet}/failures.csv", "--out", windows, *SMALL)
    window_counts = json.loads((tmp_path / "windows" / "window_counts.json").read_text())
    assert set(window_counts) == {"train", "val", "test"}

    _job("train_lstm", "--windows", windows, "--run-dir", run_dir, *SMALL, "--set", "train.epochs=1")
    assert json.loads((tmp_path / "run" / "training.json").read_text())["epochs"] == 1
    resumed = _job("train_lstm", "--windows", windows, "--run-dir", run_dir, "--resume", *SMALL, "--set", "train.epochs=2")
    training = json.loads((tmp_path / "run" / "training.json").read_text())
    assert training["epochs"] == 2
    assert "after epoch 1" in resumed.stderr and "epoch 2/2" in resumed.stderr

    _job("evaluate_telemetry", "--windows", windows, "--run-dir", run_dir, *SMALL)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for name in ("test", "baseline"):
        assert set(metrics[name]) >= {"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"}

    failed = _job("evaluate_telemetry", "--windows", windows, "--run-dir", str(tmp_path / "nothing"), check=False)
    assert failed.returncode == 1
    errors = [line for line in failed.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "no trained model" in errors[0]


def test_help_shows_defaults_and_bad_config_exits_2():
    result = _job("train_lstm", "--help")
    assert "--resume" in result.stdout and "default" in result.stdout
    bad = _job("train_lstm", "--windows", "x", "--run-dir", "y", "--set", "train.epochz=3", check=False)
    assert bad.returncode == 2 and "train.epochz" in bad.stderr
