"""binary_metrics against scikit-learn, on hand-written tied scores and on a random many-ties set."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType
from sklearn import metrics as skm

from pipelines.evaluation.metrics import binary_metrics

SCHEMA = StructType([StructField("label", IntegerType()), StructField("score", DoubleType())])


def _sklearn(y: np.ndarray, s: np.ndarray, threshold: float) -> dict:
    pred = (s >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return {
        "count": len(y),
        "positives": int(y.sum()),
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division=0),
        "recall": skm.recall_score(y, pred, zero_division=0),
        "f1": skm.f1_score(y, pred, zero_division=0),
        "roc_auc": skm.roc_auc_score(y, s),
        "pr_auc": skm.average_precision_score(y, s),
        "log_loss": skm.log_loss(y, np.clip(s, 1e-7, 1 - 1e-7), labels=[0, 1]),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def _assert_matches(got: dict, want: dict) -> None:
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, abs=1e-9, rel=0), key
        else:
            assert got[key] == value, key


def test_hand_written_example_with_ties(spark):
    rows = [
        (1, 0.9),
        (0, 0.9),
        (1, 0.8),
        (1, 0.7),
        (0, 0.7),
        (0, 0.7),
        (1, 0.5),
        (0, 0.5),
        (0, 0.3),
        (1, 0.3),
        (0, 0.1),
        (0, 0.1),
    ]
    df = spark.createDataFrame(rows, SCHEMA)
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows])
    got = {t: binary_metrics(df, threshold=t) for t in (0.5, 0.75, 0.95)}  # 0.5 is a tied score
    for threshold, result in got.items():
        _assert_matches(result, _sklearn(y, s, threshold))
        json.dumps(result)
    assert got[0.5]["confusion_matrix"] == {"tn": 3, "fp": 4, "fn": 1, "tp": 4}  # score >= threshold
    assert got[0.95]["precision"] == 0.0 and got[0.95]["f1"] == 0.0


def test_random_rounded_scores_across_partitions(spark):
    rng = np.random.default_rng(42)
    n = 2000
    y = (rng.random(n) < 0.3).astype(int)
    s = np.clip(np.round(0.25 * y + rng.normal(0.4, 0.2, n), 2), 0.0, 1.0)
    assert len(np.unique(s)) < 150  # many ties
    df = spark.createDataFrame([(int(a), float(b)) for a, b in zip(y, s)], SCHEMA).repartition(5)
    assert df.rdd.getNumPartitions() == 5
    for threshold in (0.5, 0.42):
        _assert_matches(binary_metrics(df, threshold=threshold), _sklearn(y, s, threshold))


def test_double_labels_and_other_column_names(spark):
    schema = StructType([StructField("y", DoubleType()), StructField("p", DoubleType())])
    rows = [(1.0, 0.8), (0.0, 0.2), (1.0, 0.4), (0.0, 0.6)]
    got = binary_metrics(spark.createDataFrame(rows, schema), label_col="y", score_col="p")
    assert got["roc_auc"] == pytest.approx(0.75)
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score([1, 0, 1, 0], [0.8, 0.2, 0.4, 0.6]))
    assert got["confusion_matrix"] == {"tn": 1, "fp": 1, "fn": 1, "tp": 1}


def test_single_class_gives_no_auc(spark, caplog):
    df = spark.createDataFrame([(0, 0.1), (0, 0.7), (0, 0.3)], SCHEMA)
    with caplog.at_level(logging.WARNING, logger="pipelines.evaluation.metrics"):
        got = binary_metrics(df)
    assert got["roc_auc"] is None and got["pr_auc"] is None
    assert "only one class" in caplog.text
    assert got["accuracy"] == pytest.approx(2 / 3)
    assert got["precision"] == 0.0 and got["recall"] == 0.0 and got["f1"] == 0.0
    assert got["confusion_matrix"] == {"tn": 2, "fp": 1, "fn": 0, "tp": 0}
    json.dumps(got)


def test_empty_input_raises(spark):
    with pytest.raises(ValueError, match="empty"):
        binary_metrics(spark.createDataFrame([], SCHEMA))


def test_bad_labels_and_scores_raise(spark):
    with pytest.raises(ValueError, match="not 0 or 1"):
        binary_metrics(spark.createDataFrame([(1, 0.5), (2, 0.4), (None, 0.3)], SCHEMA))
    with pytest.raises(ValueError, match="null or NaN"):
        binary_metrics(spark.createDataFrame([(1, 0.5), (0, None), (0, float("nan"))], SCHEMA))
