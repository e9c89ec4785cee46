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

from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F

SECONDS_PER_DAY = 86400.0


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


def first_alerts(
    alerts: DataFrame, failures: DataFrame, conditions: Sequence[Column], *, by: Sequence[str] = ()
) -> list[Row]:
    """Per failed device present in `alerts` (`*by, device_id, window_end, ...`; per value of the `by` columns, a
    model's name), ordered by device: its failure time, its number of windows and, for each alert condition (a
    boolean column of `alerts`), the end of its first window alerting before the failure (`first_<i>`, None when
    missed). `failures` has `device_id, failure_time` (the first failure of a device counts). One Spark job."""
    failed = failures.groupBy("device_id").agg(F.min("failure_time").alias("failure_time"))
    alerted = [F.coalesce(c, F.lit(False)).alias(f"_alert{i}") for i, c in enumerate(conditions)]
    joined = alerts.select(*by, "device_id", "window_end", *alerted).join(failed, "device_id")
    early = F.col("window_end") < F.col("failure_time")
    return (
        joined.groupBy(*by, "device_id", "failure_time")
        .agg(
            F.count(F.lit(1)).alias("windows"),
            *[
                F.min(F.when(early & F.col(f"_alert{i}"), F.col("window_end"))).alias(f"first_{i}")
                for i in range(len(conditions))
            ],
        )
        .orderBy(*by, "device_id")
        .collect()
    )


def lead_time_records(rows: Sequence[Row], condition: int = 0) -> list[dict[str, Any]]:
    """`first_alerts`' rows at one of its conditions: one JSON-ready dict per failed device, with its lead time in
    days (None when missed)."""
    records = []
    for r in rows:
        first = r[f"first_{condition}"]
        lead = (r["failure_time"] - first).total_seconds() / SECONDS_PER_DAY if first is not None else None
        records.append(
            {
                "device_id": r["device_id"],
                "failure_time": r["failure_time"].isoformat(sep=" "),
                "first_alert": first.isoformat(sep=" ") if first is not None else None,
                "lead_time_days": lead,
                "windows": int(r["windows"]),
            }
        )
    return records
