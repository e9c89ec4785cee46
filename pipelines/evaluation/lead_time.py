"""Lead time: how long before each failure the first alert came.

For every device that failed and has evaluated windows, its first alert is the earliest window end with an alert
strictly before the failure time; the lead time is failure time - first alert. Edges:
- a failed device without any alert before its failure is *missed* (lead time None);
- alerts at or after the failure time (late data, or windows ending at the failure) never count;
- a failed device without evaluated windows (too little history) is *not evaluable* and left out of the counts.
Per-device rows are computed on the cluster (one row per failed device reaches the driver); `summarize` is pure.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

SECONDS_PER_DAY = 86400.0


def lead_times(
    alerts: DataFrame, failures: DataFrame, *, alert_col: str = "alert", by: Sequence[str] = ()
) -> DataFrame:
    """`*by, device_id, failure_time, windows, first_alert, lead_time_days` for the failed devices present in
    `alerts` (per value of the `by` columns, a model's name).

    `alerts` has `device_id, window_end` and a boolean `alert_col`; `failures` has `device_id, failure_time`
    (the first failure of a device counts).
    """
    failed = failures.groupBy("device_id").agg(F.min("failure_time").alias("failure_time"))
    columns = [*(F.col(c) for c in by), F.col("device_id"), F.col("window_end"), F.col(alert_col).alias("_alert")]
    joined = alerts.select(*columns).join(failed, "device_id")
    early = F.col("_alert") & (F.col("window_end") < F.col("failure_time"))
    per_device = joined.groupBy(*by, "device_id", "failure_time").agg(
        F.count(F.lit(1)).alias("windows"),
        F.min(F.when(early, F.col("window_end"))).alias("first_alert"),
    )
    lead = (F.col("failure_time").cast("long") - F.col("first_alert").cast("long")) / F.lit(SECONDS_PER_DAY)
    return per_device.withColumn("lead_time_days", F.when(F.col("first_alert").isNotNull(), lead))


def summarize(lead_days: Sequence[float | None], *, not_evaluable: int = 0) -> dict[str, Any]:
    """Counts, device recall and the distribution of lead times (days) of detected failures.

    `lead_days` has one entry per evaluable failed device: its lead time, or None when missed.
    """
    detected = sorted(float(d) for d in lead_days if d is not None)
    failed = len(lead_days)
    return {
        "failed_devices": failed,
        "detected": len(detected),
        "missed": failed - len(detected),
        "not_evaluable": not_evaluable,
        "recall": len(detected) / failed if failed else None,
        "mean_lead_time_days": statistics.fmean(detected) if detected else None,
        "median_lead_time_days": statistics.median(detected) if detected else None,
        "min_lead_time_days": detected[0] if detected else None,
        "max_lead_time_days": detected[-1] if detected else None,
    }


def collect_lead_times(alerts: DataFrame, failures: DataFrame, *, alert_col: str = "alert") -> list[dict[str, Any]]:
    """`lead_times` on the driver, one JSON-ready dict per failed device, ordered by device."""
    rows = lead_times(alerts, failures, alert_col=alert_col).orderBy("device_id").collect()
    return [
        {
            "device_id": r["device_id"],
            "failure_time": r["failure_time"].isoformat(sep=" "),
            "first_alert": r["first_alert"].isoformat(sep=" ") if r["first_alert"] is not None else None,
            "lead_time_days": float(r["lead_time_days"]) if r["lead_time_days"] is not None else None,
            "windows": int(r["windows"]),
        }
        for r in rows
    ]


def lead_days_at(
    scored: DataFrame, failures: DataFrame, thresholds: Sequence[float], *, prob_col: str = "probability"
) -> list[list[float | None]]:
    """For each threshold, the lead time in days (or None) of every failed device present in `scored`, alerting when
    `prob_col` >= the threshold: `lead_times` at several thresholds in one Spark job."""
    failed = failures.groupBy("device_id").agg(F.min("failure_time").alias("failure_time"))
    joined = scored.select("device_id", "window_end", F.col(prob_col).alias("_p")).join(failed, "device_id")
    early = F.col("window_end") < F.col("failure_time")
    rows = (
        joined.groupBy("device_id", "failure_time")
        .agg(
            *[
                F.min(F.when(early & (F.col("_p") >= t), F.col("window_end"))).alias(f"a{i}")
                for i, t in enumerate(thresholds)
            ]
        )
        .collect()
    )
    return [
        [
            (r["failure_time"] - r[f"a{i}"]).total_seconds() / SECONDS_PER_DAY if r[f"a{i}"] is not None else None
            for r in rows
        ]
        for i in range(len(thresholds))
    ]
