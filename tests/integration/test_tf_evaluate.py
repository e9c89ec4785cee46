"""Imported TensorFlow models evaluated on windows on Spark: scores, metrics, parity, the jobs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jobs import evaluate_tf, inspect_tf
from pipelines.cli import run
from pipelines.evaluation.metrics import binary_metrics
from pipelines.tfimport import tfmodels
from pipelines.tfimport.errors import InputShapeError, TFImportError
from pipelines.tfimport.evaluate import predict_scores
from pipelines.tfimport.export import freeze_keras
from pipelines.tfimport.load import import_tensorflow_model
from tests.fixtures.metrics import METRIC_KEYS
from tests.fixtures.windows import write_windows_root

T, F = 12, 3
SETTINGS = ["--set", f"windows.length={T}", "--set", "windows.features=[a,b,c]", "--set", "evaluate.batch_size=64"]


@pytest.fixture(scope="module")
def windows_root(spark, tmp_path_factory):
    return write_windows_root(spark, tmp_path_factory.mktemp("tfwin"))


@pytest.fixture(scope="module")
def test_windows(spark, windows_root):
    from pipelines.telemetry import sources

    return sources.read_windows(spark, windows_root, "test").select("device_id", "window_end", "features", "label")


@pytest.fixture(scope="module")
def keras_lstm(tmp_path_factory):
    model = tfmodels.keras_lstm(T, F, hidden=4, seed=11)
    exported = freeze_keras(model, str(tmp_path_factory.mktemp("klstm") / "model.pb"), for_bigdl=False)
    return model, exported


def test_scores_on_the_cluster_equal_tensorflow_and_repeat(spark, keras_lstm, test_windows):
    model, exported = keras_lstm
    imported = import_tensorflow_model(exported.pb_uri, spark=spark)
    rows = sorted(test_windows.collect(), key=lambda r: (r.device_id, r.window_end))
    expected = model(np.asarray([r.features for r in rows], np.float32).reshape(-1, T, F), training=False).numpy()[:, 1]
    for _ in range(2):  # a second distributed call must still see the graph's constants
        scored = predict_scores(imported, test_windows, length=T, n_features=F, batch_size=32).collect()
        got = np.asarray([r.score for r in sorted(scored, key=lambda r: (r.device_id, r.window_end))])
        assert len(got) == len(rows) and np.abs(got - expected).max() <= 1e-5


def test_shape_and_output_kind_problems_are_refused_before_any_job(spark, keras_lstm, test_windows):
    imported = import_tensorflow_model(keras_lstm[1].pb_uri, spark=spark)
    with pytest.raises(InputShapeError, match=r"\(12, 3\).*\(6, 6\)"):
        predict_scores(imported, test_windows, length=6, n_features=6, batch_size=32)
    with pytest.raises(InputShapeError, match="hold 72 values, not length x n_features = 12 x 3"):
        predict_scores(
            imported,
            test_windows.selectExpr("*", "concat(features, features) as f2")
            .drop("features")
            .withColumnRenamed("f2", "features"),
            length=T,
            n_features=F,
            batch_size=32,
        )
    imported.output_kind = None
    with pytest.raises(TFImportError, match="pass output_kind"):
        predict_scores(imported, test_windows, length=T, n_features=F, batch_size=32)


def test_evaluate_tf_job_merges_into_the_run_report(spark, windows_root, keras_lstm, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text(json.dumps({"test": {"pr_auc": 0.5}, "baseline": {"pr_auc": 0.4}}))
    argv = [
        *SETTINGS,
        "--windows",
        windows_root,
        "--run-dir",
        str(run_dir),
        "--model",
        keras_lstm[1].pb_uri,
        "--parity-samples",
        "8",
    ]
    assert run(evaluate_tf.main, evaluate_tf.parser, argv) == 0
    merged = json.loads((run_dir / "metrics.json").read_text())
    assert merged["test"] == {"pr_auc": 0.5} and merged["baseline"] == {"pr_auc": 0.4}
    assert set(merged["tf_imported"]) == METRIC_KEYS
    info = merged["tf_imported_info"]
    assert info["parity"]["max_abs_diff"] <= 1e-5 and info["parity"]["samples"] == 8
    assert info["output_kind"] == "probabilities" and info["rewrites"]["add_v2_to_add"] > 0
    predictions = spark.read.parquet(str(run_dir / "predictions_tf" / "tf_imported"))
    metrics = merged["tf_imported"]
    assert binary_metrics(predictions) == metrics and metrics["count"] == 60
    # the most probable class (two classes: score > 0.5) against the label is the accuracy at threshold 0.5
    assert info["top1_accuracy"] == pytest.approx(metrics["accuracy"], abs=1.5 / metrics["count"])


def test_jobs_fail_with_one_line(spark, windows_root, tmp_path, caplog):
    argv = [*SETTINGS, "--windows", windows_root, "--run-dir", str(tmp_path), "--model", str(tmp_path / "nope.pb")]
    assert run(evaluate_tf.main, evaluate_tf.parser, argv) == 1
    assert "model not found" in caplog.text


def test_inspect_job_strict_exit_codes(tmp_path, keras_lstm, capfd):
    import tensorflow as tf

    assert run(inspect_tf.main, inspect_tf.parser, [keras_lstm[1].pb_uri, "--strict"]) == 0
    assert "ops BigDL cannot load after rewriting:\n  (none)" in capfd.readouterr().out
    layers = tf.keras.layers
    loop = tf.keras.Sequential([layers.Input((T, F)), layers.GRU(2), layers.Dense(2, activation="softmax")])
    path = freeze_keras(loop, str(tmp_path / "loop.pb"), for_bigdl=False).pb_uri
    assert run(inspect_tf.main, inspect_tf.parser, [path, "--strict", "--json"]) == 1
    summary = json.loads(capfd.readouterr().out)
    assert "TensorListReserve" in summary["unsupported_after_rewrite"]
