"""The window-summary peers of the LSTM: the summary's numbers, and peers that learn what the last reading misses."""

from __future__ import annotations

import numpy as np
import pytest
from py4j.protocol import Py4JJavaError
from pyspark.ml import PipelineModel
from pyspark.sql import functions as F

from pipelines.evaluation.baseline import fit_baseline, probability_scores
from pipelines.evaluation.metrics import binary_metrics
from pipelines.evaluation.peers import fit_peers, summary_names, window_summary


def test_the_summary_holds_each_features_last_min_max_mean_and_change(spark):
    rows = spark.createDataFrame([([1.0, 10.0, 2.0, 20.0, 4.0, 5.0],)], "features array<float>")
    got = window_summary(rows, length=3, n_features=2).first().summary.toArray()
    assert summary_names(["a", "b"])[:5] == ["a_last", "a_min", "a_max", "a_mean", "a_change"]
    np.testing.assert_allclose(got, [4, 1, 4, 7 / 3, 3, 5, 5, 20, 35 / 3, -5], rtol=1e-6)
    short = spark.createDataFrame([([1.0, 2.0],)], "features array<float>")
    with pytest.raises(Py4JJavaError, match="features must hold 3 x 2 values"):
        window_summary(short, length=3, n_features=2).collect()


def test_peers_learn_a_signal_the_last_reading_does_not_show(spark, tmp_path):
    """Failing windows carry a spike somewhere before the last step: invisible to the last-reading baseline."""
    length, n_features, n = 8, 2, 600
    rng = np.random.default_rng(4)
    rows = []
    for i in range(n):
        x = rng.normal(size=(length, n_features))
        label = int(i % 4 == 0)
        if label:
            x[rng.integers(0, length - 1), 0] += 4.0
        rows.append((f"d{i}", i, x.reshape(-1).tolist(), label))
    windows = spark.createDataFrame(rows, "device_id string, t long, features array<float>, label int")
    windows = windows.selectExpr("device_id", "timestamp_seconds(t) as window_end", "features", "label")
    train, test = windows.where("t % 3 != 0"), windows.where("t % 3 = 0")
    peers = fit_peers(train, length=length, n_features=n_features, class_weights="balanced", gbt_iterations=10, seed=1)
    baseline = fit_baseline(train, n_features=n_features, class_weights="balanced")
    last_reading = binary_metrics(probability_scores(baseline, test))["roc_auc"]
    for name, model in peers.items():
        scored = probability_scores(model, test)
        assert scored.count() == test.count() and scored.columns == ["device_id", "window_end", "label", "score"]
        assert binary_metrics(scored)["roc_auc"] > max(0.85, last_reading + 0.2), name
    # Saved and loaded (as the alert policy's model is), a peer scores as before: the window summary is its first stage.
    model.save(str(tmp_path / name))
    again = probability_scores(PipelineModel.load(str(tmp_path / name)), test).withColumnRenamed("score", "again")
    diff = scored.join(again, ["device_id", "window_end"]).select(F.max(F.abs(F.col("score") - F.col("again"))))
    assert diff.first()[0] < 1e-12
