"""The last-reading baseline: it sees a signal in the last reading, and nothing earlier in the window."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pyspark.ml.linalg import DenseVector
from pyspark.sql.types import (
    ArrayType,
    FloatType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from pipelines.evaluation.baseline import fit_baseline, last_reading, probability_scores
from pipelines.evaluation.metrics import binary_metrics

SCHEMA = StructType(
    [
        StructField("device_id", StringType()),
        StructField("window_end", TimestampType()),
        StructField("features", ArrayType(FloatType())),
        StructField("label", IntegerType()),
        StructField("split", StringType()),
    ]
)
LENGTH, N_FEATURES = 6, 3
T0 = dt.datetime(2026, 1, 1)


def _windows(spark, *, signal_at: str, n: int = 300, seed: int = 3):
    """Windows of shape (LENGTH, N_FEATURES); positives shift feature 0 at the end or the start only."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = int(rng.random() < 0.3)
        window = rng.normal(0.0, 1.0, (LENGTH, N_FEATURES))
        rows_with_signal = slice(LENGTH - 1, LENGTH) if signal_at == "last" else slice(0, LENGTH // 2)
        window[rows_with_signal, 0] += 3.0 * label
        split = "train" if i % 3 else "test"
        rows.append((f"d{i % 40}", T0 + dt.timedelta(hours=i), [float(v) for v in window.ravel()], label, split))
    return spark.createDataFrame(rows, SCHEMA)


def test_last_reading_takes_the_last_n_features(spark):
    df = spark.createDataFrame([("a", T0, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 1, "train")], SCHEMA)
    assert last_reading(df, n_features=3).first()["last"] == DenseVector([4.0, 5.0, 6.0])
    with pytest.raises(Exception, match="multiple of n_features"):
        last_reading(df, n_features=4).collect()


@pytest.mark.parametrize("class_weights", [None, "balanced"])
def test_baseline_sees_a_signal_in_the_last_reading(spark, class_weights):
    df = _windows(spark, signal_at="last")
    model = fit_baseline(df.where("split = 'train'"), n_features=N_FEATURES, class_weights=class_weights)
    preds = probability_scores(model, df.where("split = 'test'"))
    assert preds.columns == ["device_id", "window_end", "label", "score"]
    scores = [r["score"] for r in preds.select("score").collect()]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert binary_metrics(preds)["pr_auc"] > 0.9


def test_baseline_cannot_see_a_signal_early_in_the_window(spark):
    # Positives differ only in the first half of the window; the last reading is pure noise.
    df = _windows(spark, signal_at="early")
    model = fit_baseline(df.where("split = 'train'"), n_features=N_FEATURES, class_weights=[1.0, 2.0])
    got = binary_metrics(probability_scores(model, df.where("split = 'test'")))
    assert 0.3 < got["roc_auc"] < 0.7
    assert got["pr_auc"] < got["positives"] / got["count"] + 0.2
