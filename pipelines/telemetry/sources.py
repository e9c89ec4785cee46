"""Reads and writes of the telemetry data sets between jobs (any Hadoop URI)."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.errors import InputError
from pipelines.io import fs
from pipelines.telemetry.schema import TIMESTAMP_FORMAT, WindowSpec

WINDOWS_DIR = "windows"
NORMALIZATION_FILE = "normalization.json"
WINDOW_COUNTS_FILE = "window_counts.json"
WINDOW_SPEC_FILE = "windows.json"
FEATURES_COLUMN_PATH = "features.list.element"  # the Parquet path of the features' values


def read_failures(spark: SparkSession, uri: str) -> DataFrame:
    """`device_id, failure_time` from a CSV with a header (the generator's failures.csv)."""
    if not fs.exists(spark, uri):
        raise InputError(f"failure events not found: {uri}")
    raw = spark.read.csv(uri, header=True, schema="device_id string, failure_time string")
    return raw.select("device_id", F.to_timestamp("failure_time", TIMESTAMP_FORMAT).alias("failure_time")).where(
        F.col("device_id").isNotNull() & F.col("failure_time").isNotNull()
    )


def read_parquet(spark: SparkSession, uri: str, what: str) -> DataFrame:
    if not fs.exists(spark, uri):
        raise InputError(f"{what} not found: {uri}")
    return spark.read.parquet(uri)


def read_windows(spark: SparkSession, root: str, split: str | None = None) -> DataFrame:
    """The windows written by `write_windows`, optionally one split only."""
    windows = read_parquet(spark, f"{root}/{WINDOWS_DIR}", "windows")
    return windows.where(F.col("split") == split) if split else windows


def read_window_spec(spark: SparkSession, root: str) -> WindowSpec:
    """The spec the windows under `root` were written with (`windows.json`)."""
    uri = f"{root}/{WINDOW_SPEC_FILE}"
    if not fs.exists(spark, uri):
        raise InputError(f"no {WINDOW_SPEC_FILE} in {root}: windows written before it was recorded; rebuild them")
    return WindowSpec.from_dict(fs.read_json(spark, uri))


def read_normalization(spark: SparkSession, root: str) -> dict:
    return fs.read_json(spark, f"{root}/{NORMALIZATION_FILE}")


def window_counts(windows: DataFrame) -> dict[str, dict[str, int]]:
    """{split: {"windows", "positives", "devices"}}, computed on the cluster."""
    rows = (
        windows.groupBy("split")
        .agg(
            F.count(F.lit(1)).alias("windows"),
            F.sum("label").alias("positives"),
            F.countDistinct("device_id").alias("devices"),
        )
        .collect()
    )
    return {
        r["split"]: {"windows": int(r["windows"]), "positives": int(r["positives"] or 0), "devices": int(r["devices"])}
        for r in rows
    }


def write_windows(
    spark: SparkSession,
    windows: DataFrame,
    stats: dict,
    out_uri: str,
    *,
    spec: WindowSpec,
    overwrite: bool | None = None,
) -> dict:
    """Write windows (Parquet, partitioned by split), their spec, the normalisation and the counts, atomically."""
    with fs.atomic_output(spark, out_uri, overwrite=overwrite) as tmp:
        # Dictionary encoding never pays off for normalised floats; it cost a fifth of the write (bench/README.md).
        windows.write.partitionBy("split").option(f"parquet.enable.dictionary#{FEATURES_COLUMN_PATH}", "false").parquet(
            f"{tmp}/{WINDOWS_DIR}"
        )
        counts = window_counts(spark.read.parquet(f"{tmp}/{WINDOWS_DIR}"))
        for split in ("train", "val", "test"):
            if counts.get(split, {}).get("windows", 0) == 0:
                raise InputError(f"the {split} split has no windows: more devices or days are needed")
        fs.write_json(spark, f"{tmp}/{WINDOW_SPEC_FILE}", spec.to_dict())
        fs.write_json(spark, f"{tmp}/{NORMALIZATION_FILE}", stats)
        fs.write_json(spark, f"{tmp}/{WINDOW_COUNTS_FILE}", counts)
    return counts
