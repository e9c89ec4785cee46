"""The README's pyspark session, taken from the README and run through infra/shell.sh (the launcher of `make shell`).

The session reads runs/demo/windows and runs/demo/tf_model/model.pb relative to the folder the shell starts in;
the test lays tiny ones (written with pyarrow and TensorFlow, no Spark) in a temporary folder and starts there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from pipelines import PROJECT_ROOT
from pipelines.config import load_config
from pipelines.telemetry.schema import WindowSpec

MARKER = "<!-- shell-session:"


def readme_session() -> tuple[list[str], list[str]]:
    """The statements (prompts removed) and the output lines of the README's marked session."""
    text = (PROJECT_ROOT / "README.md").read_text()
    block = text[text.index(MARKER) :]
    block = block[block.index("```pycon\n") + len("```pycon\n") :]
    block = block[: block.index("```")]
    statements, outputs = [], []
    for line in block.splitlines():
        if line.startswith(">>> ") or line.startswith("... ") or line in (">>>", "..."):
            statements.append(line[4:])
        else:
            outputs.append(line)
    return statements, outputs


def shape(line: str) -> re.Pattern:
    """A README output line with its figures made wildcards: the words must match, the numbers are the run's."""
    parts = re.split(r"\d+(?:\.\d+)?", line)
    return re.compile(r"(?:\d+(?:\.\d+)?|nan|None)".join(re.escape(p) for p in parts))


def write_windows(root, length: int, n_features: int, n: int = 240, seed: int = 0) -> dict[str, int]:
    """Windows as build_windows writes them (Parquet, partitioned by split); positives carry a trend."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = {"device_id": [], "window_end": [], "features": [], "label": [], "split": []}
    for i in range(n):
        label = int(i % 3 == 0)
        x = rng.normal(0, 1, size=(length, n_features)).astype(np.float32)
        if label:
            x[:, 0] += np.linspace(0, 3, length, dtype=np.float32)
        rows["device_id"].append(f"d{i % 40:02d}")
        rows["window_end"].append(start + timedelta(minutes=15 * i))
        rows["features"].append(x.reshape(-1).tolist())
        rows["label"].append(label)
        rows["split"].append(("train", "train", "val", "test")[i % 4])
    table = pa.table(
        {
            "device_id": pa.array(rows["device_id"], pa.string()),
            "window_end": pa.array(rows["window_end"], pa.timestamp("us", tz="UTC")),
            "features": pa.array(rows["features"], pa.list_(pa.float32())),
            "label": pa.array(rows["label"], pa.int32()),
            "split": pa.array(rows["split"], pa.string()),
        }
    )
    pq.write_to_dataset(table, str(root / "windows"), partition_cols=["split"])
    spec = WindowSpec.of(load_config())
    assert (spec.length, spec.n_features) == (length, n_features)
    (root / "windows.json").write_text(json.dumps(spec.to_dict()))
    return {split: rows["split"].count(split) for split in ("train", "val", "test")}


@pytest.mark.slow
def test_the_readme_session_runs_in_the_shell(tmp_path):
    from pipelines.tfimport import tfmodels
    from pipelines.tfimport.export import freeze_keras

    statements, outputs = readme_session()
    assert any("train_lstm(" in s for s in statements) and any("import_tensorflow_model(" in s for s in statements)
    config = load_config()
    length, n_features = config.windows.length, len(config.windows.features)
    demo = tmp_path / "runs" / "demo"
    counts = write_windows(demo / "windows", length, n_features)  # a windows root, as build_windows writes it
    freeze_keras(
        tfmodels.keras_lstm(length, n_features, hidden=4, seed=3), str(demo / "tf_model" / "model.pb"), for_bigdl=False
    )

    result = subprocess.run(
        [str(PROJECT_ROOT / "infra" / "shell.sh"), "--conf", "spark.ui.enabled=false"],
        input="\n".join(statements) + "\n",
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PIPELINES_MASTER": "local[2]"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-5000:]
    printed = [line.lstrip("> .") for line in result.stdout.splitlines()]
    # Every output line of the README appears, in order, with this run's figures.
    position = 0
    for expected in outputs:
        pattern = shape(expected)
        found = next((i for i in range(position, len(printed)) if pattern.fullmatch(printed[i])), None)
        assert found is not None, f"{expected!r} not printed; stdout:\n{result.stdout[-3000:]}"
        position = found + 1
    lstm = next(line for line in printed if line.startswith("BigDL LSTM:"))
    assert f"on {counts['test']} windows" in lstm
    roc_auc = float(re.search(r"ROC-AUC (\d\.\d+)", lstm).group(1))
    assert 0.0 <= roc_auc <= 1.0
    tf_line = next(line for line in printed if line.startswith("TensorFlow LSTM in BigDL:"))
    assert f"{counts['test']} predictions" in tf_line
    # The LSTM really trained into the session's run folder, relative to where the shell started.
    assert any((tmp_path / "runs" / "shell" / "checkpoints").rglob("model*"))
    assert any((tmp_path / "runs" / "shell" / "summaries").rglob("*"))
