"""Clean readings per device onto a fixed time grid, short gaps forward-filled, long gaps starting a new segment.

Choices:
- The grid is anchored at the Unix epoch (so at midnight UTC whenever the interval divides a day). Each reading is
  placed on the *nearest* grid point (half an interval rounds up), so clock jitter of a few seconds keeps a reading
  in its own slot. When several readings of a device land on one grid point, the one closest to it is kept (then
  the earliest; ties broken on the values). Ingest quarantines such readings as `duplicate` beforehand, so in the
  job nothing is dropped here.
- A gap of 1..`max_fill_gap_readings` missing grid points is filled by carrying the last reading forward
  (no look-ahead, and counters and fault codes keep values they really had); filled rows have `filled=True`.
- A longer gap is not filled: the next reading starts a new `segment` (0, 1, ... per device), so windows built per
  segment never cross it. A device's first reading starts segment 0 whenever it comes.
- Rows without a device id or timestamp cannot be placed and are ignored (ingest never produces them).
Everything runs as window functions and `explode` on the executors.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pipelines.telemetry.schema import CLEAN_SCHEMA, SENSORS


def resample(df: DataFrame, *, interval_minutes: int, max_fill_gap_readings: int) -> DataFrame:
    """One row per device per grid point of each segment, with schema `CLEAN_SCHEMA`.

    `df` has `device_id`, `model`, `timestamp` and the `SENSORS` columns; other columns are ignored.
    """
    _check(interval_minutes, max_fill_gap_readings)
    readings = df.where(F.col("device_id").isNotNull() & F.col("timestamp").isNotNull()).select(
        "device_id", "model", "timestamp", *SENSORS, grid_slot(F.col("timestamp"), interval_minutes).alias("_slot")
    )
    in_slot = Window.partitionBy("device_id", "_slot").orderBy(
        F.abs(F.col("timestamp").cast("long") - F.col("_slot")), "timestamp", "model", *SENSORS
    )
    one_per_slot = readings.withColumn("_rank", F.row_number().over(in_slot)).where(F.col("_rank") == 1)
    return fill_gaps(one_per_slot, interval_minutes=interval_minutes, max_fill_gap_readings=max_fill_gap_readings)


def grid_slot(timestamp: Column, interval_minutes: int) -> Column:
    """Seconds since the epoch of the grid point nearest to `timestamp` (half an interval rounds up)."""
    step = interval_minutes * 60
    return F.floor((timestamp.cast("long") + F.lit(step // 2)) / F.lit(step)) * F.lit(step)


def fill_gaps(readings: DataFrame, *, interval_minutes: int, max_fill_gap_readings: int) -> DataFrame:
    """`resample` for readings already reduced to one per device and grid point, in `_slot` (see `grid_slot`).

    Ingest calls this directly: it has quarantined the duplicates already.
    """
    _check(interval_minutes, max_fill_gap_readings)
    step = interval_minutes * 60
    by_time = Window.partitionBy("device_id").orderBy("_slot")
    missing_before = (F.col("_slot") - F.lag("_slot").over(by_time)) / F.lit(step) - 1
    missing_after = ((F.lead("_slot").over(by_time) - F.col("_slot")) / F.lit(step) - 1).cast("int")
    fill = F.when(missing_after.between(1, max_fill_gap_readings), missing_after).otherwise(F.lit(0))
    with_gaps = readings.select(
        "device_id",
        "model",
        "_slot",
        *SENSORS,
        F.when(missing_before > max_fill_gap_readings, 1).otherwise(0).alias("_new_segment"),
        fill.alias("_fill"),
    )
    segmented = with_gaps.withColumn(
        "segment",
        F.sum("_new_segment").over(by_time.rowsBetween(Window.unboundedPreceding, Window.currentRow)).cast("int"),
    )
    # Each reading stands for its own grid point and, when a short gap follows, for the points of that gap.
    exploded = segmented.withColumn("_k", F.explode(F.sequence(F.lit(0), F.col("_fill"))))
    out = exploded.select(
        "device_id",
        "model",
        F.timestamp_seconds(F.col("_slot") + F.col("_k") * F.lit(step)).alias("timestamp"),
        *SENSORS,
        (F.col("_k") > 0).alias("filled"),
        "segment",
    )
    return _conform(out)


def _check(interval_minutes: int, max_fill_gap_readings: int) -> None:
    if interval_minutes < 1:
        raise ValueError(f"interval_minutes must be >= 1, got {interval_minutes}")
    if max_fill_gap_readings < 0:
        raise ValueError(f"max_fill_gap_readings must be >= 0, got {max_fill_gap_readings}")


def _conform(df: DataFrame) -> DataFrame:
    """Cast to `CLEAN_SCHEMA` with its nullability. Its non-nullable columns are never null here by construction;
    `coalesce` with a literal only tells Spark so."""
    cols: list[Column] = []
    for field in CLEAN_SCHEMA.fields:
        col = F.col(field.name).cast(field.dataType)
        if field.nullable:
            col = F.when(F.lit(True), col)  # nullable whatever the input said
        else:
            col = F.coalesce(col, F.lit(_NEVER_USED[field.name]).cast(field.dataType))
        cols.append(col.alias(field.name))
    return df.select(*cols)


_NEVER_USED = {"device_id": "", "timestamp": 0, "filled": False, "segment": 0}
