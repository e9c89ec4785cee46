"""Transfer learning on an imported TensorFlow model, and the demo's TensorFlow leg, on tiny windows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines.models.train import load_model
from pipelines.telemetry import sources
from pipelines.tfimport import tfmodels
from pipelines.tfimport.demo_step import train_export_import_evaluate
from pipelines.tfimport.errors import NodeNameError
from pipelines.tfimport.evaluate import evaluate_imported
from pipelines.tfimport.export import export_session
from pipelines.tfimport.load import forward
from pipelines.tfimport.transfer import HEAD_NAME, TransferSpec, build_transfer_model, fine_tune, save
from tests.fixtures.metrics import METRIC_KEYS

T, F = 10, 3


@pytest.fixture(scope="module")
def windows_root(spark, tmp_path_factory):
    rng = np.random.default_rng(1)
    rows = []
    for i in range(320):
        label = i % 2
        x = rng.normal(0, 1, size=(T, F)).astype(np.float32)
        if label:
            x[:, 0] += np.linspace(-2, 2, T)
        rows.append(
            (f"d{i % 32:02d}", i * 900, x.reshape(-1).tolist(), label, ("train", "train", "val", "test")[(i // 2) % 4])
        )
    root = tmp_path_factory.mktemp("tfwin")
    df = spark.createDataFrame(rows, "device_id string, t long, features array<float>, label int, split string")
    (
        df.selectExpr("device_id", "timestamp_seconds(t) as window_end", "features", "label", "split")
        .repartition(2)
        .write.partitionBy("split")
        .parquet(str(root / "windows"))
    )
    return str(root)


@pytest.fixture(scope="module")
def pair(spark, tmp_path_factory):
    model = tfmodels.compat_v1_lstm(T, F, hidden=6, seed=3)
    try:
        return export_session(
            model.session, str(tmp_path_factory.mktemp("pair")), outputs=["probabilities"], spark=spark
        )
    finally:
        model.close()


def test_unknown_freeze_prefix_is_refused(spark, pair):
    spec = TransferSpec(pair.pb_uri, pair.bin_uri, freeze=("lstm_modle/",))
    with pytest.raises(NodeNameError, match="lstm_modle/ match no variable; variables: lstm_model/rnn/cell/kernel"):
        build_transfer_model(spec, example_shape=(T, F), spark=spark)


@pytest.mark.slow
def test_fine_tune_freezes_replaces_the_head_trains_and_saves(spark, pair, windows_root, tmp_path):
    spec = TransferSpec(pair.pb_uri, pair.bin_uri, freeze=("lstm_model/rnn",))
    before, _, info = build_transfer_model(spec, example_shape=(T, F), spark=spark)
    assert info["frozen"] == ["lstm_model/rnn/cell/kernel", "lstm_model/rnn/cell/bias"]
    assert info["feature_node"].startswith("lstm_model/rnn/cell/mul") and info["width"] == 6
    before_params = before.parameters()
    assert set(before_params) == {HEAD_NAME}  # the LSTM's variables became constants; the old head is cut off

    train, val = (sources.read_windows(spark, windows_root, s) for s in ("train", "val"))
    result = fine_tune(
        spark,
        spec,
        train,
        val,
        length=T,
        n_features=F,
        epochs=2,
        batch_size=32,
        learning_rate=0.05,
        summary_dir=str(tmp_path / "summaries"),
    )
    assert result.frozen == info["frozen"] and result.trainable == [HEAD_NAME]
    after = result.model.parameters()[HEAD_NAME]["weight"]
    assert np.abs(after - before_params[HEAD_NAME]["weight"]).max() > 1e-3
    losses = [v for _, v in result.train_loss]
    assert np.mean(losses[-2:]) < np.mean(losses[:2])
    assert len(result.validation["Top1Accuracy"]) == 2

    test = sources.read_windows(spark, windows_root, "test")
    metrics, _ = evaluate_imported(result.imported, test, length=T, n_features=F, batch_size=32)
    assert set(metrics) == METRIC_KEYS and metrics["roc_auc"] > 0.7

    path = str(tmp_path / "tuned.bigdl")
    save(spark, result.model, path)
    batch = np.asarray([r.features for r in test.limit(8).collect()], np.float32).reshape(-1, T, F)
    assert np.abs(forward(load_model(path), batch) - forward(result.model, batch)).max() <= 1e-6


@pytest.mark.slow
def test_demo_step_trains_exports_imports_and_evaluates(spark, windows_root, tmp_path):
    run_dir = str(tmp_path / "run")
    metrics = train_export_import_evaluate(
        spark,
        windows_root,
        run_dir,
        length=T,
        n_features=F,
        epochs=2,
        batch_size=32,
        threshold=0.5,
        hidden=8,
        max_train_windows=100,
        eval_batch_size=64,
        parity_samples=16,
    )
    assert set(metrics) == METRIC_KEYS and metrics["count"] == 80
    info = json.loads((tmp_path / "run" / "tf_imported.json").read_text())
    assert info["train_windows_used"] == 100 and info["rewrites"]["add_v2_to_add"] > 0
    assert info["parity"]["samples"] == 16 and info["parity"]["max_abs_diff"] <= 1e-5
    assert (tmp_path / "run" / "tf_model" / "model.pb").exists()
