"""Labels, device splits, normalisation, sliding windows and balancing, all on the executors.

A window is `length` consecutive grid readings of one device segment, flattened row-major into
`features` (length x n_features float32). It ends at `window_end`; its label is 1 when the device
fails within `horizon_days` after that instant (boundary included). Window ends are aligned to the
grid so that they fall every `stride` readings from midnight UTC, whatever a segment's start.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from functools import reduce

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from pipelines.telemetry.schema import WINDOW_SCHEMA

SPLITS = ("train", "val", "test")


def assign_splits(
    devices: DataFrame, failures: DataFrame, *, val_fraction: float, test_fraction: float, seed: int
) -> DataFrame:
    """One split per device (train/val/test), stratified by whether the device fails.

    Deterministic for a seed: devices are ordered by a hash of (seed, device_id) within each stratum.
    Returns `device_id, failing, split`.
    """
    if not (val_fraction >= 0 and test_fraction >= 0 and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction + test_fraction must be in [0, 1)")
    failing = failures.select("device_id").distinct().withColumn("failing", F.lit(True))
    per_device = (
        devices.select("device_id")
        .distinct()
        .join(failing, "device_id", "left")
        .withColumn("failing", F.coalesce("failing", F.lit(False)))
        .withColumn("_h", F.xxhash64(F.lit(seed), "device_id"))
    )
    # The per-device frame is one row per device: small enough for a window per stratum.
    by_stratum = Window.partitionBy("failing").orderBy("_h", "device_id")
    n = F.count(F.lit(1)).over(by_stratum.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing))
    position = (F.row_number().over(by_stratum) - 0.5) / n
    return (
        per_device.withColumn("_u", position)
        .withColumn(
            "split",
            F.when(F.col("_u") < test_fraction, "test")
            .when(F.col("_u") < test_fraction + val_fraction, "val")
            .otherwise("train"),
        )
        .select("device_id", "failing", "split")
    )


def fit_normalizer(readings: DataFrame, *, features: Sequence[str]) -> dict[str, list]:
    """Per-feature mean and standard deviation of `readings` (pass the training split only)."""
    aggs = [F.mean(c).alias(f"m_{i}") for i, c in enumerate(features)]
    aggs += [F.stddev_pop(c).alias(f"s_{i}") for i, c in enumerate(features)]
    row = readings.agg(*aggs).first()
    if row is None or row["m_0"] is None:
        raise ValueError("cannot fit normalisation on an empty training split")
    mean = [float(row[f"m_{i}"]) for i in range(len(features))]
    std = [float(row[f"s_{i}"]) if row[f"s_{i}"] and row[f"s_{i}"] > 1e-12 else 1.0 for i in range(len(features))]
    return {"features": list(features), "mean": mean, "std": std}


def normalize(readings: DataFrame, stats: dict[str, list]) -> DataFrame:
    """Standardise each feature column with statistics from `fit_normalizer`."""
    for name, mean, std in zip(stats["features"], stats["mean"], stats["std"]):
        readings = readings.withColumn(name, (F.col(name) - F.lit(mean)) / F.lit(std))
    return readings


def make_windows(
    readings: DataFrame,
    failures: DataFrame,
    *,
    features: Sequence[str],
    length: int,
    stride: int,
    horizon_days: float,
    interval_minutes: int,
    observed_until=None,
) -> DataFrame:
    """Sliding windows per device segment, labelled "fails within the horizon".

    `readings` has `device_id, timestamp, segment` and the feature columns, on the grid.
    Windows of devices not known to fail whose horizon reaches past `observed_until` are dropped:
    whether those devices failed is not known (right-censoring). A window holding a value that is not a
    finite float is dropped too.

    Built-in expressions only: each segment's readings are collected in time order, their features flattened
    into one array, and each aligned end position whose window holds only finite values becomes a window by
    slicing that array.
    """
    features = list(features)
    n = len(features)
    step_us = interval_minutes * stride * 60 * 1_000_000
    horizon_ns = pd.Timedelta(days=horizon_days).value
    values = [F.coalesce(F.col(c).cast("float"), F.lit(float("nan")).cast("float")) for c in features]
    finite = [F.abs(v) < F.lit(float("inf")) for v in values]  # NaN sorts above infinity in Spark
    # Built before the aggregation: collect_list evaluates its argument interpreted, a projection is compiled.
    reading = F.struct(
        F.col("timestamp").alias("t"), F.array(*values).alias("x"), reduce(operator.and_, finite).alias("ok")
    )
    segments = (
        readings.select("device_id", "segment", reading.alias("_r"))
        .groupBy("device_id", "segment")
        .agg(F.sort_array(F.collect_list("_r")).alias("_rows"))
        .where(F.size("_rows") >= length)
        .select(
            "device_id", F.col("_rows.t").alias("_t"), F.flatten("_rows.x").alias("_x"), F.col("_rows.ok").alias("_ok")
        )
    )
    # 1-based positions of the windows' last readings, aligned to the stride; a window needs `length` readings.
    aligned = F.filter(
        F.sequence(F.lit(length), F.size("_t")), lambda end: F.unix_micros(F.element_at("_t", end)) % step_us == 0
    )
    start = F.col("_end") - length + 1
    windows = (
        segments.select("device_id", "_t", "_x", "_ok", F.explode(aligned).alias("_end"))
        .where(~F.array_contains(F.slice("_ok", start, F.lit(length)), False))
        .select(
            "device_id",
            F.element_at("_t", F.col("_end")).alias("window_end"),
            F.slice("_x", (start - 1) * n + 1, F.lit(length * n)).alias("features"),
        )
    )

    first_failure = failures.groupBy("device_id").agg(F.min("failure_time").alias("_failure"))
    end_ns = F.unix_micros("window_end") * 1000
    failure_ns = F.unix_micros("_failure") * 1000
    labelled = windows.join(first_failure, "device_id", "left")
    if observed_until is not None:
        until_ns = F.unix_micros(F.lit(observed_until).cast("timestamp")) * 1000
        labelled = labelled.where(F.col("_failure").isNotNull() | (end_ns + horizon_ns <= until_ns))
    label = F.when(
        F.col("_failure").isNotNull(), ((end_ns < failure_ns) & (failure_ns <= end_ns + horizon_ns)).cast("int")
    ).otherwise(F.lit(0))
    return _conform(labelled.select("device_id", "window_end", "features", label.alias("label")), WINDOW_SCHEMA)


def _conform(df: DataFrame, schema: StructType) -> DataFrame:
    """`df` with the nullability of `schema`: its columns are never null here by construction, `coalesce`
    with a literal only tells Spark so."""
    placeholders = {
        "device_id": F.lit(""),
        "window_end": F.lit(0).cast("timestamp"),
        "features": F.array_repeat(F.lit(0.0).cast("float"), 0),
        "label": F.lit(0),
    }
    return df.select(*[F.coalesce(F.col(c), placeholders[c]).alias(c) for c in schema.fieldNames()])


def downsample_negatives(
    windows: DataFrame, *, negatives_per_positive: float, seed: int, split: str | None = None
) -> DataFrame:
    """Keep every positive and about `negatives_per_positive` negatives for each (0 keeps all).

    With `split`, only that split's windows are thinned (by its own counts); other splits pass untouched.
    """
    if negatives_per_positive <= 0:
        return windows
    in_scope = F.col("split") == split if split else F.lit(True)
    counts = {r["label"]: r["count"] for r in windows.where(in_scope).groupBy("label").count().collect()}
    positives, negatives = counts.get(1, 0), counts.get(0, 0)
    if positives == 0 or negatives == 0:
        return windows
    fraction = min(1.0, negatives_per_positive * positives / negatives)
    return windows.where(~in_scope | (F.col("label") == 1) | (F.rand(seed) < fraction))


def build_window_dataset(
    readings: DataFrame, failures: DataFrame, *, config, interval_minutes: int
) -> tuple[DataFrame, dict[str, list[float]]]:
    """Split devices, normalise with training statistics, window, label and balance the training split.

    `config` is a `WindowsConfig`. Returns the windows with a `split` column, and the normalisation.
    """
    splits = assign_splits(
        readings.select("device_id").distinct(),
        failures,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        seed=config.split_seed,
    ).select("device_id", "split")
    with_split = readings.join(F.broadcast(splits), "device_id")
    stats = fit_normalizer(with_split.where(F.col("split") == "train"), features=config.features)
    observed_until = readings.agg(F.max("timestamp")).collect()[0][0]
    windows = make_windows(
        normalize(readings, stats),
        failures,
        features=config.features,
        length=config.length,
        stride=config.stride,
        horizon_days=config.horizon_days,
        interval_minutes=interval_minutes,
        observed_until=observed_until,
    ).join(F.broadcast(splits), "device_id")
    balanced = downsample_negatives(
        windows, negatives_per_positive=config.negatives_per_positive, seed=config.split_seed, split="train"
    )
    return balanced, stats
