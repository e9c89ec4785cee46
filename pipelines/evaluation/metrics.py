"""Binary-classification metrics computed with Spark aggregations; only one small row reaches the driver.

ROC-AUC and PR-AUC (average precision) are exact and treat tied scores like scikit-learn's
`roc_auc_score` and `average_precision_score`.
"""

from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

log = logging.getLogger(__name__)

_S, _POS, _NEG, _N = "_score", "_pos", "_neg", "_n"


def _per_score(predictions: DataFrame, label_col: str, score_col: str) -> DataFrame:
    """Distributed frame of (score, positives, negatives, rows) per distinct score."""
    label = F.col(label_col)
    return (
        predictions.select(label.alias("_label"), F.col(score_col).cast("double").alias(_S))
        .groupBy(_S)
        .agg(
            F.sum(F.when(F.col("_label") == 1, 1).otherwise(0)).cast("long").alias(_POS),
            F.sum(F.when(F.col("_label") == 0, 1).otherwise(0)).cast("long").alias(_NEG),
            F.count(F.lit(1)).alias(_N),
        )
    )


def _check(row: Any, label_col: str, score_col: str) -> None:
    if not row["count"]:
        raise ValueError("binary_metrics: the predictions are empty")
    bad_labels = row["count"] - row["positives"] - row["negatives"]
    if bad_labels:
        raise ValueError(f"binary_metrics: {bad_labels} rows have a {label_col!r} that is not 0 or 1")
    if row["bad_scores"]:
        raise ValueError(f"binary_metrics: {row['bad_scores']} rows have a null or NaN {score_col!r}")


def binary_metrics(
    predictions: DataFrame, *, label_col: str = "label", score_col: str = "score", threshold: float = 0.5
) -> dict[str, Any]:
    """Accuracy, precision, recall, f1, roc_auc, pr_auc, log_loss, confusion matrix, positives and count.

    `label_col` holds 0/1, `score_col` the probability of class 1; prediction = score >= threshold.
    Precision, recall and f1 with a zero denominator are 0.0; the AUCs are None when one class is absent.
    """
    grouped = _per_score(predictions, label_col, score_col)
    # No partitionBy: Spark moves the rows to one partition. Acceptable here because the frame has one
    # row per *distinct score* (already aggregated on the executors), and it stays on an executor.
    down = Window.orderBy(F.col(_S).desc()).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    cum = grouped.withColumn("_tp", F.sum(_POS).over(down)).withColumn("_fp", F.sum(_NEG).over(down))
    pos, neg, tp, fp = (F.col(c).cast("double") for c in (_POS, _NEG, "_tp", "_fp"))
    above = F.col(_S) >= threshold
    clipped = F.least(F.greatest(F.col(_S), F.lit(1e-7)), F.lit(1 - 1e-7))

    def total(expr: Any, name: str) -> Any:
        return F.coalesce(F.sum(expr), F.lit(0)).alias(name)

    row = cum.agg(
        total(F.col(_N), "count"),
        total(F.col(_POS), "positives"),
        total(F.col(_NEG), "negatives"),
        total(F.when(F.col(_S).isNull() | F.isnan(_S), F.col(_N)), "bad_scores"),
        total(F.when(above, F.col(_POS)), "tp"),
        total(F.when(above, F.col(_NEG)), "fp"),
        # Trapezoid between consecutive distinct thresholds: neg_k * (tp_{k-1} + tp_k) / 2, scaled by 1/(P*N) later.
        total(neg * (2.0 * tp - pos), "roc_twice"),
        # Average precision: (R_k - R_{k-1}) * P_k = pos_k / P * tp_k / (tp_k + fp_k), scaled by 1/P later.
        total(pos * tp / (tp + fp), "ap_sum"),
        total(-pos * F.log(clipped) - neg * F.log(1.0 - clipped), "log_loss_sum"),
    ).collect()[0]
    _check(row, label_col, score_col)

    n, p, negatives = int(row["count"]), int(row["positives"]), int(row["negatives"])
    tp_at, fp_at = int(row["tp"]), int(row["fp"])
    fn_at, tn_at = p - tp_at, negatives - fp_at
    roc_auc = pr_auc = None
    if p and negatives:
        roc_auc = float(row["roc_twice"]) / (2.0 * p * negatives)
        pr_auc = float(row["ap_sum"]) / p
    else:
        log.warning("binary_metrics: only one class present (%s positives of %s); AUCs are undefined", p, n)
    return {
        "count": n,
        "positives": p,
        "threshold": float(threshold),
        "accuracy": (tp_at + tn_at) / n,
        "precision": _ratio(tp_at, tp_at + fp_at),
        "recall": _ratio(tp_at, p),
        "f1": _ratio(2 * tp_at, 2 * tp_at + fp_at + fn_at),
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "log_loss": float(row["log_loss_sum"]) / n,
        "confusion_matrix": {"tn": tn_at, "fp": fp_at, "fn": fn_at, "tp": tp_at},
    }


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0
